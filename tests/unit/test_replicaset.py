"""The ReplicaSet controller's pure pieces: pod states, claiming, which pods go first, the
replica plan, slow start, the pod from the template and the status."""

from __future__ import annotations

from typing import Any

import pytest

from bramble.kube.selectors import label_selector_from_struct
from bramble.master.controllers.replicaset import (
    REPLICA_FAILURE,
    available_in,
    calculate_status,
    claim,
    compare_for_deletion,
    deletion_order,
    is_active,
    new_pod,
    plan_replicas,
    pod_prefix,
    rfc3339,
    slow_start_batches,
)

Obj = dict[str, Any]
NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def ts(offset: float) -> str:
    """A timestamp `offset` seconds after NOW (negative: before)."""
    return rfc3339(NOW + offset)


def pod(name: str = "p", *, node: str | None = "n1", phase: str = "Running",
        ready_at: float | None = -100.0, ready: bool = True, created: float = -200.0,
        restarts: int = 0, labels: dict | None = None, owner: str | None = None,
        deleting: bool = False, cost: int | None = None, uid: str | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": "default", "uid": uid or f"uid-{name}",
                 "creationTimestamp": ts(created), "labels": labels or {"app": "web"}}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                    "name": owner, "uid": f"uid-{owner}", "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = ts(0)
    if cost is not None:
        meta["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": str(cost)}
    conditions = []
    if ready_at is not None:
        conditions.append({"type": "Ready", "status": "True" if ready else "False",
                           "lastTransitionTime": ts(ready_at)})
    return {"metadata": meta, "spec": {"nodeName": node} if node else {},
            "status": {"phase": phase, "conditions": conditions,
                       "containerStatuses": [{"name": "c", "restartCount": restarts}]}}


def rs(name: str = "web", replicas: int = 3, **spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}",
                         "generation": 2},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web", "tier": "fe"},
                                               "annotations": {"a": "1"}},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}},
                     **spec}}


# --- pod states ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("p", "expected"), [
    (pod(), True),
    (pod(phase="Pending", ready_at=None), True),
    (pod(phase="Succeeded"), False),
    (pod(phase="Failed"), False),
    (pod(deleting=True), False),  # being deleted: its replacement starts now
])
def test_is_active(p: Obj, expected: bool) -> None:
    assert is_active(p) is expected


@pytest.mark.parametrize(("p", "min_ready", "expected"), [
    (pod(ready_at=-100), 0, 0.0),        # ready, no minReadySeconds: available
    (pod(ready_at=-100), 30, 0.0),       # ready 100 s > 30 s
    (pod(ready_at=-10), 30, 20.0),       # ready 10 s of 30: available in 20 s
    (pod(ready_at=-30), 30, 0.0),        # -30 + 30 = 0, not < 0: the edge counts as reached
    (pod(ready=False), 0, None),         # not ready: unknown when
    (pod(ready_at=None), 0, None),       # no Ready condition at all
])
def test_available_in(p: Obj, min_ready: int, expected: float | None) -> None:
    assert available_in(p, min_ready, NOW) == expected


# --- claiming -----------------------------------------------------------------------------------

def test_claim_adopts_orphans_releases_strays_and_ignores_others() -> None:
    owner = rs()
    selector = label_selector_from_struct(owner["spec"]["selector"])
    mine = pod("mine", owner="web")
    stray = pod("stray", owner="web", labels={"app": "db"})     # ours, labels changed
    orphan = pod("orphan")
    orphan_other = pod("orphan-db", labels={"app": "db"})       # does not match
    orphan_going = pod("going", deleting=True)                  # never adopt the dying
    theirs = pod("theirs", owner="other")                       # someone else's
    result = claim(owner, selector, [mine, stray, orphan, orphan_other, orphan_going, theirs])
    assert [p["metadata"]["name"] for p in result.owned] == ["mine", "orphan"]
    assert [p["metadata"]["name"] for p in result.adopt] == ["orphan"]
    assert [p["metadata"]["name"] for p in result.release] == ["stray"]
    [ref] = result.adopt[0]["metadata"]["ownerReferences"]
    assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                   "uid": "uid-web", "controller": True, "blockOwnerDeletion": True}
    assert "ownerReferences" not in orphan["metadata"]  # the input is not modified


