"""Server-side apply and field ownership (metadata.managedFields), simplified.

`kubectl apply --server-side` sends the fields a manager wants to own (`application/apply-
patch+yaml`). The server merges them into the live object, records that the manager owns
exactly those fields, removes the fields the manager owned before but dropped (unless someone
else owns them), and refuses with 409 to change a field another manager owns to a different
value unless `force` is set, which moves ownership instead. `record_update` keeps ownership for
ordinary writes: an update owns what it changed, and takes it from everyone else.

Ownership is a set of paths, written in managedFields as Kubernetes does ("FieldsV1": nested
`f:<field>`, `k:{"name":"web"}` for list-map items, `v:"value"` for set items, `.` when an item
is owned itself as well as its children). Lists merge per their listType: "map" lists by their
keys, "set" lists as sets, anything else atomically; maps and structs field by field, except
the atomic ones (selectors, object references, atomic maps).

Simplifications of structured-merge-diff, on purpose:
- Merged lists keep the live order and append new items in the applied order.
- Pruning removes a dropped path only when nobody owns it or anything under it, never the key
  fields of an item that stays, and then any map or list that pruning left empty.
- Ownership is computed on the object as stored (one version per kind); no conversion.
- `status` is neither applied nor owned through the main resource; a "status" update owns only
  status. apiVersion, kind and the system-set metadata are never owned, as upstream.
- `null` in an applied configuration is treated as an absent field.

Pure: nothing is mutated; `now` (an RFC 3339 time) defaults to the clock only for convenience.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bramble.kube.errors import BadRequest, Conflict

from .. import schema
from ..schema import Field
from .merge import json_equal

# A path element is ("f", field name), ("k", canonical JSON of an item's keys),
# ("v", canonical JSON of a set value) or ("i", index); a path is a tuple of them.
PathElement = tuple[str, Any]
Path = tuple[PathElement, ...]

# Never owned: identity and bookkeeping, as fieldmanager's stripMeta leaves out.
_UNTRACKED_META = frozenset({"name", "namespace", "uid", "resourceVersion", "generation",
                             "creationTimestamp", "selfLink", "managedFields", "clusterName"})

BEFORE_FIRST_APPLY = "before-first-apply"


@dataclass
class _Entry:
    manager: str
    operation: str
    api_version: str
    time: str | None
    subresource: str = ""
    paths: set[Path] = field(default_factory=set)

    def identity(self) -> tuple[str, str, str, str]:
        # Appliers keep one entry whatever version they apply with (BuildManagerIdentifier).
        version = "" if self.operation == "Apply" else self.api_version
        return (self.manager, self.operation, version, self.subresource)

    def label(self) -> str:
        """The manager as the apiserver's conflict messages print it (printManager)."""
        text = json.dumps(self.manager, ensure_ascii=False)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource, ensure_ascii=False)}"
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text


def server_side_apply(live: dict[str, Any] | None, applied: dict[str, Any], manager: str,
                      force: bool, kind_key: str, *, now: str | None = None) -> dict[str, Any]:
    """Apply `applied` for `manager`; return the new object with its managedFields."""
    if not isinstance(applied, dict) or not isinstance(applied.get("metadata", {}), dict):
        raise BadRequest("an apply configuration must be an object with object metadata")
    if (applied.get("metadata") or {}).get("managedFields"):
        raise BadRequest("metadata.managedFields must be nil")
    root = schema.kind_field(kind_key)
    config = _without_nulls(applied)
    config.pop("status", None)
    config.get("metadata", {}).pop("managedFields", None)
    applied_paths = _tracked(_field_paths(config, root), "")

    base = copy.deepcopy(live) if live is not None else {}
    entries = _entries(base)
    if live is not None and not entries:
        # An object nobody has applied yet: whoever wrote it owns all of it.
        entries = [_Entry(BEFORE_FIRST_APPLY, "Update", base.get("apiVersion", ""), None,
                          paths=_tracked(_field_paths(base, root), ""))]
    base.get("metadata", {}).pop("managedFields", None)

    merged = _merge(base, config, root)
    changed = _changed(base, merged, root, "")
    mine = _find_entry(entries, _Entry(manager, "Apply", "", None))
    others = [e for e in entries if e is not mine]
    conflicts = sorted(((e, p) for e in others for p in e.paths & changed),
                       key=lambda c: (c[0].identity(), _sort_key(c[1])))
    if conflicts and not force:
        raise _conflict_error(conflicts)
    for entry in others:
        entry.paths -= changed

    api_version = config.get("apiVersion") or base.get("apiVersion", "")
    previous = mine.paths if mine is not None else set()
    if mine is None:
        mine = _Entry(manager, "Apply", api_version, None)
        entries.append(mine)
    stale = mine.paths != applied_paths or mine.api_version != api_version
    mine.paths, mine.api_version = applied_paths, api_version

    owned = set().union(*(e.paths for e in entries))
    merged = _prune(merged, previous - owned, owned, root)
    # As upstream, the entry's time moves only when the apply changed something: re-applying
    # an unchanged configuration must leave the object byte-for-byte as it was.
    if mine.time is None or stale or not json_equal(merged, base):
        mine.time = now or _now()
    return _with_entries(merged, entries)


