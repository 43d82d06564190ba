"""The DaemonSet controller's decisions: eligibility, manage, rolling update, status."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bramble.master.controllers.daemonset import (
    REVISION_HASH_LABEL,
    add_daemon_tolerations,
    daemon_pod,
    daemonset_status,
    manage,
    rolling_update,
    should_run,
    target_node,
    template_hash,
)

Obj = dict[str, Any]
NOW = 1_800_000_000.0  # Unix seconds; pods below became ready at T0 = NOW - 100
T0 = "2027-01-15T07:58:20Z"
HASH = "new"


def node(name: str, labels: Obj | None = None, taints: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


def ds(**spec: Any) -> Obj:
    pod_spec = {"containers": [{"name": "c", "image": "x"}], **spec.pop("pod_spec", {})}
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "d", "namespace": "ns", "uid": "ds-uid", "generation": 3},
            "spec": {"selector": {"matchLabels": {"app": "d"}},
                     "template": {"metadata": {"labels": {"app": "d"}}, "spec": pod_spec},
                     **spec}}


def pod(name: str, on: str, *, hash_: str = HASH, ready: bool = True, phase: str = "Running",
        bound: bool = True, deleting: bool = False, created: str = T0) -> Obj:
    meta: Obj = {"name": name, "namespace": "ns", "uid": f"uid-{name}",
                 "creationTimestamp": created, "labels": {"app": "d", REVISION_HASH_LABEL: hash_}}
    if deleting:
        meta["deletionTimestamp"] = T0
    spec: Obj = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                                "values": [on]}]}]}}}}
    if bound:
        spec["nodeName"] = on
    conditions = [{"type": "Ready", "status": "True" if ready else "False",
                   "lastTransitionTime": T0}]
    return {"metadata": meta, "spec": spec, "status": {"phase": phase, "conditions": conditions}}


NO_SCHEDULE = {"key": "k", "value": "v", "effect": "NoSchedule"}
NO_EXECUTE = {"key": "k", "value": "v", "effect": "NoExecute"}
PREFER = {"key": "k", "value": "v", "effect": "PreferNoSchedule"}
CORDONED = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}


@pytest.mark.parametrize(("case", "daemonset", "the_node", "expected"), [
    ("plain node", ds(), node("n"), (True, True)),
    ("nodeSelector matches", ds(pod_spec={"nodeSelector": {"disk": "ssd"}}),
     node("n", {"disk": "ssd"}), (True, True)),
    ("nodeSelector does not", ds(pod_spec={"nodeSelector": {"disk": "ssd"}}),
     node("n", {"disk": "hdd"}), (False, False)),
    ("required affinity, 2nd term matches", ds(pod_spec={"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
            {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["2"]}]}]}}}}),
     node("n", {"zone": "b", "cores": "4"}), (True, True)),
    ("required affinity by name, other node", ds(pod_spec={"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["m"]}]}]}}}}),
     node("n"), (False, False)),
    ("template nodeName elsewhere", ds(pod_spec={"nodeName": "m"}), node("n"), (False, False)),
    # NoSchedule: no new pod, but a running one stays; NoExecute: it goes too.
    ("untolerated NoSchedule", ds(), node("n", taints=[NO_SCHEDULE]), (False, True)),
    ("untolerated NoExecute", ds(), node("n", taints=[NO_EXECUTE]), (False, False)),
    ("PreferNoSchedule is ignored", ds(), node("n", taints=[PREFER]), (True, True)),
    ("tolerated by Equal", ds(pod_spec={"tolerations": [
        {"key": "k", "operator": "Equal", "value": "v"}]}),
     node("n", taints=[NO_EXECUTE]), (True, True)),
    ("Equal with another value", ds(pod_spec={"tolerations": [
        {"key": "k", "operator": "Equal", "value": "w"}]}),
     node("n", taints=[NO_SCHEDULE]), (False, True)),
    ("tolerate everything", ds(pod_spec={"tolerations": [{"operator": "Exists"}]}),
     node("n", taints=[NO_EXECUTE, NO_SCHEDULE]), (True, True)),
    # What every daemon pod tolerates by itself.
    ("cordoned", ds(), node("n", taints=[CORDONED]), (True, True)),
    ("unreachable", ds(), node("n", taints=[UNREACHABLE]), (True, True)),
    ("network unavailable, pod network", ds(), node("n", taints=[
        {"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]),
     (False, True)),
    ("network unavailable, host network", ds(pod_spec={"hostNetwork": True}), node("n", taints=[
        {"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]),
     (True, True)),
])
def test_should_run(case: str, daemonset: Obj, the_node: Obj, expected: tuple) -> None:
    assert should_run(daemonset, the_node) == expected, case


def test_daemon_tolerations_replace_a_timed_one() -> None:
    spec = {"tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                             "effect": "NoExecute", "tolerationSeconds": 300},
                            {"key": "mine", "operator": "Exists"}]}
    add_daemon_tolerations(spec)
    unreachable = [t for t in spec["tolerations"] if t.get("key") ==
                   "node.kubernetes.io/unreachable"]
    assert unreachable == [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                            "effect": "NoExecute"}]  # never evicted for node problems
    assert {"key": "mine", "operator": "Exists"} in spec["tolerations"]
    assert len(spec["tolerations"]) == 7  # 6 daemon tolerations + the pod's own
    again = copy.deepcopy(spec)
    add_daemon_tolerations(again)
    assert again == spec


def test_daemon_pod_is_pinned_and_labelled() -> None:
    d = ds(pod_spec={"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {
            "matchExpressions": [{"key": "ssd", "operator": "Exists"}]}}]}}})
    p = daemon_pod(d, "pi2", "h1")
    assert p["metadata"]["generateName"] == "d-"
    assert p["metadata"]["labels"] == {"app": "d", REVISION_HASH_LABEL: "h1"}
    assert p["metadata"]["ownerReferences"] == [{
        "apiVersion": "apps/v1", "kind": "DaemonSet", "name": "d", "uid": "ds-uid",
        "controller": True, "blockOwnerDeletion": True}]
    affinity = p["spec"]["affinity"]["nodeAffinity"]
    # The required terms become the node's name (the node already matched them) ...
    assert affinity["requiredDuringSchedulingIgnoredDuringExecution"] == {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["pi2"]}]}]}
    # ... the preferred ones stay.
    assert affinity["preferredDuringSchedulingIgnoredDuringExecution"]
    assert target_node(p) == "pi2"
    # The DaemonSet itself is untouched.
    assert "nodeName" not in d["spec"]["template"]["spec"]


def test_template_hash_changes_with_the_template_only() -> None:
    a, b = ds(), ds()
    assert template_hash(a) == template_hash(b)
    b["spec"]["template"]["spec"]["containers"][0]["image"] = "y"
    assert template_hash(a) != template_hash(b)
    b = ds(minReadySeconds=5)  # not the template
    assert template_hash(a) == template_hash(b)
    assert set(template_hash(a)) <= set("bcdfghjklmnpqrstvwxz2456789")


def names(xs: list) -> list:
    return sorted(x if isinstance(x, str) else x[0] for x in xs)


@pytest.mark.parametrize(("case", "daemonset", "nodes", "pods", "create", "delete", "failed"), [
    ("a node without its pod gets one", ds(), [node("a"), node("b")], [pod("p", "a")],
     ["b"], [], []),
    ("an unbound pod counts for its node", ds(), [node("a")], [pod("p", "a", bound=False)],
     [], [], []),
    ("a terminating pod blocks the replacement", ds(), [node("a")],
     [pod("p", "a", deleting=True)], [], [], []),
    ("two pods: the newer goes", ds(), [node("a")],
     [pod("old", "a"), pod("young", "a", created="2027-01-15T08:00:00Z")],
     [], ["young"], []),
    ("ineligible node: pods go", ds(pod_spec={"nodeSelector": {"x": "y"}}), [node("a")],
     [pod("p", "a")], [], ["p"], []),
    ("NoSchedule taint: pod stays, none created", ds(),
     [node("a", taints=[NO_SCHEDULE]), node("b", taints=[NO_SCHEDULE])], [pod("p", "a")],
     [], [], []),
    ("NoExecute taint: pod goes", ds(), [node("a", taints=[NO_EXECUTE])], [pod("p", "a")],
     [], ["p"], []),
    ("failed pod is replaced (after its back-off)", ds(), [node("a")],
     [pod("p", "a", phase="Failed")], [], [], ["p"]),
    ("succeeded pod goes", ds(), [node("a")], [pod("p", "a", phase="Succeeded")],
     [], ["p"], []),
    # Node gone: an unbound pod goes; a bound one is the pod garbage collector's.
    ("node gone", ds(), [node("a")],
     [pod("p", "a"), pod("q", "gone"), pod("r", "gone", bound=False)], [], ["r"], []),
    # Surge: one old and one new may run side by side until the new one is available.
    ("surge: new not ready, both stay", ds(updateStrategy={"rollingUpdate": {"maxSurge": 1}}),
     [node("a")], [pod("old", "a", hash_="old"),
                   pod("new", "a", ready=False, created="2027-01-15T08:00:00Z")],
     [], [], []),
    ("surge: new available, old goes", ds(updateStrategy={"rollingUpdate": {"maxSurge": 1}}),
     [node("a")], [pod("old", "a", hash_="old"), pod("new", "a", created="2027-01-15T08:00:00Z")],
     [], ["old"], []),
    ("surge: only a terminating pod, a new one now",
     ds(updateStrategy={"rollingUpdate": {"maxSurge": 1}}), [node("a")],
     [pod("old", "a", hash_="old", deleting=True)], ["a"], [], []),
])
def test_manage(case: str, daemonset: Obj, nodes: list[Obj], pods: list[Obj],
                create: list[str], delete: list[str], failed: list[str]) -> None:
    plan = manage(daemonset, nodes, pods, HASH, NOW)
    assert (sorted(plan.create), sorted(plan.delete), names(plan.failed)) == (
        create, delete, failed), case


def rolling(**params: Any) -> Obj:
    return ds(updateStrategy={"type": "RollingUpdate", "rollingUpdate": params})


FOUR = [node(n) for n in "abcd"]


@pytest.mark.parametrize(("case", "daemonset", "pods", "create", "delete"), [
    # maxUnavailable 1, all old and available: one old pod goes (manage then adds the new).
    ("one at a time", rolling(maxUnavailable=1),
     [pod(n, n, hash_="old") for n in "abcd"], [], ["a"]),
    # 50% of 4 nodes = 2 at a time.
    ("percent", rolling(maxUnavailable="50%"),
     [pod(n, n, hash_="old") for n in "abcd"], [], ["a", "b"]),
    # 25% of 4 = 1, but node a has no pod yet (unavailable): nothing more may go.
    ("budget used by a missing pod", rolling(maxUnavailable="25%"),
     [pod(n, n, hash_="old") for n in "bcd"], [], []),
    # An old pod that is not available anyway is replaced regardless of the budget.
    ("unavailable old pods go at once", rolling(maxUnavailable=1),
     [pod("a", "a", hash_="old", ready=False), pod("b", "b", hash_="old", ready=False),
      pod("c", "c", ready=False), pod("d", "d", hash_="old")], [], ["a", "b"]),
    # A new pod not yet available uses the budget: d waits.
    ("new pod not ready yet", rolling(maxUnavailable=1),
     [pod("a", "a", ready=False), pod("b", "b"), pod("c", "c"), pod("d", "d", hash_="old")],
     [], []),
    ("all updated", rolling(maxUnavailable=1), [pod(n, n) for n in "abcd"], [], []),
    # maxSurge 1 (maxUnavailable 0): a new pod next to one old one at a time ...
    ("surge one node", rolling(maxSurge=1, maxUnavailable=0),
     [pod(n, n, hash_="old") for n in "abcd"], ["a"], []),
    # ... an old pod goes once the new one beside it is available ...
    ("surge replaces", rolling(maxSurge=1, maxUnavailable=0),
     [pod("a", "a", hash_="old"), pod("a2", "a", created="2027-01-15T08:00:00Z")]
     + [pod(n, n, hash_="old") for n in "bcd"], ["b"], ["a"]),
    # ... and a new pod still starting holds the surge budget.
    ("surge waits", rolling(maxSurge=1, maxUnavailable=0),
     [pod("a", "a", hash_="old"), pod("a2", "a", ready=False, created="2027-01-15T08:00:00Z")]
     + [pod(n, n, hash_="old") for n in "bcd"], [], []),
    # An unavailable old pod gets its replacement beside it at once, beyond the budget.
    ("surge for unavailable old pods", rolling(maxSurge=1, maxUnavailable=0),
     [pod("a", "a", hash_="old", ready=False)] + [pod(n, n, hash_="old") for n in "bcd"],
     ["a", "b"], []),
    # Both zero would stall: Kubernetes falls back to maxUnavailable 1.
    ("zero and zero", rolling(maxSurge=0, maxUnavailable=0),
     [pod(n, n, hash_="old") for n in "abcd"], [], ["a"]),
])
def test_rolling_update(case: str, daemonset: Obj, pods: list[Obj], create: list[str],
                        delete: list[str]) -> None:
    plan = rolling_update(daemonset, FOUR, pods, HASH, NOW)
    assert (sorted(plan.create), sorted(plan.delete)) == (create, delete), case


def test_status_counts_as_kubectl_reads_them() -> None:
    nodes = [node("a"), node("b"), node("c"), node("d", {"skip": "1"}),
             node("e", taints=[NO_EXECUTE])]
    d = ds(pod_spec={"nodeSelector": {}}, minReadySeconds=0)
    d["spec"]["template"]["spec"]["affinity"] = {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]}]}}}
    pods = [pod("a", "a"),                     # desired, current, ready, available, updated
            pod("b", "b", hash_="old"),        # desired, current, ready, available
            pod("c", "c", ready=False),        # desired, current, updated
            pod("d", "d"),                     # misscheduled (affinity)
            pod("x", "gone")]                  # no such node: not counted
    status, wait = daemonset_status(d, nodes, pods, HASH, NOW)
    # desired: a b c (d fails the affinity, e is tainted) = 3
    assert status == {"currentNumberScheduled": 3, "numberMisscheduled": 1,
                      "desiredNumberScheduled": 3, "numberReady": 2,
                      "observedGeneration": 3, "updatedNumberScheduled": 2,
                      "numberAvailable": 2, "numberUnavailable": 1}
    assert wait is None


def test_status_waits_for_min_ready_seconds() -> None:
    # Ready since T0 = NOW - 100; minReadySeconds 130: available 30 s from now (+0.5 slack).
    status, wait = daemonset_status(ds(minReadySeconds=130), [node("a")], [pod("p", "a")],
                                    HASH, NOW)
    assert status["numberReady"] == 1 and "numberAvailable" not in status
    assert status["numberUnavailable"] == 1
    assert wait == pytest.approx(30.5)
    status, wait = daemonset_status(ds(minReadySeconds=60), [node("a")], [pod("p", "a")],
                                    HASH, NOW)
    assert status["numberAvailable"] == 1 and wait is None