def test_claim_while_being_deleted_neither_adopts_nor_releases() -> None:
    owner = rs()
    owner["metadata"]["deletionTimestamp"] = ts(0)
    selector = label_selector_from_struct(owner["spec"]["selector"])
    stray = pod("stray", owner="web", labels={"app": "db"})
    result = claim(owner, selector, [pod("mine", owner="web"), stray, pod("orphan")])
    assert [p["metadata"]["name"] for p in result.owned] == ["mine"]
    assert result.adopt == [] and result.release == []


# --- which pods go first ------------------------------------------------------------------------

@pytest.mark.parametrize(("first", "second", "why"), [
    (pod(node=None, phase="Pending", ready_at=None), pod(), "unscheduled before scheduled"),
    (pod(phase="Pending"), pod(phase="Unknown"), "Pending before Unknown"),
    (pod(phase="Unknown"), pod(phase="Running"), "Unknown before Running"),
    (pod(ready=False), pod(), "not ready before ready"),
    (pod(cost=-5), pod(cost=10), "lower pod-deletion-cost first"),
    # Ready 10 s ago: log2(10e9 ns) = 33.2 -> 33; 1000 s ago: log2(1e12) = 39.9 -> 39.
    (pod(ready_at=-10), pod(ready_at=-1000), "ready for less time first"),
    (pod(restarts=3), pod(restarts=1), "more restarts first"),
    # Created 10 s ago (bucket 33) against 1000 s ago (bucket 39).
    (pod(created=-10, ready_at=None), pod(created=-1000, ready_at=None), "newer first"),
])
def test_deletion_rules(first: Obj, second: Obj, why: str) -> None:
    first["metadata"]["uid"], second["metadata"]["uid"] = "b", "a"  # uid never decides here
    assert compare_for_deletion(first, second, 0, 0, NOW) < 0, why
    assert compare_for_deletion(second, first, 0, 0, NOW) > 0, why


def test_deletion_rules_apply_in_order() -> None:
    # Rule 2 (phase) beats rule 3 (readiness): a ready Pending pod still goes first.
    assert compare_for_deletion(pod(phase="Pending"), pod(ready=False), 0, 0, NOW) < 0
    # Rule 3 beats rule 7: a ready pod with many restarts stays over a not-ready one.
    assert compare_for_deletion(pod(ready=False), pod(restarts=9), 0, 0, NOW) < 0


def test_same_log_bucket_falls_back_to_uid() -> None:
    # Ready 100 s and 120 s ago: log2(1e11) = 36.5 and log2(1.2e11) = 36.8, both bucket 36:
    # equally old, so the uid decides (a pseudo-random but stable order).
    a, b = pod(ready_at=-100, uid="a"), pod(ready_at=-120, uid="b")
    assert compare_for_deletion(a, b, 0, 0, NOW) < 0
    assert compare_for_deletion(b, a, 0, 0, NOW) > 0
    # Without `now` the exact times decide: the later-ready goes first.
    assert compare_for_deletion(b, a, 0, 0, None) > 0


def test_doubled_up_pods_go_first() -> None:
    # n1 runs three pods of the owner, n2 one: the pod on n1 ranks 3 and goes first.
    on_n1, on_n2 = pod("a", node="n1"), pod("b", node="n2")
    related = [on_n1, on_n2, pod("x", node="n1"), pod("y", node="n1"),
               pod("gone", node="n2", deleting=True)]  # inactive: not counted
    assert [p["metadata"]["name"] for p in deletion_order([on_n2, on_n1], related, NOW)] == \
        ["a", "b"]


def test_deletion_order_sorts_the_least_valuable_first() -> None:
    pods = [pod("old-ready", ready_at=-5000), pod("pending", phase="Pending", ready_at=None),
            pod("unscheduled", node=None, phase="Pending", ready_at=None),
            pod("not-ready", ready=False), pod("new-ready", ready_at=-5)]
    assert [p["metadata"]["name"] for p in deletion_order(pods, [], NOW)] == \
        ["unscheduled", "pending", "not-ready", "new-ready", "old-ready"]