def record_update(old: dict[str, Any] | None, new: dict[str, Any], manager: str,
                  operation: str = "Update", *, kind_key: str | None = None,
                  subresource: str = "", now: str | None = None) -> dict[str, Any]:
    """Return `new` with managedFields recording that `manager` wrote what changed.

    The writer owns every field it changed or added and takes them from other managers;
    fields it removed belong to nobody any more. Sending `managedFields: []` resets them.
    The kind defaults to the object's own apiVersion/kind ("apps/v1/Deployment").
    """
    root = schema.kind_field(kind_key or f"{new.get('apiVersion', '')}/{new.get('kind', '')}")
    result = copy.deepcopy(new)
    metadata = result.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        raise BadRequest("metadata must be an object")
    if "managedFields" in metadata:
        sent = metadata.pop("managedFields")
        if sent == []:
            return result
        entries = _entries({"metadata": {"managedFields": sent}})
    else:
        entries = _entries(old or {})
    before = copy.deepcopy(old or {})
    before.get("metadata", {}).pop("managedFields", None)

    changed = _changed(before, result, root, subresource)
    removed = {p for p in _tracked(_field_paths(before, root), subresource)
               if not _lookup(result, p, root)[0]}
    me = _Entry(manager, operation, new.get("apiVersion", ""), None, subresource)
    mine = _find_entry(entries, me)
    for entry in entries:
        entry.paths -= removed
        if entry is not mine:
            entry.paths -= changed
    if changed:
        if mine is None:
            mine = me
            entries.append(mine)
        mine.paths |= changed
        mine.time = now or _now()
    return _with_entries(result, entries)


# --- field sets


def _field_paths(value: Any, field: Field | None, prefix: Path = ()) -> set[Path]:
    """The paths a value sets, as structured-merge-diff's ToFieldSet counts them."""
    out: set[Path] = set()
    _collect(value, field, prefix, out)
    return out


def _collect(value: Any, field: Field | None, prefix: Path, out: set[Path]) -> None:
    kind = field.type if field is not None else "any"
    if kind in ("object", "map", "any") and isinstance(value, dict):
        if field is not None and (field.map_type == "atomic"
                                  or (kind == "object" and field.ref in schema.ATOMIC_STRUCTS)):
            out.add(prefix)
            return
        for name, child in value.items():
            path = (*prefix, ("f", name))
            _collect(child, schema.child_field(field, name), path, out)
            # Map entries and empty structs are owned themselves; struct fields through
            # their leaves.
            if kind != "object" or child is None or child == {}:
                out.add(path)
        return
    if kind == "array" and isinstance(value, list) and field is not None \
            and field.list_type in ("map", "set"):
        element = schema.element_field(field)
        for item in value:
            path = (*prefix, _item_element(item, field))
            if field.list_type == "map":
                _collect(item, element, path, out)
            out.add(path)
        return
    if prefix:
        out.add(prefix)


def _canonical(value: Any) -> str:
    def integral(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: integral(x) for k, x in v.items()}
        if isinstance(v, list):
            return [integral(x) for x in v]
        return v
    return json.dumps(integral(value), sort_keys=True, separators=(",", ":"))


def _item_element(item: Any, field: Field) -> PathElement:
    if field.list_type == "set":
        return ("v", _canonical(item))
    if not isinstance(item, dict):
        raise BadRequest(f"an element of a list keyed by {list(field.list_map_keys)} "
                         f"is not an object: {item!r}")
    key: dict[str, Any] = {}
    for name in field.list_map_keys:
        if name in item:
            key[name] = item[name]
            continue
        default = getattr(schema.field_of(field.ref, name), "default", None)
        if default is None:
            raise BadRequest(f"associative list with keys has an element that omits key "
                             f"field {json.dumps(name)} (and doesn't have default value)")
        key[name] = default
    return ("k", _canonical(key))


def _tracked(paths: set[Path], subresource: str) -> set[Path]:
    """Drop what is never owned, and what the (sub)resource written does not cover."""
    def keep(path: Path) -> bool:
        top = path[0][1] if path else None
        if top in ("apiVersion", "kind"):
            return False
        if top == "metadata" and (len(path) < 2 or path[1][1] in _UNTRACKED_META):
            return False
        if subresource == "status":
            return top == "status"
        # The main resource never writes status (its strategy resets it); other
        # subresources (scale) write into the parent object as it is.
        return top != "status" or subresource != ""
    return {p for p in paths if keep(p)}


