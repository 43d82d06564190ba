"""Manifests for `apply -f` and `delete -f`: files, directories and stdin, YAML or JSON.

A syntax error spoils its file only (YAML streams cannot be resumed), and a document
without apiVersion/kind spoils itself only: the caller reports each failure where it
occurs and carries on with the rest, as kubectl does. Values stay JSON-shaped: YAML
timestamps are left as strings, since the API would reject a date object anyway.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

EXTENSIONS = (".yaml", ".yml", ".json")


class ManifestError(Exception):
    """A manifest that cannot be read; the message names the file (and line)."""


@dataclass(frozen=True)
class Manifest:
    """One object to act on, or the reason it could not be read."""

    source: str
    obj: dict[str, Any] | None = None
    error: str = ""


@functools.cache
def _loader() -> type:
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[valid-type,misc]
        pass

    # Keep "2024-01-01" a string, as sigs.k8s.io/yaml does when converting to JSON.
    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in base.yaml_implicit_resolvers.items()
    }
    return Loader


def files(sources: list[str], *, recursive: bool = False) -> Iterator[str]:
    """Expand -f arguments: "-" (stdin), files, and directories (manifests inside, sorted)."""
    for source in sources:
        if source == "-":
            yield source
            continue
        path = Path(source).expanduser()
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            found = sorted(p for p in path.glob(pattern)
                           if p.is_file() and p.suffix.lower() in EXTENSIONS)
            if not found:
                raise ManifestError(f'no manifests (*.yaml, *.yml, *.json) in "{source}"')
            yield from (str(p) for p in found)
        elif path.exists():
            yield str(path)
        else:
            raise ManifestError(f'the path "{source}" does not exist')


def read(source: str, stdin: IO[str] | None = None) -> list[Manifest]:
    """The objects in one file ("-" for stdin), with `kind: List` expanded."""
    name = "STDIN" if source == "-" else source
    try:
        text = (stdin or sys.stdin).read() if source == "-" else Path(source).read_text()
    except (OSError, UnicodeDecodeError) as err:
        return [Manifest(name, error=f'cannot read "{name}": {getattr(err, "strerror", None) or err}')]
    try:
        docs = parse(text, name)
    except ManifestError as err:
        return [Manifest(name, error=str(err))]
    out: list[Manifest] = []
    for i, doc in enumerate(docs):
        out += _objects(doc, name, i)
    return out


def load(sources: list[str], *, recursive: bool = False,
         stdin: IO[str] | None = None) -> list[Manifest]:
    """Every object named by -f arguments, in order. Raises ManifestError only for paths
    that do not exist; everything else is reported per manifest."""
    out: list[Manifest] = []
    for source in files(sources, recursive=recursive):
        out += read(source, stdin)
    return out


def parse(text: str, name: str = "<input>") -> list[Any]:
    """Documents of a YAML stream or a JSON text; empty documents are dropped."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as err:
            # Not JSON after all? YAML flow style also starts with "{".
            try:
                return _parse_yaml(text, name)
            except ManifestError:
                raise ManifestError(f'error parsing "{name}": line {err.lineno}, column '
                                    f"{err.colno}: {err.msg}") from err
        return [doc]
    return _parse_yaml(text, name)


def _parse_yaml(text: str, name: str) -> list[Any]:
    import yaml

    try:
        return [d for d in yaml.load_all(text, Loader=_loader()) if d is not None]
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = err.problem or err.context or "invalid YAML"
        raise ManifestError(f'error parsing "{name}": {where}{what}') from err
    except yaml.YAMLError as err:
        raise ManifestError(f'error parsing "{name}": {err}') from err


def _objects(doc: Any, name: str, index: int) -> list[Manifest]:
    where = name if index == 0 else f"{name} (document {index + 1})"
    if not isinstance(doc, dict):
        return [Manifest(where, error=f'error validating "{where}": a manifest must be a '
                                      f"mapping with apiVersion, kind and metadata, "
                                      f"not {type(doc).__name__}")]
    missing = [k for k in ("apiVersion", "kind") if not doc.get(k)]
    if missing:
        return [Manifest(where, error=f'error validating "{where}": '
                                      f"{' and '.join(missing)} not set")]
    if not isinstance(doc["kind"], str) or not isinstance(doc["apiVersion"], str):
        return [Manifest(where, error=f'error validating "{where}": apiVersion and kind must '
                                      "be strings")]
    if doc["kind"] == "List" or (doc["kind"].endswith("List") and "items" in doc):
        items = doc.get("items") or []
        if not isinstance(items, list):
            return [Manifest(where, error=f'error validating "{where}": items of a '
                                          f"{doc['kind']} must be a list, not "
                                          f"{type(items).__name__}")]
        out: list[Manifest] = []
        for item in items:
            out += _objects(item, where, 0)
        return out
    if "metadata" in doc and not isinstance(doc["metadata"], dict):
        return [Manifest(where, error=f'error validating "{where}": metadata must be a '
                                      f"mapping, not {type(doc['metadata']).__name__}")]
    return [Manifest(where, obj=doc)]
