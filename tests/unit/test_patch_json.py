"""JSON patch (RFC 6902): the RFC's appendix A examples, Kubernetes-shaped cases, and the
apiserver's error codes (400 for a malformed body, 422 for an operation that cannot apply)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bramble.kube.errors import BadRequest, RequestEntityTooLarge
from bramble.master.api.patch.jsonpatch import PatchNotApplicable, json_patch

CASES = [
    # name, original, operations, expected
    ("A.1 add an object member", {"foo": "bar"},
     [{"op": "add", "path": "/baz", "value": "qux"}], {"baz": "qux", "foo": "bar"}),
    ("A.2 add an array element", {"foo": ["bar", "baz"]},
     [{"op": "add", "path": "/foo/1", "value": "qux"}], {"foo": ["bar", "qux", "baz"]}),
    ("A.3 remove an object member", {"baz": "qux", "foo": "bar"},
     [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    ("A.4 remove an array element", {"foo": ["bar", "qux", "baz"]},
     [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
    ("A.5 replace a value", {"baz": "qux", "foo": "bar"},
     [{"op": "replace", "path": "/baz", "value": "boo"}], {"baz": "boo", "foo": "bar"}),
    ("A.6 move a value", {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
     [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
     {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
    ("A.7 move an array element", {"foo": ["all", "grass", "cows", "eat"]},
     [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
     {"foo": ["all", "cows", "eat", "grass"]}),
    ("A.8 test succeeds", {"baz": "qux", "foo": ["a", 2, "c"]},
     [{"op": "test", "path": "/baz", "value": "qux"},
      {"op": "test", "path": "/foo/1", "value": 2}],
     {"baz": "qux", "foo": ["a", 2, "c"]}),
    ("A.10 add a nested member", {"foo": "bar"},
     [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
     {"foo": "bar", "child": {"grandchild": {}}}),
    ("A.11 unrecognised members are ignored", {"foo": "bar"},
     [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}], {"foo": "bar", "baz": "qux"}),
    # "~01" is "~1", not "/": unescape ~1 before ~0.
    ("A.14 escape ordering", {"/": 9, "~1": 10},
     [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
    ("A.16 add an array value", {"foo": ["bar"]},
     [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
     {"foo": ["bar", ["abc", "def"]]}),
    ("add replaces an existing member", {"spec": {"replicas": 1}},
     [{"op": "add", "path": "/spec/replicas", "value": 3}], {"spec": {"replicas": 3}}),
    ("a label key with a slash", {"metadata": {"labels": {}}},
     [{"op": "add", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "web"}],
     {"metadata": {"labels": {"app.kubernetes.io/name": "web"}}}),
    ("append a container with -", {"spec": {"containers": [{"name": "a"}]}},
     [{"op": "add", "path": "/spec/containers/-", "value": {"name": "b"}}],
     {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}),
    ("add at the end index", {"a": [1]}, [{"op": "add", "path": "/a/1", "value": 2}],
     {"a": [1, 2]}),
    ("replace the image of the first container",
     {"spec": {"containers": [{"name": "a", "image": "nginx:1"}]}},
     [{"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:2"}],
     {"spec": {"containers": [{"name": "a", "image": "nginx:2"}]}}),
    ("replace an array element", {"a": [1, 2, 3]},
     [{"op": "replace", "path": "/a/1", "value": 9}], {"a": [1, 9, 3]}),
    ("copy a value", {"metadata": {"labels": {"app": "web"}}, "spec": {}},
     [{"op": "copy", "from": "/metadata/labels", "path": "/spec/selector"}],
     {"metadata": {"labels": {"app": "web"}}, "spec": {"selector": {"app": "web"}}}),
    ("replace the whole document", {"a": 1},
     [{"op": "replace", "path": "", "value": {"b": 2}}], {"b": 2}),
    ("move to the same place", {"a": 1}, [{"op": "move", "from": "/a", "path": "/a"}],
     {"a": 1}),
    ("test then replace, as optimistic concurrency does", {"metadata": {"resourceVersion": "7"}},
     [{"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
      {"op": "replace", "path": "/metadata/resourceVersion", "value": "8"}],
     {"metadata": {"resourceVersion": "8"}}),
    ("test compares numbers by value", {"a": 1}, [{"op": "test", "path": "/a", "value": 1.0}],
     {"a": 1}),
    ("an empty patch", {"a": 1}, [], {"a": 1}),
    # As the apiserver's evanphx/json-patch: a missing member tests equal to null.
    ("test null on a missing member", {"a": 1}, [{"op": "test", "path": "/b", "value": None}],
     {"a": 1}),
]


@pytest.mark.parametrize(("name", "original", "operations", "expected"), CASES,
                         ids=[case[0] for case in CASES])
def test_json_patch(name: str, original: Any, operations: list[Any], expected: Any) -> None:
    assert json_patch(original, operations) == expected


NOT_APPLICABLE = [
    # name, original, operations, fragment of the detail
    ("A.9 a failing test", {"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}],
     "testing value /baz failed"),
    ("A.12 add to a missing parent", {"foo": "bar"},
     [{"op": "add", "path": "/baz/bat", "value": "qux"}], "doc is missing path: /baz/bat"),
    ("A.15 strings are not numbers", {"/": 9, "~1": 10},
     [{"op": "test", "path": "/~01", "value": "10"}], "testing value /~01 failed"),
    # Python's True == 1 must not leak into JSON comparison.
    ("true is not 1", {"a": 1}, [{"op": "test", "path": "/a", "value": True}],
     "testing value /a failed"),
    ("test a missing path", {}, [{"op": "test", "path": "/a", "value": 1}],
     "testing value /a failed"),
    ("remove a missing member", {"a": 1}, [{"op": "remove", "path": "/b"}],
     "doc is missing key: /b"),
    ("replace a missing member", {"a": 1}, [{"op": "replace", "path": "/b", "value": 2}],
     "doc is missing key: /b"),
    ("index out of range", {"a": [1]}, [{"op": "add", "path": "/a/5", "value": 2}],
     "index out of range"),
    ("remove past the end", {"a": [1]}, [{"op": "remove", "path": "/a/1"}],
     "index out of range"),
    ("- only appends", {"a": [1]}, [{"op": "remove", "path": "/a/-"}], "invalid array index"),
    ("leading zeros are not indexes", {"a": [1, 2]},
     [{"op": "replace", "path": "/a/01", "value": 3}], "invalid array index"),
    ("a pointer starts with a slash", {"a": 1},
     [{"op": "replace", "path": "a", "value": 2}], "must start with '/'"),
    ("an unknown op", {"a": 1}, [{"op": "merge", "path": "/a", "value": 2}],
     "Unexpected kind: merge"),
    ("an op without a path", {"a": 1}, [{"op": "add", "value": 2}], "missing 'path'"),
    ("add without a value", {"a": 1}, [{"op": "add", "path": "/b"}], "has no value"),
    ("move into its own child", {"a": {"b": 1}}, [{"op": "move", "from": "/a", "path": "/a/b"}],
     "into its own child"),
    ("copy from a missing path", {"a": 1}, [{"op": "copy", "from": "/x", "path": "/b"}],
     "doc is missing key: /x"),
    ("remove the root", {"a": 1}, [{"op": "remove", "path": ""}], "the root has no parent"),
    ("a later failure fails the whole patch", {"a": 1},
     [{"op": "add", "path": "/b", "value": 2}, {"op": "remove", "path": "/zz"}],
     "doc is missing key: /zz"),
]


@pytest.mark.parametrize(("name", "original", "operations", "detail"), NOT_APPLICABLE,
                         ids=[case[0] for case in NOT_APPLICABLE])
def test_operations_that_cannot_apply_are_422(name: str, original: Any,
                                              operations: list[Any], detail: str) -> None:
    with pytest.raises(PatchNotApplicable) as caught:
        json_patch(original, operations)
    status = caught.value.status()
    # As errors.NewGenericServerResponse(422, ...) renders it: the detail is the cause.
    assert status["code"] == 422 and status["reason"] == "Invalid"
    assert status["message"] == "the server rejected our request due to an error in our request"
    assert status["details"]["causes"][0]["reason"] == "UnexpectedServerResponse"
    assert detail in status["details"]["causes"][0]["message"]


@pytest.mark.parametrize("body", [{"op": "add"}, "add", [1, 2], [{"op": "add"}, "x"]],
                         ids=["object", "string", "numbers", "mixed"])
def test_a_body_that_is_not_a_list_of_operations_is_400(body: Any) -> None:
    with pytest.raises(BadRequest):
        json_patch({}, body)


def test_too_many_operations_is_413() -> None:
    operations = [{"op": "test", "path": "", "value": {}}] * 10001
    with pytest.raises(RequestEntityTooLarge):
        json_patch({}, operations)


def test_inputs_are_never_mutated() -> None:
    original = {"spec": {"containers": [{"name": "a", "env": [{"name": "X"}]}]}}
    value = {"name": "Y"}
    operations = [{"op": "add", "path": "/spec/containers/0/env/-", "value": value},
                  {"op": "remove", "path": "/spec/containers/0/env/0"}]
    before, operations_before = copy.deepcopy(original), copy.deepcopy(operations)
    result = json_patch(original, operations)
    assert original == before and operations == operations_before
    result["spec"]["containers"][0]["env"][0]["name"] = "changed"
    assert value == {"name": "Y"}
