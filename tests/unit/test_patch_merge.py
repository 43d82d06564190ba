"""JSON merge patch (RFC 7386): the RFC's appendix A table and Kubernetes-shaped cases."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bramble.master.api.patch.merge import json_equal, merge_patch

CASES = [
    # name, original, patch, expected
    ("replace a member", {"a": "b"}, {"a": "c"}, {"a": "c"}),
    ("add a member", {"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ("null deletes", {"a": "b"}, {"a": None}, {}),
    ("null deletes only its member", {"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ("a scalar replaces a list", {"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ("a list replaces a scalar", {"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ("nested objects merge", {"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ("lists are replaced, never merged", {"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ("a list patch replaces a list", ["a", "b"], ["c", "d"], ["c", "d"]),
    ("a list patch replaces an object", {"a": "b"}, ["c"], ["c"]),
    ("a null patch is null", {"a": "foo"}, None, None),
    ("a scalar patch replaces everything", {"a": "foo"}, "bar", "bar"),
    # Nulls already in the target are data, not deletions.
    ("nulls in the original stay", {"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ("an object patch on a list starts from {}", [1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ("nulls inside a new subtree vanish", {}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    # kubectl label / annotate / scale send merge patches.
    ("kubectl label", {"metadata": {"labels": {"app": "web"}}},
     {"metadata": {"labels": {"tier": "fe"}}},
     {"metadata": {"labels": {"app": "web", "tier": "fe"}}}),
    ("kubectl label app-", {"metadata": {"labels": {"app": "web", "tier": "fe"}}},
     {"metadata": {"labels": {"app": None}}}, {"metadata": {"labels": {"tier": "fe"}}}),
    ("kubectl scale", {"spec": {"replicas": 1}, "status": {"replicas": 1}},
     {"spec": {"replicas": 3}}, {"spec": {"replicas": 3}, "status": {"replicas": 1}}),
    ("containers are replaced wholesale",
     {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}},
     {"spec": {"containers": [{"name": "a", "image": "y"}]}},
     {"spec": {"containers": [{"name": "a", "image": "y"}]}}),
    ("an empty patch changes nothing", {"a": {"b": 1}}, {}, {"a": {"b": 1}}),
]


@pytest.mark.parametrize(("name", "original", "patch", "expected"), CASES,
                         ids=[case[0] for case in CASES])
def test_merge_patch(name: str, original: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(original, patch) == expected


def test_inputs_are_never_mutated() -> None:
    original = {"a": {"b": [1, 2], "c": {"d": 1}}, "e": 1}
    patch = {"a": {"c": {"d": None, "x": {"y": 1}}}, "e": None, "f": [{"g": 1}]}
    before, patch_before = copy.deepcopy(original), copy.deepcopy(patch)
    result = merge_patch(original, patch)
    assert original == before and patch == patch_before
    result["a"]["b"].append(3)
    result["f"][0]["g"] = 2
    result["a"]["c"]["x"]["y"] = 2
    assert original == before and patch == patch_before


EQUALITY = [
    (1, 1.0, True),
    (True, 1, False),
    (False, 0, False),
    (True, True, True),
    ("1", 1, False),
    (None, None, True),
    ({"a": [1, {"b": 2}]}, {"a": [1.0, {"b": 2}]}, True),
    ({"a": 1}, {"a": 1, "b": None}, False),
    ([1, 2], [2, 1], False),
]


@pytest.mark.parametrize(("a", "b", "equal"), EQUALITY, ids=[repr(e[:2]) for e in EQUALITY])
def test_json_equal(a: Any, b: Any, equal: bool) -> None:
    assert json_equal(a, b) is equal
    assert json_equal(b, a) is equal
