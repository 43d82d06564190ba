"""Server-side apply and field ownership: create, re-apply, pruning, conflicts, force, updates."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bramble.kube.errors import BadRequest, Conflict
from bramble.master.api.patch.apply import (
    decode_fields,
    encode_fields,
    path_string,
    record_update,
    server_side_apply,
)

KIND = "apps/v1/Deployment"
T0, T1, T2, T3 = ("2024-05-01T09:00:00Z", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z",
                  "2024-05-01T12:00:00Z")


def deployment(replicas: int | None = 2, image: str = "nginx:1.25",
               labels: dict[str, str] | None = None,
               extra_containers: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    """The manifest a user would `kubectl apply --server-side`."""
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
            {"name": "web", "image": image, "ports": [{"containerPort": 80}]},
            *extra_containers]}},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default",
                         "labels": labels if labels is not None else {"app": "web"}},
            "spec": spec}


def without_labels() -> dict[str, Any]:
    manifest = deployment()
    del manifest["metadata"]["labels"]
    return manifest


def entries(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["manager"]: e for e in obj["metadata"].get("managedFields", [])}


def owned(obj: dict[str, Any], manager: str) -> set[str]:
    return {path_string(p) for p in decode_fields(entries(obj)[manager]["fieldsV1"])}


def test_apply_creates_with_kubernetes_shaped_managed_fields() -> None:
    created = server_side_apply(None, deployment(), "kubectl", False, KIND, now=T1)
    assert created["spec"] == deployment()["spec"]
    assert created["metadata"]["managedFields"] == [{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T1,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            # name/namespace are identity, never owned; the selector is atomic (one leaf).
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {}, "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {'k:{"name":"web"}': {
                        ".": {}, "f:image": {}, "f:name": {},
                        # protocol is a key with a default: it is in the key, unowned.
                        "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {
                            ".": {}, "f:containerPort": {}}},
                    }}},
                },
            },
        },
    }]


def test_reapplying_an_unchanged_manifest_is_a_no_op() -> None:
    created = server_side_apply(None, deployment(), "kubectl", False, KIND, now=T1)
    live = copy.deepcopy(created)
    live["status"] = {"replicas": 2}  # the controllers' business, untouched by apply
    again = server_side_apply(live, deployment(), "kubectl", False, KIND, now=T2)
    assert again == live  # not even the entry's time moves


def test_a_changed_value_updates_the_object_and_the_entry_time() -> None:
    created = server_side_apply(None, deployment(), "kubectl", False, KIND, now=T1)
    changed = server_side_apply(created, deployment(image="nginx:1.26"), "kubectl", False,
                                KIND, now=T2)
    assert changed["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert entries(changed)["kubectl"]["time"] == T2


PRUNE_CASES = [
    # name, second manifest, what must be gone, what must remain
    ("a dropped label is removed", deployment(labels={"app": "web"}),
     lambda o: "tier" not in o["metadata"]["labels"],
     lambda o: o["metadata"]["labels"] == {"app": "web"}),
    ("a dropped field is removed", deployment(replicas=None),
     lambda o: "replicas" not in o["spec"], lambda o: "selector" in o["spec"]),
    # Pruning leaves no empty map behind (Go's omitempty would not show one either).
    ("dropping every label removes the map", without_labels(),
     lambda o: "labels" not in o["metadata"], lambda o: o["metadata"]["name"] == "web"),
    ("a dropped container is removed", deployment(),
     lambda o: [c["name"] for c in o["spec"]["template"]["spec"]["containers"]] == ["web"],
     lambda o: o["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"),
]


@pytest.mark.parametrize(("name", "second", "gone", "kept"), PRUNE_CASES,
                         ids=[c[0] for c in PRUNE_CASES])
def test_fields_a_manager_stops_applying_are_removed(name: str, second: dict[str, Any],
                                                     gone: Any, kept: Any) -> None:
    first = deployment(labels={"app": "web", "tier": "fe"},
                       extra_containers=({"name": "log", "image": "fluent-bit:3"},))
    live = server_side_apply(None, first, "kubectl", False, KIND, now=T1)
    result = server_side_apply(live, second, "kubectl", False, KIND, now=T2)
    assert gone(result) and kept(result)
    # Afterwards kubectl owns exactly what it would own had it applied `second` first.
    fresh = server_side_apply(None, second, "kubectl", False, KIND, now=T2)
    assert owned(result, "kubectl") == owned(fresh, "kubectl")


def test_a_dropped_field_someone_else_owns_stays() -> None:
    live = server_side_apply(None, deployment(replicas=2), "kubectl", False, KIND, now=T1)
    # An autoscaler writes replicas by update: it takes ownership from kubectl.
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 5
    scaled = record_update(live, scaled, "hpa-controller", now=T2)
    assert ".spec.replicas" in owned(scaled, "hpa-controller")
    assert ".spec.replicas" not in owned(scaled, "kubectl")
    result = server_side_apply(scaled, deployment(replicas=None), "kubectl", False, KIND, now=T3)
    assert result["spec"]["replicas"] == 5


def client_side_created(**overrides: Any) -> dict[str, Any]:
    """A Deployment made by `kubectl apply` (client-side): owned by an Update manager."""
    return record_update(None, deployment(**overrides), "kubectl-client-side-apply", now=T0)


def test_changing_a_field_another_manager_owns_is_a_conflict() -> None:
    live = client_side_created(replicas=3)
    with pytest.raises(Conflict) as caught:
        server_side_apply(live, deployment(replicas=5), "kubectl", False, KIND, now=T1)
    status = caught.value.status()
    assert status["code"] == 409 and status["reason"] == "Conflict"
    assert status["message"] == ('Apply failed with 1 conflict: conflict with '
                                 '"kubectl-client-side-apply" using apps/v1: .spec.replicas')
    assert status["details"]["causes"] == [{
        "reason": "FieldManagerConflict",
        "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
        "field": ".spec.replicas"}]


def test_several_conflicts_are_listed_per_manager() -> None:
    live = client_side_created(replicas=3)
    with pytest.raises(Conflict) as caught:
        server_side_apply(live, deployment(replicas=5, image="nginx:2"), "kubectl", False,
                          KIND, now=T1)
    assert caught.value.message == (
        'Apply failed with 2 conflicts: conflicts with "kubectl-client-side-apply" using '
        'apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name="web"].image')


def test_applying_the_same_value_shares_ownership() -> None:
    live = client_side_created(replicas=3)
    result = server_side_apply(live, deployment(replicas=3), "kubectl", False, KIND, now=T1)
    assert ".spec.replicas" in owned(result, "kubectl")
    assert ".spec.replicas" in owned(result, "kubectl-client-side-apply")
    assert {k: v for k, v in result.items() if k != "metadata"} == \
        {k: v for k, v in live.items() if k != "metadata"}


def test_force_takes_ownership() -> None:
    live = client_side_created(replicas=3)
    result = server_side_apply(live, deployment(replicas=5), "kubectl", True, KIND, now=T1)
    assert result["spec"]["replicas"] == 5
    assert ".spec.replicas" in owned(result, "kubectl")
    assert ".spec.replicas" not in owned(result, "kubectl-client-side-apply")
    assert ".spec.selector" in owned(result, "kubectl-client-side-apply")


def test_two_appliers_conflict_without_an_api_version_in_the_message() -> None:
    live = server_side_apply(None, deployment(replicas=2), "alice", False, KIND, now=T1)
    with pytest.raises(Conflict) as caught:
        server_side_apply(live, deployment(replicas=4), "bob", False, KIND, now=T2)
    assert caught.value.message == \
        'Apply failed with 1 conflict: conflict with "alice": .spec.replicas'


def test_an_object_without_managed_fields_is_owned_before_the_first_apply() -> None:
    live = deployment(replicas=3)
    with pytest.raises(Conflict) as caught:
        server_side_apply(live, deployment(replicas=5), "kubectl", False, KIND, now=T1)
    assert '"before-first-apply" using apps/v1: .spec.replicas' in caught.value.message


def test_set_lists_are_owned_per_value_and_merged() -> None:
    live = record_update(None, {**deployment(), "metadata": {
        "name": "web", "finalizers": ["a"]}}, "controller", now=T0)
    applied = {**deployment(), "metadata": {"name": "web", "finalizers": ["b"]}}
    result = server_side_apply(live, applied, "kubectl", False, KIND, now=T1)
    assert result["metadata"]["finalizers"] == ["a", "b"]
    assert entries(result)["kubectl"]["fieldsV1"]["f:metadata"] == {
        "f:finalizers": {'v:"b"': {}}}


def test_an_explicitly_empty_map_is_owned_and_kept() -> None:
    live = server_side_apply(None, deployment(labels={"app": "web"}), "kubectl", False, KIND,
                             now=T1)
    result = server_side_apply(live, deployment(labels={}), "kubectl", False, KIND, now=T2)
    assert result["metadata"]["labels"] == {}
    assert ".metadata.labels" in owned(result, "kubectl")


def test_status_is_neither_applied_nor_owned() -> None:
    live = server_side_apply(None, deployment(), "kubectl", False, KIND, now=T1)
    live["status"] = {"replicas": 2}
    applied = {**deployment(), "status": {"replicas": 99}}
    result = server_side_apply(live, applied, "kubectl", False, KIND, now=T2)
    assert result["status"] == {"replicas": 2}
    assert "f:status" not in entries(result)["kubectl"]["fieldsV1"]


def test_applied_managed_fields_are_refused() -> None:
    applied = deployment()
    applied["metadata"]["managedFields"] = [{"manager": "x"}]
    with pytest.raises(BadRequest, match="metadata.managedFields must be nil"):
        server_side_apply(None, applied, "kubectl", False, KIND)


def test_a_list_map_item_without_its_key_is_refused() -> None:
    applied = deployment()
    applied["spec"]["template"]["spec"]["containers"].append({"image": "busybox"})
    with pytest.raises(BadRequest, match='omits key field "name"'):
        server_side_apply(None, applied, "kubectl", False, KIND)


def test_apply_never_mutates_its_inputs() -> None:
    live = client_side_created(replicas=3)
    applied = without_labels()
    live_before, applied_before = copy.deepcopy(live), copy.deepcopy(applied)
    server_side_apply(live, applied, "kubectl", True, KIND, now=T1)
    assert live == live_before and applied == applied_before


# --- record_update


def test_an_update_owns_what_it_changes_and_takes_it_from_others() -> None:
    live = client_side_created()
    edited = copy.deepcopy(live)
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    del edited["metadata"]["labels"]
    result = record_update(live, edited, "kubectl-edit", now=T1)
    image = '.spec.template.spec.containers[name="web"].image'
    assert owned(result, "kubectl-edit") == {image}
    assert image not in owned(result, "kubectl-client-side-apply")
    # Removed fields belong to nobody.
    assert ".metadata.labels.app" not in owned(result, "kubectl-client-side-apply")
    assert entries(result)["kubectl-edit"]["time"] == T1


def test_an_update_that_changes_nothing_leaves_managed_fields_alone() -> None:
    live = client_side_created()
    assert record_update(live, copy.deepcopy(live), "kubectl-edit", now=T1) == live


def test_an_update_without_managed_fields_keeps_the_old_ones() -> None:
    live = client_side_created()
    sent = copy.deepcopy(live)
    del sent["metadata"]["managedFields"]
    assert record_update(live, sent, "kubectl-edit", now=T1) == live


def test_sending_empty_managed_fields_resets_them() -> None:
    live = client_side_created()
    sent = copy.deepcopy(live)
    sent["metadata"]["managedFields"] = []
    assert "managedFields" not in record_update(live, sent, "x", now=T1)["metadata"]


def test_a_status_update_owns_status_only() -> None:
    live = client_side_created()
    updated = copy.deepcopy(live)
    updated["status"] = {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]}
    updated["spec"]["replicas"] = 7  # the status subresource ignores spec
    result = record_update(live, updated, "kube-controller-manager", subresource="status",
                           now=T1)
    entry = entries(result)["kube-controller-manager"]
    assert entry["subresource"] == "status"
    assert owned(result, "kube-controller-manager") == {
        ".status.replicas", '.status.conditions[type="Available"]',
        '.status.conditions[type="Available"].type',
        '.status.conditions[type="Available"].status'}


def test_managed_fields_are_sorted_as_upstream() -> None:
    live = client_side_created(replicas=3)
    result = server_side_apply(live, deployment(replicas=3), "kubectl", False, KIND, now=T1)
    assert [(e["operation"], e["manager"]) for e in result["metadata"]["managedFields"]] == [
        ("Apply", "kubectl"), ("Update", "kubectl-client-side-apply")]


# --- the FieldsV1 format

FIELDS_V1 = {  # as `kubectl get -o yaml --show-managed-fields` prints a kubelet's status
    "f:status": {
        "f:conditions": {'k:{"type":"Ready"}': {".": {}, "f:lastTransitionTime": {},
                                                 "f:status": {}, "f:type": {}}},
        "f:containerStatuses": {},
        "f:podIPs": {".": {}, 'k:{"ip":"10.42.0.7"}': {".": {}, "f:ip": {}}},
    },
    "f:metadata": {"f:finalizers": {'v:"example.com/x"': {}}},
}


def test_fields_v1_round_trips() -> None:
    assert encode_fields(decode_fields(FIELDS_V1)) == FIELDS_V1


PATHS = [
    ((("f", "spec"), ("f", "replicas")), ".spec.replicas"),
    ((("f", "spec"), ("f", "containers"), ("k", '{"name":"web"}'), ("f", "image")),
     '.spec.containers[name="web"].image'),
    ((("f", "ports"), ("k", '{"containerPort":80,"protocol":"TCP"}')),
     '.ports[containerPort=80,protocol="TCP"]'),
    ((("f", "finalizers"), ("v", '"a"')), '.finalizers[="a"]'),
    ((("f", "args"), ("i", 0)), ".args[0]"),
]


@pytest.mark.parametrize(("path", "text"), PATHS, ids=[p[1] for p in PATHS])
def test_paths_print_like_the_apiserver(path: Any, text: str) -> None:
    assert path_string(path) == text
