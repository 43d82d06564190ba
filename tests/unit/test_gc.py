"""The garbage collector's decisions, and the finalizers a DELETE leaves for it."""

from __future__ import annotations

from typing import Any

import pytest

from bramble.master.api import strategy
from bramble.master.api.resources import Registry
from bramble.master.controllers.gc import (
    DANGLING,
    DELETE,
    DROP_REFS,
    KEEP,
    SOLID,
    UNRESOLVABLE,
    WAITING,
    OwnerPlan,
    classify,
    deleting_dependents,
    invalid_reference,
    plan_dependent,
    plan_owner,
    without_references,
)

REG = Registry()
JOB = REG.by_path("batch", "v1", "jobs")
RS = REG.by_path("apps", "v1", "replicasets")
CM = REG.by_path("", "v1", "configmaps")
NS = REG.by_path("", "v1", "namespaces")
NOW = "2024-05-01T12:00:00Z"


def ref(uid: str, kind: str = "ReplicaSet", name: str = "rs", block: bool | None = None
        ) -> dict[str, Any]:
    r: dict[str, Any] = {"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid}
    if block is not None:
        r["blockOwnerDeletion"] = block
    return r


def obj(uid: str = "u-obj", refs: list | None = None, **meta: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"name": "x", "namespace": "default", "uid": uid, **meta}
    if refs is not None:
        m["ownerReferences"] = refs
    return {"metadata": m}


MARKED = {"deletionTimestamp": NOW}

# -- classify -----------------------------------------------------------------------------


@pytest.mark.parametrize(("owner", "resolvable", "expected"), [
    (obj("u1"), True, SOLID),  # found, same uid
    (None, True, DANGLING),  # no object of that kind and name
    (obj("u-other"), True, DANGLING),  # the name was re-used: another uid is not the owner
    (obj("u1", finalizers=["foregroundDeletion"], **MARKED), True, WAITING),
    (obj("u1", finalizers=["orphan"], **MARKED), True, SOLID),  # orphaning keeps dependents
    (obj("u1", **MARKED), True, SOLID),  # being deleted, not waiting for anyone
    (obj("u1"), False, UNRESOLVABLE),  # unknown kind
], ids=["solid", "absent", "uid-mismatch", "foreground", "orphaning", "terminating",
        "unresolvable"])
def test_classify(owner: dict | None, resolvable: bool, expected: str) -> None:
    assert classify(ref("u1"), owner, resolvable=resolvable) == expected


# -- plan_dependent -----------------------------------------------------------------------

A, B = ref("uA", name="a"), ref("uB", name="b")

DEPENDENT_CASES = [
    # (id, object, [(ref, state)], has dependents, a dependent waits, expected plan)
    ("no-owners", obj(), [], False, False, (KEEP, (), "")),
    ("owner-exists", obj(refs=[A]), [(A, SOLID)], False, False, (KEEP, (), "")),
    ("owner-gone", obj(refs=[A]), [(A, DANGLING)], False, False, (DELETE, (), "Background")),
    # one of two owners gone: the object stays, the dangling reference goes
    ("one-of-two-gone", obj(refs=[A, B]), [(A, SOLID), (B, DANGLING)], False, False,
     (DROP_REFS, ("uB",), "")),
    # a solid owner and one deleting in foreground: stop blocking that one
    ("solid-and-waiting", obj(refs=[A, B]), [(A, SOLID), (B, WAITING)], False, False,
     (DROP_REFS, ("uB",), "")),
    ("all-gone", obj(refs=[A, B]), [(A, DANGLING), (B, DANGLING)], False, False,
     (DELETE, (), "Background")),
    # the owner waits in foreground and this has dependents: the whole subtree first
    ("waiting-with-dependents", obj(refs=[A]), [(A, WAITING)], True, False,
     (DELETE, (), "Foreground")),
    ("waiting-leaf", obj(refs=[A]), [(A, WAITING)], False, False,
     (DELETE, (), "Background")),
    ("unresolvable-keeps", obj(refs=[A, B]), [(A, DANGLING), (B, UNRESOLVABLE)], False,
     False, (KEEP, (), "")),
    ("already-deleting", obj(refs=[A], **MARKED), [(A, DANGLING)], False, False,
     (KEEP, (), "")),
    # its own GC finalizer is honoured
    ("own-orphan-finalizer", obj(refs=[A], finalizers=["orphan"]), [(A, DANGLING)], False,
     False, (DELETE, (), "Orphan")),
    ("own-foreground-finalizer", obj(refs=[A], finalizers=["foregroundDeletion"]),
     [(A, DANGLING)], False, False, (DELETE, (), "Foreground")),
]


@pytest.mark.parametrize(("o", "states", "has_deps", "dep_waits", "expected"),
                         [c[1:] for c in DEPENDENT_CASES], ids=[c[0] for c in DEPENDENT_CASES])
def test_plan_dependent(o: dict, states: list, has_deps: bool, dep_waits: bool,
                        expected: tuple) -> None:
    plan = plan_dependent(o, states, has_dependents=has_deps, dependent_waits=dep_waits)
    assert (plan.action, plan.drop, plan.propagation) == expected
    assert plan.unblock is False


def test_a_waiting_dependent_unblocks_before_foreground() -> None:
    plan = plan_dependent(obj(refs=[A]), [(A, WAITING)], has_dependents=True,
                          dependent_waits=True)
    assert (plan.action, plan.propagation, plan.unblock) == (DELETE, "Foreground", True)


# -- plan_owner ---------------------------------------------------------------------------

def owner(*finalizers: str, marked: bool = True) -> dict:
    return obj("u-owner", finalizers=list(finalizers), **(MARKED if marked else {}))


def dep(name: str, block: bool | None = None, uid: str = "u-owner", **meta: Any) -> tuple:
    return (name, obj(f"u-{name}", refs=[ref(uid, block=block)], **meta))


OWNER_CASES = [
    ("not-marked", owner("foregroundDeletion", marked=False), [dep("d", True)], OwnerPlan()),
    ("orphan", owner("orphan"), [dep("d1", True), dep("d2")],
     OwnerPlan(orphan=("d1", "d2"), remove_finalizer="orphan")),
    ("orphan-nothing-to-do", owner("orphan"), [], OwnerPlan(remove_finalizer="orphan")),
    # nothing blocks: the finalizer goes at once (non-blocking dependents go afterwards)
    ("foreground-no-blockers", owner("foregroundDeletion"), [dep("d1"), dep("d2", False)],
     OwnerPlan(remove_finalizer="foregroundDeletion")),
    # a blocking dependent: look at every dependent not yet being deleted, keep waiting
    ("foreground-blocked", owner("foregroundDeletion"),
     [dep("d1", True), dep("d2"), dep("d3", True, **MARKED)],
     OwnerPlan(look_at=("d1", "d2"))),
    # a dependent of someone else does not count
    ("foreground-other-owner", owner("foregroundDeletion"), [dep("d1", True, uid="u-x")],
     OwnerPlan(remove_finalizer="foregroundDeletion")),
    ("custom-finalizer-only", owner("example.com/x"), [dep("d1", True)], OwnerPlan()),
]


@pytest.mark.parametrize(("o", "deps", "expected"), [c[1:] for c in OWNER_CASES],
                         ids=[c[0] for c in OWNER_CASES])
def test_plan_owner(o: dict, deps: list, expected: OwnerPlan) -> None:
    assert plan_owner(o, deps) == expected


def test_deleting_dependents() -> None:
    assert deleting_dependents(owner("foregroundDeletion"))
    assert not deleting_dependents(owner("foregroundDeletion", marked=False))
    assert not deleting_dependents(owner("orphan"))


def test_without_references() -> None:
    o = obj(refs=[A, B])
    assert without_references(o, ["uA"])["metadata"]["ownerReferences"] == [B]
    assert "ownerReferences" not in without_references(o, ["uB"])["metadata"]


def test_invalid_reference_message() -> None:
    assert invalid_reference(ref("u1", name="web"), "team-b") == (
        'ownerRef [apps/v1/ReplicaSet, namespace: team-b, name: web, uid: u1] does not '
        'exist in namespace "team-b"')


# -- the finalizers a DELETE leaves (strategy.gc_finalizers / plan_delete) ----------------

FINALIZER_CASES = [
    # (id, type, finalizers before, propagation requested, finalizers after)
    ("background-default", RS, [], None, []),
    ("job-orphans-by-default", JOB, [], None, ["orphan"]),
    ("job-background", JOB, [], "Background", []),
    ("job-foreground", JOB, [], "Foreground", ["foregroundDeletion"]),
    ("orphan", RS, ["a"], "Orphan", ["a", "orphan"]),
    ("foreground", RS, ["a"], "Foreground", ["a", "foregroundDeletion"]),
    # an explicit policy replaces the other GC finalizer
    ("orphan-to-foreground", RS, ["orphan", "a"], "Foreground", ["a", "foregroundDeletion"]),
    ("foreground-to-background", RS, ["foregroundDeletion"], "Background", []),
    # without a policy, a GC finalizer already there wins over the type's default
    ("kept-without-policy", JOB, ["foregroundDeletion"], None, ["foregroundDeletion"]),
    ("order-kept-when-same", RS, ["orphan", "a"], None, ["orphan", "a"]),
    ("namespace-default", NS, [], None, []),
]


@pytest.mark.parametrize(("rt", "before", "propagation", "after"),
                         [c[1:] for c in FINALIZER_CASES], ids=[c[0] for c in FINALIZER_CASES])
def test_gc_finalizers(rt: Any, before: list, propagation: str | None, after: list) -> None:
    assert strategy.gc_finalizers(rt, before, propagation) == after


def test_job_delete_without_policy_orphans_and_warns() -> None:
    plan = strategy.plan_delete(JOB, obj(), now=NOW, propagation=None, grace_seconds=None)
    assert not plan.remove and plan.obj["metadata"]["finalizers"] == ["orphan"]
    assert strategy.delete_warnings(JOB, None) == [strategy.JOB_ORPHAN_WARNING]
    assert strategy.delete_warnings(JOB, "Background") == []
    assert strategy.delete_warnings(RS, None) == []


def test_background_delete_of_an_orphaning_object_removes_it() -> None:
    # Marked with "orphan" earlier; a Background delete takes the finalizer back: gone now.
    marked = obj(finalizers=["orphan"], deletionGracePeriodSeconds=0, **MARKED)
    assert strategy.plan_delete(CM, marked, now=NOW, propagation="Background",
                                grace_seconds=None).remove


def test_foreground_delete_of_a_pod_keeps_its_grace() -> None:
    pod = {"metadata": {"name": "p", "namespace": "default"},
           "spec": {"nodeName": "pi1", "containers": []}, "status": {"phase": "Running"}}
    pod_rt = REG.by_path("", "v1", "pods")
    plan = strategy.plan_delete(pod_rt, pod, now=NOW, propagation="Foreground",
                                grace_seconds=None)
    m = plan.obj["metadata"]
    assert (m["finalizers"], m["deletionGracePeriodSeconds"]) == (["foregroundDeletion"], 30)