def _lookup(obj: Any, path: Path, root: Field | None) -> tuple[bool, Any]:
    value, field_ = obj, root
    for kind, arg in path:
        if kind == "f":
            if not isinstance(value, dict) or arg not in value:
                return False, None
            value, field_ = value[arg], schema.child_field(field_, arg)
        elif kind in ("k", "v"):
            if not isinstance(value, list) or field_ is None:
                return False, None
            index = _item_index(value, (kind, arg), field_)
            if index is None:
                return False, None
            value, field_ = value[index], schema.element_field(field_)
        else:
            if not isinstance(value, list) or arg >= len(value):
                return False, None
            value, field_ = value[arg], schema.element_field(field_)
    return True, value


def _item_index(items: list[Any], element: PathElement, field_: Field) -> int | None:
    for i, item in enumerate(items):
        try:
            if _item_element(item, field_) == element:
                return i
        except BadRequest:
            continue
    return None


def _changed(before: Any, after: Any, root: Field | None, subresource: str) -> set[Path]:
    """Paths of `after` that `before` lacks or holds a different value at."""
    out = set()
    for path in _tracked(_field_paths(after, root), subresource):
        found, old = _lookup(before, path, root)
        if not found:
            out.add(path)
        elif path[-1][0] not in ("k", "v"):
            # A list item that exists on both sides changes through its fields only.
            if not json_equal(old, _lookup(after, path, root)[1]):
                out.add(path)
    return out


# --- merging and pruning


def _merge(live: Any, config: Any, field: Field | None) -> Any:
    kind = field.type if field is not None else "any"
    if kind in ("object", "map", "any") and isinstance(live, dict) and isinstance(config, dict):
        if field is not None and (field.map_type == "atomic"
                                  or (kind == "object" and field.ref in schema.ATOMIC_STRUCTS)):
            return copy.deepcopy(config)
        out = dict(live)
        for name, value in config.items():
            child = schema.child_field(field, name)
            out[name] = _merge(live[name], value, child) if name in live \
                else copy.deepcopy(value)
        return out
    if kind == "array" and isinstance(live, list) and isinstance(config, list) \
            and field is not None and field.list_type in ("map", "set"):
        if field.list_type == "set":
            return live + [copy.deepcopy(v) for v in config
                           if not any(json_equal(v, x) for x in live)]
        out_list = list(live)
        element = schema.element_field(field)
        for item in config:
            index = _item_index(out_list, _item_element(item, field), field)
            if index is None:
                out_list.append(copy.deepcopy(item))
            else:
                out_list[index] = _merge(out_list[index], item, element)
        return out_list
    return copy.deepcopy(config)


def _prune(obj: dict[str, Any], dropped: set[Path], owned: set[Path],
           root: Field | None) -> dict[str, Any]:
    """Remove paths a manager stopped applying that nobody owns, nor anything below them."""
    above_owned = {p[:i] for p in owned for i in range(1, len(p))}
    for path in sorted(dropped, key=lambda p: (len(p), _sort_key(p))):
        if path in above_owned or _is_item_key(path):
            continue
        if _remove(obj, path, root):
            # Maps and lists emptied by pruning go too (as Go's omitempty would drop them).
            for depth in range(len(path) - 1, 0, -1):
                parent = path[:depth]
                if parent in owned:
                    break
                found, value = _lookup(obj, parent, root)
                if not found or value not in ({}, []) or parent[-1][0] != "f":
                    break
                _remove(obj, parent, root)
    return obj


def _is_item_key(path: Path) -> bool:
    """A key field of a list-map item (removing it would orphan the item)."""
    if len(path) < 2 or path[-1][0] != "f" or path[-2][0] != "k":
        return False
    return path[-1][1] in json.loads(path[-2][1])


def _remove(obj: Any, path: Path, root: Field | None) -> bool:
    found, container = _lookup(obj, path[:-1], root)
    if not found:
        return False
    kind, arg = path[-1]
    if kind == "f" and isinstance(container, dict) and arg in container:
        del container[arg]
        return True
    if kind in ("k", "v") and isinstance(container, list):
        parent_field = _field_at(path[:-1], root)
        if parent_field is None:
            return False
        index = _item_index(container, (kind, arg), parent_field)
        if index is not None:
            del container[index]
            return True
    return False


def _field_at(path: Path, root: Field | None) -> Field | None:
    field_ = root
    for kind, arg in path:
        field_ = schema.child_field(field_, arg) if kind == "f" else schema.element_field(field_)
    return field_


# --- managedFields encoding


