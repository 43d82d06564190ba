"""Strategic merge patch, as k8s.io/apimachinery/pkg/util/strategicpatch applies it server-side.

`application/strategic-merge-patch+json` is what `kubectl apply` (client-side), `kubectl
patch`, `set image` and `rollout restart` send. It is a JSON merge patch whose lists follow the
schema (schema.py): a list with patchStrategy "merge" merges by its patchMergeKey (maps) or as
a set (primitives); any other list is replaced; maps merge recursively and `null` deletes.
Directives:
- `$patch: replace` on a map replaces it, `$patch: delete` empties it; in a list element,
  `$patch: delete` removes the element with that merge key and `$patch: replace` replaces the
  whole list with the other elements. `$patch: merge` is refused, as upstream.
- `$setElementOrder/<list>`: the order of the merged list. Items the patch names come in
  that order; items only the server has keep their place relative to them.
- `$retainKeys: [...]`: keys of the map not listed are cleared (a volume changing source, a
  Deployment strategy changing type).
- `$deleteFromPrimitiveList/<list>: [...]`: values removed from a merged primitive list.

Ordering without `$setElementOrder` follows upstream too: patch items come in the patch's order,
and an item new to the list goes ahead of the server-only items (the Kubernetes docs' `kubectl
patch` example adds a container in first place). kubectl apply's patches always carry
`$setElementOrder` for merged lists, so this matters only for hand-written patches.

Where the schema knows nothing (unknown kinds, "any" fields, undeclared fields) the patch
merges as a JSON merge patch would, rather than failing like the Go code. Deliberate departures,
each to keep directives and nulls out of stored objects: a value for a key the original lacks is
itself merged into an empty value (so its directives run and its nulls vanish; `$patch:
delete` leaves it absent), and
`$deleteFromPrimitiveList` on a missing or non-merging list deletes or does nothing (upstream
would store the deletion list as the value).

Pure: the inputs are deep-copied once, then worked on in place. Malformed directives raise
`BadRequest` with upstream's wording.
"""

from __future__ import annotations

import copy
from typing import Any

from bramble.kube.errors import BadRequest

from .. import schema
from ..schema import Field
from .merge import json_equal

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER = "$setElementOrder/"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"


def strategic_merge_patch(original: dict[str, Any], patch: dict[str, Any],
                          kind_key: str) -> dict[str, Any]:
    """Apply a strategic merge `patch` to `original`, an object of kind `kind_key`."""
    if not isinstance(patch, dict):
        raise BadRequest("invalid JSON document: a strategic merge patch must be an object")
    if not isinstance(original, dict):
        raise BadRequest("invalid JSON document: the patched object must be an object")
    return _merge_map(copy.deepcopy(original), copy.deepcopy(patch),
                      schema.kind_field(kind_key))


def _merge_map(original: dict[str, Any], patch: dict[str, Any],
               field: Field | None) -> dict[str, Any]:
    if DIRECTIVE in patch:
        directive = patch.pop(DIRECTIVE)
        if directive == "replace":
            return _merge_map({}, patch, field)
        if directive == "delete":
            return {}
        raise BadRequest(f"Unknown patch type: {directive} in map: {patch}")

    _apply_retain_keys(original, patch)
    _apply_element_orders(original, patch, field)

    deletions: list[tuple[str, Any]] = []
    for key, value in patch.items():
        if key.startswith(DELETE_FROM_PRIMITIVE_LIST):
            deletions.append((_directive_target(key, DELETE_FROM_PRIMITIVE_LIST), value))
            continue
        child = schema.child_field(field, key)
        if value is None:
            original.pop(key, None)
        elif key not in original:
            if not (isinstance(value, dict) and value.get(DIRECTIVE) == "delete"):
                original[key] = _fresh(value, child)
        elif isinstance(value, dict) and isinstance(original[key], dict):
            if child is not None and child.strategy == "replace":
                original[key] = _fresh(value, child)
            else:
                original[key] = _merge_map(original[key], value, child)
        elif isinstance(value, list) and isinstance(original[key], list):
            original[key] = _merge_list(original[key], value, child)
        else:
            # Scalars, and values whose JSON type changed, are replaced.
            original[key] = _fresh(value, child)

    # Deletions run last: a list named by $setElementOrder was merged (additions) first.
    for key, values in deletions:
        if not isinstance(values, list):
            raise BadRequest("invalid patch format of primitive list")
        current = original.get(key)
        if isinstance(current, list):
            original[key] = [v for v in current if not any(json_equal(v, d) for d in values)]
    return original


