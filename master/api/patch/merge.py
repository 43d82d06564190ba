"""JSON merge patch (RFC 7386), plus the JSON equality every patch kind needs.

`application/merge-patch+json`: objects merge key by key, `null` deletes a key, anything
else (lists included) replaces. This is also what strategic merge falls back to where the
schema knows nothing. Pure; the inputs are never mutated.
"""

from __future__ import annotations

import copy
from typing import Any


def merge_patch(original: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch and return the result as a new value."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    target = copy.deepcopy(original) if isinstance(original, dict) else {}
    _merge_into(target, patch)
    return target


def _merge_into(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            current = target.get(key)
            if not isinstance(current, dict):
                # A new subtree is itself merged into {}, so its nested nulls vanish.
                current = {}
                target[key] = current
            _merge_into(current, value)
        else:
            target[key] = copy.deepcopy(value)


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: 1 == 1.0, but True != 1 (Python disagrees on the latter)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict):
        return (isinstance(b, dict) and a.keys() == b.keys()
                and all(json_equal(v, b[k]) for k, v in a.items()))
    if isinstance(a, list):
        return (isinstance(b, list) and len(a) == len(b)
                and all(json_equal(x, y) for x, y in zip(a, b, strict=True)))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b