# --- plan ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("replicas", "have", "burst", "create", "delete"), [
    (3, 0, 500, 3, 0),     # 0 of 3: create 3
    (3, 3, 500, 0, 0),     # settled
    (1, 3, 500, 0, 2),     # 3 - 1 = 2 surplus
    (0, 3, 500, 0, 3),     # all go
    (800, 0, 500, 500, 0),  # capped by burst; the rest next time
])
def test_plan_replicas(replicas: int, have: int, burst: int, create: int, delete: int) -> None:
    pods = [pod(f"p{i}") for i in range(have)]
    plan = plan_replicas(rs(replicas=replicas), pods, [], NOW, burst)
    assert (plan.create, len(plan.delete)) == (create, delete)


def test_plan_deletes_the_least_valuable() -> None:
    pods = [pod("good"), pod("bad", ready=False), pod("worse", node=None, phase="Pending")]
    plan = plan_replicas(rs(replicas=1), pods, [], NOW)
    assert [p["metadata"]["name"] for p in plan.delete] == ["worse", "bad"]


@pytest.mark.parametrize(("count", "batches"), [
    (0, []), (1, [1]), (3, [1, 2]), (7, [1, 2, 4]), (9, [1, 2, 4, 2]),
    (20, [1, 2, 4, 8, 5]),  # 1 + 2 + 4 + 8 = 15, 5 left
])
def test_slow_start_batches(count: int, batches: list[int]) -> None:
    assert slow_start_batches(count) == batches
    assert sum(batches) == count


# --- the pod ------------------------------------------------------------------------------------

def test_new_pod_from_template() -> None:
    p = new_pod(rs())
    assert p["metadata"] == {
        "generateName": "web-", "namespace": "default",
        "labels": {"app": "web", "tier": "fe"}, "annotations": {"a": "1"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                             "uid": "uid-web", "controller": True,
                             "blockOwnerDeletion": True}]}
    assert p["spec"] == {"containers": [{"name": "c", "image": "i"}]}


@pytest.mark.parametrize(("name", "prefix"), [
    ("web", "web-"),
    ("web.v1", "web.v1-"),
    ("a" * 253, "a" * 253 + "-"),  # a generateName is cut to fit when the name is made
])
def test_pod_prefix(name: str, prefix: str) -> None:
    assert pod_prefix(name) == prefix


# --- status -------------------------------------------------------------------------------------

def test_status_counts() -> None:
    pods = [pod("a", ready_at=-100), pod("b", ready_at=-5), pod("c", ready=False),
            pod("d", labels={"app": "web", "tier": "fe"}, ready_at=-100)]
    status, after = calculate_status(rs(minReadySeconds=10), pods, None, NOW)
    # Fully labeled: only d has the template's labels (app and tier).
    # Ready: a, b, d. Available (ready > 10 s): a and d; b in 10 - 5 = 5 s.
    assert status == {"replicas": 4, "fullyLabeledReplicas": 1, "readyReplicas": 3,
                      "availableReplicas": 2, "observedGeneration": 2}
    assert after == pytest.approx(5.05)


def test_status_omits_zero_counters() -> None:
    status, after = calculate_status(rs(), [], None, NOW)
    assert status == {"replicas": 0, "observedGeneration": 2} and after is None


def test_failure_condition_comes_and_goes() -> None:
    failing = rs()
    status, _ = calculate_status(failing, [], ("FailedCreate", "pods is forbidden"), NOW)
    assert status["conditions"] == [{"type": REPLICA_FAILURE, "status": "True",
                                     "lastTransitionTime": ts(0), "reason": "FailedCreate",
                                     "message": "pods is forbidden"}]
    failing["status"] = status
    # Still failing later: the condition (and its time) stays as it was.
    again, _ = calculate_status(failing, [], ("FailedCreate", "other"), NOW + 60)
    assert again["conditions"] == status["conditions"]
    healed, _ = calculate_status(failing, [], None, NOW + 120)
    assert "conditions" not in healed