def _fresh(value: Any, field: Field | None) -> Any:
    """A patch value for a key the original lacks: merged into nothing, directives applied."""
    if isinstance(value, dict):
        return _merge_map({}, value, field)
    if isinstance(value, list) and _merges(field):
        return _merge_list([], value, field)
    return value


def _merges(field: Field | None) -> bool:
    return field is not None and "merge" in (field.strategy or "").split(",")


def _directive_target(key: str, prefix: str) -> str:
    target = key[len(prefix):]
    if not target:
        if prefix == SET_ELEMENT_ORDER:
            raise BadRequest("invalid patch format of setElementOrder list")
        raise BadRequest("invalid patch format of primitive list")
    return target


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    if RETAIN_KEYS not in patch:
        return
    retained = patch.pop(RETAIN_KEYS)
    if not isinstance(retained, list):
        raise BadRequest("invalid patch format of retainKeys")
    for key, value in patch.items():
        if value is None or key.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)):
            continue
        if key not in retained:
            # Every field the patch sets must be retained, or the patch contradicts itself.
            raise BadRequest("invalid patch format of retainKeys")
    for key in [k for k in original if k not in retained]:
        del original[key]


# --- lists


def _merge_list(original: list[Any], patch: list[Any], field: Field | None) -> list[Any]:
    if not _merges(field):
        return patch
    assert field is not None
    if not original and not patch:
        return original
    is_map = _element_kind(original, patch)
    if not is_map:
        merged = _dedupe(original + patch)
        return _normalize_order(merged, patch, original, None)

    merge_key = field.merge_key
    if not merge_key:
        raise BadRequest("cannot merge lists without merge key for type map")
    original, patch = _special_elements(original, patch, merge_key, field)
    merged = list(original)
    element = schema.element_field(field)
    for item in patch:
        _require_merge_key(item, merge_key)
        index = _find(merged, merge_key, item[merge_key])
        if index is None:
            merged.append(_fresh(item, element))
        else:
            merged[index] = _merge_map(merged[index], item, element)
    # The order of `original` is taken before the new items were appended: that is what
    # puts new items ahead of server-only ones when there is no $setElementOrder.
    return _normalize_order(merged, patch, original, merge_key)


def _element_kind(*lists: list[Any]) -> bool:
    """True for lists of maps, False for primitives; mixed lists are refused, as upstream."""
    kinds = {_json_kind(v) for values in lists for v in values}
    if "list" in kinds:
        raise BadRequest("lists of lists are not supported")
    if len(kinds) > 1:
        raise BadRequest(f"list element types are not identical: {list(lists)}")
    return kinds == {"map"}


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _special_elements(original: list[Any], patch: list[Any], merge_key: str,
                      field: Field) -> tuple[list[Any], list[Any]]:
    """Apply the `$patch` elements of a patch list; return (original, remaining patch)."""
    remaining: list[Any] = []
    replace = False
    for item in patch:
        if DIRECTIVE not in item:
            remaining.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete":
            _require_merge_key(item, merge_key)
            original = [o for o in original
                        if not (isinstance(o, dict) and merge_key in o
                                and json_equal(o[merge_key], item[merge_key]))]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise BadRequest("merging lists cannot yet be specified in the patch")
        else:
            raise BadRequest(f"Unknown patch type: {directive} in map: {item}")
    if replace:
        element = schema.element_field(field)
        return [_fresh(item, element) for item in remaining], []
    return original, remaining


def _require_merge_key(item: Any, merge_key: str) -> None:
    if not isinstance(item, dict):
        raise BadRequest(f"expected a map in a list merged by {merge_key}, got {item!r}")
    if merge_key not in item:
        raise BadRequest(f"map: {item} does not contain declared merge key: {merge_key}")


def _find(items: list[Any], merge_key: str, value: Any) -> int | None:
    for i, item in enumerate(items):
        if isinstance(item, dict) and merge_key in item and json_equal(item[merge_key], value):
            return i
    return None


