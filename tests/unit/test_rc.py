"""ReplicationController: one decision for both kinds (table-driven over a ReplicaSet and a
ReplicationController), its selector, defaulting, validation and table row."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from bramble.kube.errors import BadRequest
from bramble.kube.printers import cells, column_definitions
from bramble.master.api.defaults import default
from bramble.master.api.validation import validate, validate_status
from bramble.master.controllers.replicaset import (
    REPLICA_SET,
    REPLICATION_CONTROLLER,
    ReplicatedKind,
    calculate_status,
    decide,
    map_selector,
    new_pod,
    rfc3339,
)

Obj = dict[str, Any]
NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
KINDS = [REPLICA_SET, REPLICATION_CONTROLLER]
RC_KEY = "v1/ReplicationController"


def ts(offset: float) -> str:
    return rfc3339(NOW + offset)


def owner(kind: ReplicatedKind, replicas: int = 3, *, name: str = "web",
          deleting: bool = False) -> Obj:
    """A ReplicaSet or ReplicationController selecting app=web, its template labelled
    app=web,tier=fe - the same owner in each kind's own shape."""
    selector: Any = {"app": "web"}
    if kind is REPLICA_SET:
        selector = {"matchLabels": selector}
    meta: Obj = {"name": name, "namespace": "default", "uid": f"uid-{name}", "generation": 4}
    if deleting:
        meta["deletionTimestamp"] = ts(0)
    return {"apiVersion": f"{kind.group}/{kind.version}".lstrip("/"), "kind": kind.kind,
            "metadata": meta,
            "spec": {"replicas": replicas, "selector": selector,
                     "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}}}


def pod(name: str, *, controller: tuple[ReplicatedKind, str] | None = None,
        labels: dict[str, str] | None = None, ready: bool = True, node: str = "n1",
        phase: str = "Running", deleting: bool = False) -> Obj:
    meta: Obj = {"name": name, "namespace": "default", "uid": f"uid-{name}",
                 "creationTimestamp": ts(-200), "labels": labels or {"app": "web"},
                 "resourceVersion": "7"}
    if controller is not None:
        kind, owner_name = controller
        meta["ownerReferences"] = [{"apiVersion": "v1" if kind is REPLICATION_CONTROLLER
                                    else "apps/v1", "kind": kind.kind, "name": owner_name,
                                    "uid": f"uid-{owner_name}", "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = ts(0)
    return {"metadata": meta, "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": [
                {"type": "Ready", "status": "True" if ready else "False",
                 "lastTransitionTime": ts(-100)}]}}


def names(pods: list[Obj]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


# --- the one decision, for both kinds --------------------------------------------------------

# (why, replicas, the pods by (name, controlled by this owner?, extra pod options),
#  owner being deleted, then expected: owned, adopted, released, create, deleted)
CASES = [
    ("empty: create all three", 3, [], False,
     [], [], [], 3, []),
    ("one of three: create 3 - 1 = 2", 3, [("a", True, {})], False,
     ["a"], [], [], 2, []),
    ("an orphan with the labels is adopted and counts", 2,
     [("a", True, {}), ("orphan", False, {})], False,
     ["a", "orphan"], ["orphan"], [], 0, []),
    ("a pod of ours whose labels changed is released and replaced", 1,
     [("stray", True, {"labels": {"app": "db"}})], False,
     [], [], ["stray"], 1, []),
    ("a dying orphan is not adopted; a dying pod of ours is not active", 1,
     [("going", False, {"deleting": True}), ("ours-going", True, {"deleting": True})], False,
     ["ours-going"], [], [], 1, []),
    ("terminated pods do not count: 2 active of 2 wanted", 2,
     [("a", True, {}), ("b", True, {}), ("done", True, {"phase": "Succeeded"})], False,
     ["a", "b", "done"], [], [], 0, []),
    # Surplus 3 - 1 = 2: the unscheduled pod goes first, then the not-ready one.
    ("surplus: the least valuable go", 1,
     [("good", True, {}), ("bad", True, {"ready": False}), ("worse", True, {"node": ""})],
     False, ["good", "bad", "worse"], [], [], 0, ["worse", "bad"]),
    ("being deleted: no adoption, release, create or delete", 3,
     [("a", True, {}), ("orphan", False, {}), ("stray", True, {"labels": {"app": "db"}})],
     True, ["a"], [], [], 0, []),
]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
@pytest.mark.parametrize(("why", "replicas", "given", "deleting", "owned", "adopted",
                          "released", "create", "deleted"), CASES, ids=[c[0] for c in CASES])
def test_decide(kind: ReplicatedKind, why: str, replicas: int, given: list, deleting: bool,
                owned: list[str], adopted: list[str], released: list[str], create: int,
                deleted: list[str]) -> None:
    o = owner(kind, replicas, deleting=deleting)
    pods = [pod(n, controller=(kind, "web") if ours else None, **opts)
            for n, ours, opts in given]
    decision = decide(o, kind.selector(o["spec"]["selector"]), pods, NOW)
    assert names(decision.claim.owned) == owned, why
    assert names(decision.claim.adopt) == adopted, why
    assert names(decision.claim.release) == released, why
    assert (decision.plan.create, names(decision.plan.delete)) == (create, deleted), why
    for adoption in decision.claim.adopt:
        # The controllerRef names the owner's own kind and apiVersion.
        ref = adoption["metadata"]["ownerReferences"][-1]
        assert (ref["apiVersion"], ref["kind"]) == (o["apiVersion"], kind.kind)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_the_other_kind_controls_its_pods(kind: ReplicatedKind) -> None:
    # A pod controlled by the other kind's owner of the same name is not ours: the
    # controllerRef is matched by uid, never by name or selector.
    other = REPLICA_SET if kind is REPLICATION_CONTROLLER else REPLICATION_CONTROLLER
    theirs = pod("theirs", controller=(other, "web-other"))
    o = owner(kind, 1)
    decision = decide(o, kind.selector(o["spec"]["selector"]), [theirs], NOW)
    assert (decision.claim.owned, decision.plan.create) == ([], 1)


def test_related_pods_are_read_only_for_a_surplus() -> None:
    reads: list[int] = []

    def related() -> list[Obj]:
        reads.append(1)
        return []

    o = owner(REPLICATION_CONTROLLER, 1)
    selector = map_selector(o["spec"]["selector"])
    decide(o, selector, [pod("a", controller=(REPLICATION_CONTROLLER, "web"))], NOW, related)
    assert reads == []  # 1 of 1: nothing goes, the siblings are not looked at
    two = [pod(n, controller=(REPLICATION_CONTROLLER, "web")) for n in ("a", "b")]
    decide(o, selector, two, NOW, related)
    assert reads == [1]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_status_for_both_kinds(kind: ReplicatedKind) -> None:
    pods = [pod("a"), pod("b", ready=False),
            pod("c", labels={"app": "web", "tier": "fe"})]
    status, after = calculate_status(owner(kind), pods, ("FailedCreate", "quota"), NOW)
    # Fully labeled: only c has the template's app and tier; ready and available: a and c.
    assert status == {"replicas": 3, "fullyLabeledReplicas": 1, "readyReplicas": 2,
                      "availableReplicas": 2, "observedGeneration": 4,
                      "conditions": [{"type": "ReplicaFailure", "status": "True",
                                      "lastTransitionTime": ts(0), "reason": "FailedCreate",
                                      "message": "quota"}]}
    assert after is None


def test_new_pod_of_a_replication_controller() -> None:
    p = new_pod(owner(REPLICATION_CONTROLLER))
    assert p["metadata"]["generateName"] == "web-"
    assert p["metadata"]["labels"] == {"app": "web", "tier": "fe"}
    assert p["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "ReplicationController", "name": "web",
         "uid": "uid-web", "controller": True, "blockOwnerDeletion": True}]


# --- the map selector -------------------------------------------------------------------------

@pytest.mark.parametrize(("selector", "labels", "matches"), [
    ({"app": "web"}, {"app": "web", "tier": "fe"}, True),
    ({"app": "web", "tier": "fe"}, {"app": "web"}, False),  # every term must hold
    ({"app": "web"}, {"app": "db"}, False),
])
def test_map_selector_matches_by_equality(selector: Obj, labels: Obj, matches: bool) -> None:
    assert map_selector(selector).matches(labels) is matches


@pytest.mark.parametrize("selector", [None, {}])
def test_an_empty_map_selects_everything(selector: Obj | None) -> None:
    assert map_selector(selector).empty()  # the controller refuses to act on it


@pytest.mark.parametrize("selector", [["app"], "app=web", {"app": 1},
                                      {"matchLabels": {"app": "web"}}])
def test_a_map_selector_is_a_map_of_strings(selector: Any) -> None:
    with pytest.raises(BadRequest):
        map_selector(selector)


# --- defaulting -------------------------------------------------------------------------------

def rc(spec: Obj | None = None, labels: Obj | None = None) -> Obj:
    meta: Obj = {"name": "web", "namespace": "default"}
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ReplicationController", "metadata": meta,
            "spec": spec if spec is not None else {
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}}


def test_defaults_fill_selector_labels_and_replicas_from_the_template() -> None:
    obj = rc()
    default(RC_KEY, obj)
    assert obj["spec"]["selector"] == {"app": "web"}
    assert obj["metadata"]["labels"] == {"app": "web"}
    assert obj["spec"]["replicas"] == 1
    assert obj["spec"]["template"]["spec"]["restartPolicy"] == "Always"  # the pod template
    # Copies: changing one map later does not change the others.
    obj["spec"]["selector"]["x"] = "y"
    assert obj["metadata"]["labels"] == {"app": "web"}
    again = copy.deepcopy(obj)
    default(RC_KEY, again)
    assert again == obj  # idempotent


def test_defaults_keep_what_is_given() -> None:
    obj = rc(labels={"team": "a"})
    obj["spec"].update(selector={"app": "web"}, replicas=0)
    obj["spec"]["template"]["metadata"]["labels"]["tier"] = "fe"
    default(RC_KEY, obj)
    assert obj["spec"]["selector"] == {"app": "web"}  # not widened to the template's
    assert obj["metadata"]["labels"] == {"team": "a"}
    assert obj["spec"]["replicas"] == 0  # an explicit 0 is a value


# --- validation -------------------------------------------------------------------------------

def causes(errors: list) -> set[tuple[str, str]]:
    return {(e.field, e.reason) for e in errors}


@pytest.mark.parametrize(("change", "expected"), [
    (lambda o: None, set()),
    (lambda o: o["spec"].update(replicas=-1),
     {("spec.replicas", "FieldValueInvalid")}),
    (lambda o: o["spec"].update(minReadySeconds=-1),
     {("spec.minReadySeconds", "FieldValueInvalid")}),
    (lambda o: o["spec"].update(selector={"app": "db"}),
     {("spec.template.metadata.labels", "FieldValueInvalid")}),
    (lambda o: o["spec"]["template"]["spec"].update(restartPolicy="Never"),
     {("spec.template.spec.restartPolicy", "FieldValueNotSupported")}),
    (lambda o: o["spec"]["template"]["spec"].update(activeDeadlineSeconds=5),
     {("spec.template.spec.activeDeadlineSeconds", "FieldValueForbidden")}),
    (lambda o: o["spec"]["template"]["spec"].update(containers=[]),
     {("spec.template.spec.containers", "FieldValueRequired")}),
    (lambda o: o["spec"].update(selector="app=web"),
     {("spec.selector", "FieldValueInvalid")}),
    # No labels on the template: nothing to default the selector from.
    (lambda o: o["spec"]["template"]["metadata"].pop("labels"),
     {("spec.selector", "FieldValueRequired")}),
    (lambda o: o["spec"].pop("template"),
     {("spec.selector", "FieldValueRequired"), ("spec.template", "FieldValueRequired")}),
])
def test_validation_causes(change: Any, expected: set[tuple[str, str]]) -> None:
    obj = rc()
    change(obj)
    assert causes(validate(RC_KEY, obj)) == expected


def test_the_selector_may_change() -> None:
    # Unlike apps/v1, a ReplicationController's selector is mutable.
    old = rc()
    default(RC_KEY, old)
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"app": "web", "tier": "fe"}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "fe"
    assert validate(RC_KEY, new, old) == []


def test_status_validation() -> None:
    old = rc()
    new = copy.deepcopy(old)
    new["status"] = {"replicas": 2, "readyReplicas": 3, "availableReplicas": 1}
    assert causes(validate_status(RC_KEY, new, old)) == {
        ("status.readyReplicas", "FieldValueInvalid")}


# --- the table ---------------------------------------------------------------------------------

def test_table_row() -> None:
    obj = rc()
    default(RC_KEY, obj)
    obj["metadata"]["creationTimestamp"] = "2023-11-14T22:00:00Z"
    obj["spec"]["replicas"] = 3
    obj["status"] = {"replicas": 2, "readyReplicas": 1}
    assert [c["name"] for c in column_definitions(RC_KEY)] == [
        "Name", "Desired", "Current", "Ready", "Age", "Containers", "Images", "Selector"]
    now = datetime.fromtimestamp(NOW, UTC)  # 13 min 20 s after creation
    assert cells(RC_KEY, obj, now) == ["web", 3, 2, 1, "13m", "c", "nginx:1", "app=web"]


# --- bramble describe rc ----------------------------------------------------------------------

def test_describe_as_kubectl_does() -> None:
    from bramble.cli.describe import describe, related_queries

    obj = rc(labels={"app": "web"})
    default(RC_KEY, obj)
    obj["metadata"]["uid"] = "uid-web"
    obj["status"] = {"replicas": 2, "conditions": [
        {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate"}]}
    [query] = related_queries(RC_KEY, obj).values()
    assert (query.plural, query.params) == ("pods", {"labelSelector": "app=web"})
    pods = [{"metadata": {"name": n, "ownerReferences": [{"uid": "uid-web"}]},
             "status": {"phase": phase}} for n, phase in (("a", "Running"), ("b", "Pending"))]
    text = describe(RC_KEY, obj, related={"pods": pods}, now=datetime.fromtimestamp(NOW, UTC))
    lines = text.splitlines()
    assert lines[:6] == ["Name:         web", "Namespace:    default", "Selector:     app=web",
                         "Labels:       app=web", "Annotations:  <none>",
                         "Replicas:     2 current / 1 desired"]
    assert "Pods Status:  1 Running / 1 Waiting / 0 Succeeded / 0 Failed" in lines
    assert "Pod Template:" in lines and "  ReplicaFailure  True    FailedCreate" in lines
