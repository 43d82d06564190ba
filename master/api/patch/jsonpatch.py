"""JSON patch (RFC 6902) with JSON pointers (RFC 6901).

`application/json-patch+json`: a list of operations (add, remove, replace, move, copy, test)
applied in order; the whole patch fails if any operation fails. Pure; inputs never mutated.

Errors follow the Kubernetes API server (endpoints/handlers/patch.go): a body that is not a
list of operation objects is 400 BadRequest; more than 10000 operations is 413; an operation
that cannot be applied - a missing path, a bad index, a failed `test` - is a 422 with reason
Invalid, the generic message "the server rejected our request due to an error in our request"
and the specific error as a cause (that is `errors.NewGenericServerResponse(422, ...)`).
"""

from __future__ import annotations

import copy
from typing import Any

from bramble.kube.errors import BadRequest, RequestEntityTooLarge, StatusError

from .merge import json_equal

MAX_OPERATIONS = 10000  # apiserver's maxJSONPatchOperations


class PatchNotApplicable(StatusError):
    """An operation of a well-formed JSON patch could not be applied (HTTP 422)."""

    code, reason = 422, "Invalid"

    def __init__(self, detail: str) -> None:
        super().__init__(
            "the server rejected our request due to an error in our request",
            causes=[{"reason": "UnexpectedServerResponse", "message": detail}],
        )
        self.detail = detail


_Container = dict[str, Any] | list[Any]


def json_patch(original: Any, operations: Any) -> Any:
    """Apply RFC 6902 `operations` to `original` and return the result as a new value."""
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
        raise BadRequest("json: cannot unmarshal the patch: a JSON patch is a list of "
                         "operation objects")
    if len(operations) > MAX_OPERATIONS:
        raise RequestEntityTooLarge(
            f"The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, "
            f"got {len(operations)}")
    doc = copy.deepcopy(original)
    for operation in operations:
        doc = _apply(doc, operation)
    return doc


def _apply(doc: Any, operation: dict[str, Any]) -> Any:
    op = operation.get("op")
    path = _pointer(operation, "path")
    if op == "add":
        return _add(doc, path, _value(operation), op)
    if op == "remove":
        return _remove(doc, path, op)[0]
    if op == "replace":
        _get(doc, path, op)  # replace needs the target to exist
        if not path:
            return copy.deepcopy(_value(operation))
        doc = _remove(doc, path, op)[0]
        return _add(doc, path, _value(operation), op)
    if op == "move":
        source = _pointer(operation, "from")
        if path[: len(source)] == source and len(path) > len(source):
            raise PatchNotApplicable(f"move operation does not apply: cannot move "
                                     f"{_render(source)} into its own child {_render(path)}")
        if path == source:
            _get(doc, source, op)
            return doc
        doc, value = _remove(doc, source, op)
        return _add(doc, path, value, op)
    if op == "copy":
        value = _get(doc, _pointer(operation, "from"), op)
        return _add(doc, path, copy.deepcopy(value), op)
    if op == "test":
        expected = _value(operation)
        try:
            actual = _get(doc, path, op)
        except PatchNotApplicable:
            # evanphx/json-patch (the apiserver's) reads a missing member as null.
            actual = None
            if expected is not None:
                raise PatchNotApplicable(f"testing value {_render(path)} failed: "
                                         "test failed") from None
        if not json_equal(actual, expected):
            raise PatchNotApplicable(f"testing value {_render(path)} failed: test failed")
        return doc
    raise PatchNotApplicable(f"Unexpected kind: {op}")


def _value(operation: dict[str, Any]) -> Any:
    if "value" not in operation:
        raise PatchNotApplicable(f"{operation.get('op')} operation has no value")
    return copy.deepcopy(operation["value"])


def _pointer(operation: dict[str, Any], key: str) -> list[str]:
    """Split an RFC 6901 pointer into unescaped tokens ("" is the whole document)."""
    pointer = operation.get(key)
    if not isinstance(pointer, str):
        raise PatchNotApplicable(f"{operation.get('op')} operation missing {key!r} string")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchNotApplicable(f"invalid JSON pointer {pointer!r}: must start with '/'")
    # ~1 before ~0, so that "~01" becomes "~1" and not "/".
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _render(tokens: list[str]) -> str:
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)


def _index(token: str, length: int, path: list[str], op: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return length
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchNotApplicable(f"{op} operation does not apply: invalid array index "
                                 f"{token!r} in {_render(path)}")
    index = int(token)
    if index > length or (index == length and not allow_end):
        raise PatchNotApplicable(f"{op} operation does not apply: index out of range "
                                 f"in {_render(path)}")
    return index


def _locate(doc: Any, path: list[str], op: str) -> tuple[_Container, str]:
    """The container holding the last token of `path`, and that token."""
    if not path:
        raise PatchNotApplicable(f"{op} operation does not apply: the root has no parent")
    parent: Any = doc
    for depth, token in enumerate(path[:-1]):
        here = path[: depth + 1]
        if isinstance(parent, dict) and token in parent:
            parent = parent[token]
        elif isinstance(parent, list):
            parent = parent[_index(token, len(parent), here, op, allow_end=False)]
        else:
            raise PatchNotApplicable(f"{op} operation does not apply: doc is missing path: "
                                     f"{_render(path)}")
    if not isinstance(parent, dict | list):
        raise PatchNotApplicable(f"{op} operation does not apply: doc is missing path: "
                                 f"{_render(path)}")
    return parent, path[-1]


def _get(doc: Any, path: list[str], op: str) -> Any:
    if not path:
        return doc
    parent, token = _locate(doc, path, op)
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchNotApplicable(f"{op} operation does not apply: doc is missing key: "
                                     f"{_render(path)}")
        return parent[token]
    return parent[_index(token, len(parent), path, op, allow_end=False)]


def _add(doc: Any, path: list[str], value: Any, op: str) -> Any:
    if not path:
        return value
    parent, token = _locate(doc, path, op)
    if isinstance(parent, dict):
        parent[token] = value
    else:
        parent.insert(_index(token, len(parent), path, op, allow_end=True), value)
    return doc


def _remove(doc: Any, path: list[str], op: str) -> tuple[Any, Any]:
    """Remove the value at `path`; return the document and the removed value."""
    value = _get(doc, path, op)
    parent, token = _locate(doc, path, op)
    if isinstance(parent, dict):
        del parent[token]
    else:
        del parent[_index(token, len(parent), path, op, allow_end=False)]
    return doc, value