def _entries(obj: dict[str, Any]) -> list[_Entry]:
    raw = (obj.get("metadata") or {}).get("managedFields") or []
    entries = []
    for item in raw:
        if not isinstance(item, dict):
            raise BadRequest(f"invalid managedFields entry: {item!r}")
        entries.append(_Entry(
            manager=item.get("manager", ""), operation=item.get("operation", ""),
            api_version=item.get("apiVersion", ""), time=item.get("time"),
            subresource=item.get("subresource", ""),
            paths=decode_fields(item.get("fieldsV1") or {}),
        ))
    return entries


def _find_entry(entries: list[_Entry], wanted: _Entry) -> _Entry | None:
    return next((e for e in entries if e.identity() == wanted.identity()), None)


def _with_entries(obj: dict[str, Any], entries: list[_Entry]) -> dict[str, Any]:
    kept = [e for e in entries if e.paths]
    # Upstream's order: operation, then time, manager, apiVersion, subresource.
    kept.sort(key=lambda e: (e.operation, e.time or "", e.manager, e.api_version,
                             e.subresource))
    metadata = obj.setdefault("metadata", {})
    metadata.pop("managedFields", None)
    if kept:
        metadata["managedFields"] = [_encode_entry(e) for e in kept]
    return obj


def _encode_entry(entry: _Entry) -> dict[str, Any]:
    out: dict[str, Any] = {"manager": entry.manager, "operation": entry.operation,
                           "apiVersion": entry.api_version}
    if entry.time is not None:
        out["time"] = entry.time
    out["fieldsType"] = "FieldsV1"
    out["fieldsV1"] = encode_fields(entry.paths)
    if entry.subresource:
        out["subresource"] = entry.subresource
    return out


def encode_fields(paths: set[Path]) -> dict[str, Any]:
    """A set of paths in the FieldsV1 format of managedFields."""
    tree: dict[PathElement, Any] = {}
    members: set[Path] = set(paths)
    for path in paths:
        node = tree
        for element in path:
            node = node.setdefault(element, {})
    return _emit(tree, (), members)


def _emit(node: dict[PathElement, Any], prefix: Path, members: set[Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if prefix in members and node:
        out["."] = {}
    for element in sorted(node, key=_element_sort_key):
        out[_element_text(element)] = _emit(node[element], (*prefix, element), members)
    return out


def decode_fields(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    """The set of paths a FieldsV1 tree holds."""
    out: set[Path] = set()
    for text, sub in tree.items():
        if text == ".":
            out.add(prefix)
            continue
        path = (*prefix, _parse_element(text))
        if sub:
            out |= decode_fields(sub, path)
        else:
            out.add(path)
    return out


def _element_text(element: PathElement) -> str:
    kind, arg = element
    return f"{kind}:{arg}"


def _parse_element(text: str) -> PathElement:
    kind, _, arg = text.partition(":")
    try:
        if kind == "f":
            return ("f", arg)
        if kind in ("k", "v"):
            return (kind, _canonical(json.loads(arg)))
        if kind == "i":
            return ("i", int(arg))
    except ValueError as err:
        raise BadRequest(f"invalid managedFields path element {text!r}") from err
    raise BadRequest(f"invalid managedFields path element {text!r}")


_ELEMENT_ORDER = {"f": 0, "k": 1, "v": 2, "i": 3}


def _element_sort_key(element: PathElement) -> tuple[int, str]:
    return (_ELEMENT_ORDER[element[0]], str(element[1]))


def _sort_key(path: Path) -> tuple[tuple[int, str], ...]:
    return tuple(_element_sort_key(e) for e in path)


def path_string(path: Path) -> str:
    """A path as the apiserver prints it: .spec.template.spec.containers[name="web"].image"""
    parts = []
    for kind, arg in path:
        if kind == "f":
            parts.append(f".{arg}")
        elif kind == "k":
            key = json.loads(arg)
            parts.append("[" + ",".join(f"{k}={json.dumps(key[k])}" for k in sorted(key)) + "]")
        elif kind == "v":
            parts.append(f"[={arg}]")
        else:
            parts.append(f"[{arg}]")
    return "".join(parts)


def _conflict_error(conflicts: list[tuple[_Entry, Path]]) -> Conflict:
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {e.label()}",
               "field": path_string(p)} for e, p in conflicts]
    if len(conflicts) == 1:
        entry, path = conflicts[0]
        message = (f"Apply failed with 1 conflict: conflict with {entry.label()}: "
                   f"{path_string(path)}")
    else:
        lines: list[str] = []
        last = None
        for entry, path in conflicts:
            if entry.identity() != last:
                lines.append(f"conflicts with {entry.label()}:")
                last = entry.identity()
            lines.append(f"- {path_string(path)}")
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return Conflict(message, causes=causes)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
