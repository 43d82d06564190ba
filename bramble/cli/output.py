"""Printing for the CLI: kubectl-shaped tables, YAML, JSON and names.

`TabWriter` is a port of the parts of Go's text/tabwriter that kubectl relies on, so the
columns line up exactly as kubectl's do: a cell is terminated by a tab, the text after the
last tab is not a column, columns are aligned per block of consecutive lines, each is as
wide as its widest cell plus padding. kubectl's `get` uses minwidth 6 and padding 3
(and remembers widths across flushes for `--watch`); `describe` uses minwidth 0 and
padding 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


class TabWriter:
    """Collect tab-separated lines, then `flush()` them aligned."""

    def __init__(self, *, minwidth: int = 6, padding: int = 3,
                 remember_widths: bool = False) -> None:
        self.minwidth = minwidth
        self.padding = padding
        self.remember_widths = remember_widths
        self._lines: list[list[str]] = []
        self._remembered: list[int] = []

    def write(self, text: str) -> None:
        """Add text; every "\\n" ends a line, every "\\t" ends a cell."""
        parts = text.split("\n")
        if not self._lines:
            self._lines.append([""])
        for i, part in enumerate(parts):
            if i > 0:
                self._lines.append([""])
            cells = part.split("\t")
            line = self._lines[-1]
            line[-1] += cells[0]
            line.extend(cells[1:])

    def row(self, cells: Iterable[str]) -> None:
        self.write("\t".join(cells) + "\n")

    def flush(self) -> str:
        lines = self._lines
        if lines and lines[-1] == [""]:
            lines = lines[:-1]  # the text ended with a newline
        self._lines = []
        out: list[str] = []
        widths: list[int] = []

        def write_lines(start: int, end: int) -> None:
            for line in lines[start:end]:
                text = []
                for j, cell in enumerate(line):
                    if j < len(widths) and j < len(line) - 1:
                        text.append(cell.ljust(widths[j]))
                    else:
                        text.append(cell)
                out.append("".join(text))

        def fmt(line0: int, line1: int) -> None:
            column = len(widths)
            this = line0
            while this < line1:
                if column >= len(lines[this]) - 1:
                    this += 1
                    continue
                write_lines(line0, this)
                line0 = this
                width = self.minwidth
                while this < line1 and column < len(lines[this]) - 1:
                    width = max(width, len(lines[this][column]) + self.padding)
                    this += 1
                if self.remember_widths:
                    if column < len(self._remembered):
                        width = max(width, self._remembered[column])
                        self._remembered[column] = width
                    else:
                        self._remembered.append(width)
                widths.append(width)
                fmt(line0, this)
                widths.pop()
                line0 = this
            write_lines(line0, line1)

        fmt(0, len(lines))
        return "".join(line + "\n" for line in out)


def cell_text(cell: Any) -> str:
    """A Table cell as kubectl prints it (strings cut at the first line break)."""
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, str):
        for i, ch in enumerate(cell):
            if ch in "\n\r\f":
                return cell[:i] + "..."
        return cell
    if isinstance(cell, dict | list):
        return json.dumps(cell, separators=(",", ":"))
    return str(cell)


@dataclass
class TablePrinter:
    """Prints meta.k8s.io/v1 Tables like `kubectl get`; keeps column widths between calls
    so rows arriving by watch stay aligned with the header."""

    wide: bool = False
    with_namespace: bool = False
    kind_prefix: str = ""  # "deployment.apps/" when several types are printed together
    no_headers: bool = False
    _writer: TabWriter = field(default_factory=lambda: TabWriter(remember_widths=True))
    _header_done: bool = False

    def visible(self, columns: list[dict[str, Any]]) -> list[int]:
        return [i for i, c in enumerate(columns)
                if self.wide or int(c.get("priority") or 0) == 0]

    def _name_index(self, columns: list[dict[str, Any]]) -> int:
        # As kubectl: the kind prefix goes on the column formatted as a name, if any.
        for i, c in enumerate(columns):
            if c.get("format") == "name":
                return i
        return -1

    def render(self, table: dict[str, Any]) -> str:
        """The text for a Table's rows (and the header, the first time)."""
        columns = table.get("columnDefinitions") or []
        shown = self.visible(columns)
        name_at = self._name_index(columns)
        w = self._writer
        if not self._header_done and not self.no_headers and columns:
            header = [str(columns[i].get("name", "")).upper() for i in shown]
            if self.with_namespace:
                header.insert(0, "NAMESPACE")
            w.row(header)
            self._header_done = True
        for row in table.get("rows") or []:
            values = row.get("cells") or []
            cells = []
            for i in shown:
                text = cell_text(values[i]) if i < len(values) else ""
                if i == name_at and self.kind_prefix:
                    text = self.kind_prefix + text
                cells.append(text)
            if self.with_namespace:
                meta = (row.get("object") or {}).get("metadata") or {}
                cells.insert(0, meta.get("namespace", ""))
            w.row(cells)
        return w.flush()


def qualified_kind(kind: str, api_version: str) -> str:
    """"deployment.apps" for apps/v1 Deployment, "pod" for v1 Pod: kubectl's name prefix."""
    group = api_version.rpartition("/")[0]
    return f"{kind.lower()}.{group}" if group else kind.lower()


def object_name(obj: dict[str, Any], kind: str = "", api_version: str = "") -> str:
    """-o name: "deployment.apps/web"."""
    kind = obj.get("kind") or kind
    api_version = obj.get("apiVersion") or api_version
    return f"{qualified_kind(kind, api_version)}/{(obj.get('metadata') or {}).get('name', '')}"


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=4, ensure_ascii=False) + "\n"


def to_yaml(obj: Any) -> str:
    import yaml

    base: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

    class Dumper(base):  # type: ignore[valid-type,misc]
        pass

    def represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        # Multi-line strings (scripts, config files in ConfigMaps) as readable blocks.
        style = "|" if "\n" in value and not value.startswith(" ") else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, represent_str)
    return yaml.dump(obj, Dumper=Dumper, default_flow_style=False, sort_keys=False,
                     allow_unicode=True)


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Several objects as one v1 List, as kubectl prints them with -o yaml/json."""
    return {"apiVersion": "v1", "kind": "List", "items": items,
            "metadata": {"resourceVersion": ""}}
