"""What the API does to an object on each write: the registry strategies, as pure functions."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bramble.kube.errors import BadRequest
from bramble.master.api import strategy
from bramble.master.api.resources import Registry, ResourceType

REGISTRY = Registry()


def rt(plural: str, group: str = "") -> ResourceType:
    found = REGISTRY.by_path(group, "v1", plural)
    assert found is not None, plural
    return found


POD, NODE, NAMESPACE, SERVICE = rt("pods"), rt("nodes"), rt("namespaces"), rt("services")
CONFIGMAP, DEPLOYMENT = rt("configmaps"), rt("deployments", "apps")
NOW = "2024-05-01T12:00:00Z"
# A graceful delete's deletionTimestamp is NOW plus the grace period (as in Kubernetes).
EARLIER = "2024-05-01T11:00:00Z"


# -- prepare_create -----------------------------------------------------------------------

CREATE_STATUS = [
    # (type, status sent by the client, status stored)
    (POD, {"phase": "Running", "podIP": "10.0.0.9"}, {"phase": "Pending",
                                                       "qosClass": "BestEffort"}),
    (NAMESPACE, {"phase": "Terminating"}, {"phase": "Active"}),
    (SERVICE, {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}, {"loadBalancer": {}}),
    (DEPLOYMENT, {"replicas": 9}, {}),
    (rt("jobs", "batch"), {"succeeded": 1}, {}),
    # A node agent creates its Node with the status it observed.
    (NODE, {"capacity": {"cpu": "4"}}, {"capacity": {"cpu": "4"}}),
]


@pytest.mark.parametrize(("rtype", "sent", "stored"), CREATE_STATUS,
                         ids=[c[0].plural for c in CREATE_STATUS])
def test_create_resets_status_per_kind(rtype: ResourceType, sent: dict, stored: dict) -> None:
    obj = {"metadata": {"name": "x"}, "spec": {}, "status": sent}
    strategy.prepare_create(rtype, obj, namespace="default", uid="u", now=NOW,
                            random_suffix="abcde")
    assert obj["status"] == stored


def test_create_without_status_subresource_leaves_the_body() -> None:
    obj = {"metadata": {"name": "cm"}, "data": {"a": "1"}}
    strategy.prepare_create(CONFIGMAP, obj, namespace="default", uid="u", now=NOW,
                            random_suffix="abcde")
    assert "status" not in obj and obj["data"] == {"a": "1"}


def test_create_pod_status_has_the_qos_class() -> None:
    res = {"limits": {"cpu": "1", "memory": "1Gi"}}
    obj = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "resources": res}]}}
    strategy.prepare_create(POD, obj, namespace="default", uid="u", now=NOW,
                            random_suffix="abcde")
    assert obj["status"] == {"phase": "Pending", "qosClass": "Guaranteed"}


def test_create_sets_and_clears_server_owned_metadata() -> None:
    obj = {"metadata": {
        "name": "web", "namespace": "elsewhere", "uid": "client-uid",
        "creationTimestamp": "1999-01-01T00:00:00Z", "deletionTimestamp": EARLIER,
        "deletionGracePeriodSeconds": 30, "selfLink": "/api/v1/x", "resourceVersion": "42",
        "generation": 7, "labels": {"app": "web"}}, "spec": {}}
    errors = strategy.prepare_create(POD, obj, namespace="default", uid="server-uid",
                                     now=NOW, random_suffix="abcde")
    assert errors == []
    assert obj["metadata"] == {"name": "web", "namespace": "default", "uid": "server-uid",
                               "creationTimestamp": NOW, "generation": 1,
                               "labels": {"app": "web"}}


@pytest.mark.parametrize(("rtype", "body_namespace", "request_namespace", "stored"), [
    (POD, None, "default", "default"),
    (POD, "default", "default", "default"),
    (NAMESPACE, "default", "", None),  # cluster-scoped: no namespace at all
    (NODE, None, "", None),
])
def test_create_namespace(rtype: ResourceType, body_namespace: str | None,
                          request_namespace: str, stored: str | None) -> None:
    m: dict[str, Any] = {"name": "x"}
    if body_namespace is not None:
        m["namespace"] = body_namespace
    obj = {"metadata": m, "spec": {}}
    strategy.prepare_create(rtype, obj, namespace=request_namespace, uid="u", now=NOW,
                            random_suffix="abcde")
    assert obj["metadata"].get("namespace") == stored


@pytest.mark.parametrize(("rtype", "generation"), [
    (POD, 1), (DEPLOYMENT, 1), (NODE, 1),
    (CONFIGMAP, None), (rt("secrets"), None), (rt("events"), None),  # no spec: no generation
])
def test_create_generation(rtype: ResourceType, generation: int | None) -> None:
    obj = {"metadata": {"name": "x", "generation": 5}}
    strategy.prepare_create(rtype, obj, namespace="default", uid="u", now=NOW,
                            random_suffix="abcde")
    assert obj["metadata"].get("generation") == generation


@pytest.mark.parametrize(("metadata", "name"), [
    ({"generateName": "web-"}, "web-x7k2q"),
    ({"generateName": "web-", "name": "fixed"}, "fixed"),  # a name wins
    ({"generateName": "web-", "name": ""}, "web-x7k2q"),
    # The prefix is cut so the whole name fits in 63 characters: 58 + 5.
    ({"generateName": "a" * 70}, "a" * 58 + "x7k2q"),
    ({"generateName": "b" * 58}, "b" * 58 + "x7k2q"),
])
def test_create_generate_name(metadata: dict, name: str) -> None:
    obj = {"metadata": dict(metadata), "spec": {}}
    strategy.prepare_create(POD, obj, namespace="default", uid="u", now=NOW,
                            random_suffix="x7k2q")
    assert obj["metadata"]["name"] == name
    assert len(obj["metadata"]["name"]) <= 63


def test_create_without_metadata() -> None:
    obj: dict[str, Any] = {"metadata": None}
    strategy.prepare_create(CONFIGMAP, obj, namespace="ns", uid="u", now=NOW,
                            random_suffix="abcde")
    assert obj["metadata"] == {"namespace": "ns", "uid": "u", "creationTimestamp": NOW}


# -- prepare_update -----------------------------------------------------------------------

OLD_META = {"name": "web", "namespace": "default", "uid": "u1", "creationTimestamp": EARLIER,
            "generation": 3, "resourceVersion": "10", "labels": {"a": "1"}}


def _old(rtype: ResourceType = DEPLOYMENT, **extra_meta: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {**copy.deepcopy(OLD_META), **extra_meta},
                           "spec": {"replicas": 1}}
    if rtype.has_status:
        obj["status"] = {"replicas": 1}
    return obj


def test_update_keeps_server_owned_metadata() -> None:
    old = _old(deletionTimestamp=EARLIER, deletionGracePeriodSeconds=0)
    new = {"metadata": {"name": "web", "namespace": "other", "uid": "forged",
                        "creationTimestamp": NOW, "generation": 99, "selfLink": "/x",
                        "resourceVersion": "10", "labels": {"a": "2"}},
           "spec": {"replicas": 1}}
    strategy.prepare_update(DEPLOYMENT, new, old)
    assert new["metadata"] == {"name": "web", "namespace": "default", "uid": "u1",
                               "creationTimestamp": EARLIER, "generation": 3,
                               "deletionTimestamp": EARLIER, "deletionGracePeriodSeconds": 0,
                               "resourceVersion": "10", "labels": {"a": "2"}}


def test_update_cannot_add_server_owned_fields() -> None:
    new = {"metadata": {"name": "web", "deletionTimestamp": NOW,
                        "deletionGracePeriodSeconds": 5}, "spec": {"replicas": 1}}
    strategy.prepare_update(DEPLOYMENT, new, _old())
    assert "deletionTimestamp" not in new["metadata"]
    assert "deletionGracePeriodSeconds" not in new["metadata"]


@pytest.mark.parametrize(("old_status", "new_status", "kept"), [
    ({"replicas": 1}, {"replicas": 5}, {"replicas": 1}),
    ({"replicas": 1}, None, {"replicas": 1}),
    (None, {"replicas": 5}, None),  # no stored status: none appears
])
def test_update_keeps_status(old_status: dict | None, new_status: dict | None,
                             kept: dict | None) -> None:
    old = _old()
    old.pop("status")
    if old_status is not None:
        old["status"] = old_status
    new: dict[str, Any] = {"metadata": {"name": "web"}, "spec": {"replicas": 1}}
    if new_status is not None:
        new["status"] = new_status
    strategy.prepare_update(DEPLOYMENT, new, old)
    assert new.get("status") == kept
    if kept is not None:
        assert new["status"] is not old["status"]  # a copy, not shared


def test_update_of_a_type_without_status_keeps_the_body() -> None:
    old = {"metadata": {"name": "cm", "namespace": "default"}, "data": {"a": "1"}}
    new = {"metadata": {"name": "cm"}, "data": {"a": "2"}}
    strategy.prepare_update(CONFIGMAP, new, old)
    assert new == {"metadata": {"name": "cm", "namespace": "default"}, "data": {"a": "2"}}


@pytest.mark.parametrize(("rtype", "old_gen", "change", "new_gen"), [
    (DEPLOYMENT, 3, {"spec": {"replicas": 2}}, 4),
    (DEPLOYMENT, 3, {"spec": {"replicas": 1}}, 3),  # same spec
    (DEPLOYMENT, 3, {"metadata_labels": {"a": "9"}}, 3),  # metadata only
    (DEPLOYMENT, 3, {"status": {"replicas": 7}}, 3),  # status is ignored anyway
    (DEPLOYMENT, None, {"spec": {"replicas": 2}}, 2),  # no stored generation counts as 1
    (DEPLOYMENT, 3, {"spec": None}, 4),  # spec removed is a change
    (POD, 1, {"spec": {"replicas": 2}}, 2),
    (CONFIGMAP, None, {"data": {"x": "y"}}, None),  # no spec fields: no generation
])
def test_update_bumps_generation_only_on_spec_change(rtype: ResourceType, old_gen: int | None,
                                                     change: dict, new_gen: int | None) -> None:
    old = _old(rtype)
    if old_gen is None:
        old["metadata"].pop("generation")
    else:
        old["metadata"]["generation"] = old_gen
    new = copy.deepcopy(old)
    for key, value in change.items():
        if key == "metadata_labels":
            new["metadata"]["labels"] = value
        elif value is None:
            new.pop(key)
        else:
            new[key] = value
    strategy.prepare_update(rtype, new, old)
    assert new["metadata"].get("generation") == new_gen


# -- prepare_status_update ------------------------------------------------------------------


def test_status_update_takes_only_status_and_managed_fields() -> None:
    old = _old()
    new = {"metadata": {"name": "web", "labels": {"hacked": "1"},
                        "managedFields": [{"manager": "kubelet"}]},
           "spec": {"replicas": 100}, "status": {"replicas": 3}}
    result = strategy.prepare_status_update(new, old)
    expected = copy.deepcopy(old)
    expected["status"] = {"replicas": 3}
    expected["metadata"]["managedFields"] = [{"manager": "kubelet"}]
    assert result == expected
    assert old == _old()  # the stored object is not modified


def test_status_update_without_status_clears_it() -> None:
    result = strategy.prepare_status_update({"metadata": {}}, _old())
    assert result["status"] == {}
    assert "managedFields" not in result["metadata"]


# -- same_content -------------------------------------------------------------------------

BASE = {"metadata": {"name": "a", "resourceVersion": "1", "labels": {"x": "1"}},
        "spec": {"n": 1}, "status": {"s": 1}}


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(BASE)
    target = obj
    for key in path[:-1]:
        target = target[key]
    if value is None:
        target.pop(path[-1])
    else:
        target[path[-1]] = value
    return obj


@pytest.mark.parametrize(("other", "same"), [
    (copy.deepcopy(BASE), True),
    (_with(("metadata", "resourceVersion"), "2"), True),
    (_with(("metadata", "resourceVersion"), None), True),
    (_with(("metadata", "labels"), {"x": "2"}), False),
    (_with(("metadata", "managedFields"), [{"manager": "m"}]), False),
    (_with(("spec", "n"), 2), False),
    (_with(("status", "s"), 2), False),
    (_with(("status",), None), False),
    (_with(("extra",), True), False),
])
def test_same_content(other: dict, same: bool) -> None:
    assert strategy.same_content(BASE, other) is same
    assert strategy.same_content(other, BASE) is same


# -- plan_delete --------------------------------------------------------------------------


def _pod(node: str | None = "pi1", phase: str | None = "Running",
         grace: int | None = None, **meta: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "nginx"}]}
    if node:
        spec["nodeName"] = node
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    obj: dict[str, Any] = {"metadata": {"name": "p", "namespace": "default", **meta},
                           "spec": spec}
    if phase:
        obj["status"] = {"phase": phase}
    return obj


def _obj(**meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "x", "namespace": "default", **meta}, "spec": {}}


PLAN_CASES = [
    # (id, type, object, propagation, grace, removed now?, metadata expected when marked)
    ("plain", CONFIGMAP, _obj(), None, None, True, None),
    ("background", DEPLOYMENT, _obj(), "Background", None, True, None),
    ("grace-ignored-for-non-pods", DEPLOYMENT, _obj(), None, 30, True, None),
    ("finalizer", CONFIGMAP, _obj(finalizers=["example.com/x"]), None, None, False,
     {"deletionTimestamp": NOW, "deletionGracePeriodSeconds": 0,
      "finalizers": ["example.com/x"]}),
    ("orphan", DEPLOYMENT, _obj(), "Orphan", None, False,
     {"deletionTimestamp": NOW, "deletionGracePeriodSeconds": 0, "finalizers": ["orphan"]}),
    ("orphan-not-twice", DEPLOYMENT, _obj(finalizers=["orphan"]), "Orphan", None, False,
     {"deletionTimestamp": NOW, "deletionGracePeriodSeconds": 0, "finalizers": ["orphan"]}),
    ("foreground", DEPLOYMENT, _obj(finalizers=["a"]), "Foreground", None, False,
     {"deletionTimestamp": NOW, "deletionGracePeriodSeconds": 0,
      "finalizers": ["a", "foregroundDeletion"]}),
    ("pod-unscheduled", POD, _pod(node=None, phase="Pending"), None, None, True, None),
    ("pod-on-node-default-grace", POD, _pod(), None, None, False,
     {"deletionTimestamp": "2024-05-01T12:00:30Z", "deletionGracePeriodSeconds": 30}),
    ("pod-on-node-pending", POD, _pod(phase="Pending"), None, None, False,
     {"deletionTimestamp": "2024-05-01T12:00:30Z", "deletionGracePeriodSeconds": 30}),
    ("pod-on-node-no-status", POD, _pod(phase=None), None, None, False,
     {"deletionTimestamp": "2024-05-01T12:00:30Z", "deletionGracePeriodSeconds": 30}),
    ("pod-spec-grace", POD, _pod(grace=5), None, None, False,
     {"deletionTimestamp": "2024-05-01T12:00:05Z", "deletionGracePeriodSeconds": 5}),
    ("pod-request-grace-wins", POD, _pod(grace=5), None, 12, False,
     {"deletionTimestamp": "2024-05-01T12:00:12Z", "deletionGracePeriodSeconds": 12}),
    ("pod-force", POD, _pod(), None, 0, True, None),
    ("pod-spec-grace-zero", POD, _pod(grace=0), None, None, True, None),
    ("pod-succeeded", POD, _pod(phase="Succeeded"), None, None, True, None),
    ("pod-failed", POD, _pod(phase="Failed"), None, 30, True, None),
    ("pod-terminated-with-finalizer", POD, _pod(phase="Failed", finalizers=["f"]), None,
     None, False, {"deletionTimestamp": NOW, "deletionGracePeriodSeconds": 0,
                   "finalizers": ["f"]}),
]


@pytest.mark.parametrize(("rtype", "obj", "propagation", "grace", "removed", "marked"),
                         [c[1:] for c in PLAN_CASES], ids=[c[0] for c in PLAN_CASES])
def test_plan_delete(rtype: ResourceType, obj: dict, propagation: str | None,
                     grace: int | None, removed: bool, marked: dict | None) -> None:
    original = copy.deepcopy(obj)
    plan = strategy.plan_delete(rtype, obj, now=NOW, propagation=propagation,
                                grace_seconds=grace)
    assert obj == original  # planned on a copy
    assert plan.remove is removed
    if removed:
        assert plan.obj == original
    else:
        expected = {**original["metadata"], **marked}
        assert plan.obj["metadata"] == expected
        assert {k: v for k, v in plan.obj.items() if k != "metadata"} == {
            k: v for k, v in original.items() if k != "metadata"}


REPEAT_CASES = [
    # (id, stored grace, requested grace, propagation, removed now?, grace after, finalizers)
    ("shorter-grace-wins", 30, 10, None, False, 10, None),
    ("longer-grace-ignored", 10, 30, None, False, 10, None),
    ("default-grace-does-not-lengthen", 10, None, None, False, 10, None),
    ("equal-grace", 10, 10, None, False, 10, None),
    ("force-removes-now", 30, 0, None, True, None, None),
    ("orphan-added-later", 30, None, "Orphan", False, 30, ["orphan"]),
]


@pytest.mark.parametrize(("stored", "requested", "propagation", "removed", "grace_after",
                          "finalizers"), [c[1:] for c in REPEAT_CASES],
                         ids=[c[0] for c in REPEAT_CASES])
def test_repeated_delete_of_a_terminating_pod(stored: int, requested: int | None,
                                              propagation: str | None, removed: bool,
                                              grace_after: int | None,
                                              finalizers: list[str] | None) -> None:
    obj = _pod(deletionTimestamp=EARLIER, deletionGracePeriodSeconds=stored)
    plan = strategy.plan_delete(POD, obj, now=NOW, propagation=propagation,
                                grace_seconds=requested)
    assert plan.remove is removed
    if not removed:
        m = plan.obj["metadata"]
        assert m["deletionTimestamp"] == EARLIER  # the first delete's mark stays
        assert m["deletionGracePeriodSeconds"] == grace_after
        assert m.get("finalizers") == finalizers


def test_repeated_delete_with_finalizers_only_updates_finalizers() -> None:
    obj = _obj(deletionTimestamp=EARLIER, deletionGracePeriodSeconds=0, finalizers=["a"])
    plan = strategy.plan_delete(DEPLOYMENT, obj, now=NOW, propagation="Foreground",
                                grace_seconds=None)
    assert not plan.remove
    assert plan.obj["metadata"] == {**obj["metadata"],
                                    "finalizers": ["a", "foregroundDeletion"]}
    same = strategy.plan_delete(DEPLOYMENT, obj, now=NOW, propagation=None, grace_seconds=None)
    assert same.obj == obj


@pytest.mark.parametrize(("meta", "finished"), [
    ({}, False),  # not being deleted
    ({"deletionTimestamp": NOW}, True),
    ({"deletionTimestamp": NOW, "deletionGracePeriodSeconds": 0}, True),
    ({"deletionTimestamp": NOW, "deletionGracePeriodSeconds": 0, "finalizers": []}, True),
    ({"deletionTimestamp": NOW, "deletionGracePeriodSeconds": 0, "finalizers": ["f"]}, False),
    ({"deletionTimestamp": "2024-05-01T12:00:30Z", "deletionGracePeriodSeconds": 30}, False),
    ({"finalizers": []}, False),
])
def test_finished_deleting(meta: dict, finished: bool) -> None:
    assert strategy.finished_deleting({"metadata": meta}) is finished


# -- pod_qos_class ------------------------------------------------------------------------


def _containers(*resources: dict | None, init: tuple[dict | None, ...] = ()) -> dict:
    def c(i: int, res: dict | None) -> dict:
        return {"name": f"c{i}", **({"resources": res} if res is not None else {})}

    spec: dict[str, Any] = {"containers": [c(i, r) for i, r in enumerate(resources)]}
    if init:
        spec["initContainers"] = [c(i, r) for i, r in enumerate(init)]
    return spec


GUARANTEED = {"requests": {"cpu": "500m", "memory": "128Mi"},
              "limits": {"cpu": "500m", "memory": "128Mi"}}
LIMITS_ONLY = {"limits": {"cpu": "1", "memory": "1Gi"}}  # requests default to the limits
BURSTABLE = {"requests": {"cpu": "100m"}}

QOS_CASES = [
    # (pod spec, QoS class as Kubernetes decides it)
    pytest.param({}, "BestEffort", id="no-containers"),
    pytest.param(_containers(None), "BestEffort", id="no-resources"),
    pytest.param(_containers({}), "BestEffort", id="empty-resources"),
    pytest.param(_containers({"requests": {}, "limits": {}}), "BestEffort", id="empty-lists"),
    pytest.param(_containers(GUARANTEED), "Guaranteed", id="requests-equal-limits"),
    pytest.param(_containers(LIMITS_ONLY), "Guaranteed", id="limits-only"),
    pytest.param(_containers(GUARANTEED, LIMITS_ONLY), "Guaranteed",
                 id="every-container-guaranteed"),
    pytest.param(_containers(BURSTABLE), "Burstable", id="requests-only"),
    pytest.param(_containers({"requests": {"cpu": "100m", "memory": "64Mi"},
                              "limits": {"cpu": "1", "memory": "64Mi"}}), "Burstable",
                 id="requests-below-limits"),
    pytest.param(_containers({"limits": {"cpu": "1"}}), "Burstable", id="cpu-limit-only"),
    pytest.param(_containers({"limits": {"memory": "1Gi"}}), "Burstable",
                 id="memory-limit-only"),
    pytest.param(_containers(GUARANTEED, None), "Burstable",
                 id="one-guaranteed-one-besteffort"),
    pytest.param(_containers(GUARANTEED, init=(None,)), "Burstable",
                 id="guaranteed-with-besteffort-init"),
    pytest.param(_containers(GUARANTEED, init=(GUARANTEED,)), "Guaranteed",
                 id="guaranteed-with-guaranteed-init"),
    pytest.param(_containers(None, init=(BURSTABLE,)), "Burstable",
                 id="besteffort-with-burstable-init"),
    pytest.param(_containers({
        "requests": {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "1Gi"},
        "limits": {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "1Gi"}}), "Guaranteed",
        id="extra-resource-equal"),
    # Kubernetes compares quantities by value, and looks only at non-zero cpu and memory.
    pytest.param(_containers({"requests": {"cpu": "1000m", "memory": "1024Mi"},
                              "limits": {"cpu": "1", "memory": "1Gi"}}), "Guaranteed",
                 id="same-quantity-spelled-differently"),
    pytest.param(_containers({"requests": {"cpu": "2", "memory": "1Gi"},
                              "limits": {"cpu": 2, "memory": "1Gi"}}), "Guaranteed",
                 id="number-and-string"),
    pytest.param(_containers({"requests": {"ephemeral-storage": "1Gi"}}), "BestEffort",
                 id="only-ephemeral-storage"),
    pytest.param(_containers({"requests": {"cpu": "0", "memory": "0"}}), "BestEffort",
                 id="zero-requests"),
]


@pytest.mark.parametrize(("spec", "qos"), QOS_CASES)
def test_pod_qos_class(spec: dict, qos: str) -> None:
    assert strategy.pod_qos_class(spec) == qos


# -- check_name_and_namespace / resource_version_of ------------------------------------------


@pytest.mark.parametrize(("rtype", "meta", "namespace", "name", "error"), [
    (POD, {"name": "web", "namespace": "default"}, "default", "web", None),
    (POD, {}, "default", "web", None),  # the body may leave both out
    (POD, {"name": "web"}, "default", None, None),  # a create: no name on the URL
    (POD, {"namespace": "other"}, "default", None, "the namespace of the provided object "
     "does not match the namespace sent on the request"),
    (POD, {"name": "db"}, "default", "web",
     "the name of the object (db) does not match the name on the URL (web)"),
    (NODE, {"name": "pi1", "namespace": "anything"}, "", "pi1", None),  # cluster-scoped
    (NODE, {"name": "pi2"}, "", "pi1",
     "the name of the object (pi2) does not match the name on the URL (pi1)"),
])
def test_check_name_and_namespace(rtype: ResourceType, meta: dict, namespace: str,
                                  name: str | None, error: str | None) -> None:
    obj = {"metadata": meta}
    if error is None:
        strategy.check_name_and_namespace(rtype, obj, namespace=namespace, name=name)
    else:
        with pytest.raises(BadRequest) as err:
            strategy.check_name_and_namespace(rtype, obj, namespace=namespace, name=name)
        assert err.value.message == error
        assert err.value.code == 400


@pytest.mark.parametrize(("rv", "expected"), [
    (None, None), ("", None), ("17", 17), (17, 17), ("abc", BadRequest), ([1], BadRequest),
])
def test_resource_version_of(rv: Any, expected: Any) -> None:
    obj = {"metadata": {} if rv is None else {"resourceVersion": rv}}
    if expected is BadRequest:
        with pytest.raises(BadRequest):
            strategy.resource_version_of(obj)
    else:
        assert strategy.resource_version_of(obj) == expected