def _dedupe(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if not any(json_equal(value, seen) for seen in out):
            out.append(value)
    return out


def _identity(item: Any, merge_key: str | None) -> Any:
    if merge_key is None:
        return item
    return item.get(merge_key) if isinstance(item, dict) else None


def _position(order: list[Any], item: Any, merge_key: str | None) -> int:
    wanted = _identity(item, merge_key)
    for i, candidate in enumerate(order):
        if json_equal(_identity(candidate, merge_key), wanted):
            return i
    return -1


def _normalize_order(merged: list[Any], patch_order: list[Any], server_order: list[Any],
                     merge_key: str | None) -> list[Any]:
    """Upstream's normalizeElementOrder + mergeSortedSlice.

    Items named by `patch_order` come in that order; the others ("server-only") keep the
    order of `server_order`. The two runs are interleaved: a server-only item goes before a
    patch item only when both were in the server's list and it came first there.
    """
    if merge_key is not None:
        for item in merged:
            _require_merge_key(item, merge_key)
    in_patch = [item for item in merged if _position(patch_order, item, merge_key) >= 0]
    server_only = [item for item in merged if _position(patch_order, item, merge_key) < 0]
    in_patch.sort(key=lambda item: _position(patch_order, item, merge_key))
    server_only.sort(key=lambda item: _sort_index(server_order, item, merge_key))

    out: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(in_patch):
        if j >= len(in_patch):
            out.append(server_only[i])
            i += 1
        elif i >= len(server_only):
            out.append(in_patch[j])
            j += 1
        else:
            left = _position(server_order, server_only[i], merge_key)
            right = _position(server_order, in_patch[j], merge_key)
            if left >= 0 and right >= 0 and left < right:
                out.append(server_only[i])
                i += 1
            else:
                out.append(in_patch[j])
                j += 1
    return out


def _sort_index(order: list[Any], item: Any, merge_key: str | None) -> int:
    position = _position(order, item, merge_key)
    return position if position >= 0 else len(order)


def _apply_element_orders(original: dict[str, Any], patch: dict[str, Any],
                          field: Field | None) -> None:
    """Merge every list named by a `$setElementOrder/<list>` and put it in that order."""
    for key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(key)
        if not isinstance(order, list):
            raise BadRequest("invalid patch format of setElementOrder list")
        name = _directive_target(key, SET_ELEMENT_ORDER)
        child = schema.child_field(field, name)
        merge_key = child.merge_key if child is not None else None
        found_original, found_patch = name in original, name in patch
        current, patch_list = original.get(name), patch.pop(name, None)
        if found_original and not isinstance(current, list):
            raise BadRequest(f"expected a list at {name}, got {current!r}")
        if found_patch and not isinstance(patch_list, list):
            raise BadRequest(f"expected a list at {name}, got {patch_list!r}")
        _validate_order(patch_list or [], order, merge_key)

        if found_original and found_patch:
            merged = _merge_list(current, patch_list, child)  # type: ignore[arg-type]
        elif found_patch:
            merged = _fresh(patch_list, child)
        elif found_original:
            merged = current  # type: ignore[assignment]
        else:
            continue
        if merged and (merge_key is not None or not _element_kind(merged)):
            merged = _normalize_order(merged, order, current or [], merge_key)
        original[name] = merged


def _validate_order(patch_list: list[Any], order: list[Any], merge_key: str | None) -> None:
    """The patch list must name its items in the same relative order as $setElementOrder."""
    if not order or not patch_list:
        return
    items = [item for item in patch_list
             if not (isinstance(item, dict) and DIRECTIVE in item)]
    i = j = 0
    while i < len(items) and j < len(order):
        if merge_key is not None:
            _require_merge_key(items[i], merge_key)
            _require_merge_key(order[j], merge_key)
        if json_equal(_identity(items[i], merge_key), _identity(order[j], merge_key)):
            i += 1
        j += 1
    if i < len(items):
        raise BadRequest(f"The order in patch list:\n{patch_list}\n doesn't match "
                         f"{SET_ELEMENT_ORDER.rstrip('/')} list:\n{order}\n")
