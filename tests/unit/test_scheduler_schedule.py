"""One scheduling decision and the words it is reported in."""

from __future__ import annotations

import zlib

import pytest

from bramble.kube.taints import Taint
from bramble.master.scheduler.filters import (
    AffinityMismatch,
    Cordoned,
    Insufficient,
    PortInUse,
    UntoleratedTaint,
)
from bramble.master.scheduler.schedule import (
    NO_NODES_MESSAGE,
    Placement,
    Unschedulable,
    fit_error,
    gated,
    histogram,
    responsible,
    schedule,
    scheduled_message,
    tie_break,
    unscheduled_conditions,
)
from bramble.master.scheduler.snapshot import HostPort, Snapshot
from tests.unit.scheduler_objects import affinity, expr, info, node, pod, taint

Gi = 1024**3
UNREACHABLE = Taint("node.kubernetes.io/unreachable", "", "NoSchedule")


@pytest.mark.parametrize(("failed", "lines"), [
    ({"a": (Insufficient("memory", 3 * Gi, 0, Gi),), "b": (Insufficient("memory", 1, 1, 1),)},
     ["2 Insufficient memory"]),
    # A node short of cpu and memory counts in both.
    ({"a": (Insufficient("cpu", 1, 1, 1), Insufficient("memory", 1, 1, 1))},
     ["1 Insufficient cpu", "1 Insufficient memory"]),
    # Sorted as strings, as Go's sort.Strings: "10 ..." sorts before "2 ...".
    ({**{f"n{i}": (Cordoned(),) for i in range(10)},
      "x": (AffinityMismatch(),), "y": (AffinityMismatch(),)},
     ["10 node(s) were unschedulable",
      "2 node(s) didn't match Pod's node affinity/selector"]),
    # Two conflicting ports on one node: one node, counted once.
    ({"a": (PortInUse(HostPort("0.0.0.0", "TCP", 80)), PortInUse(HostPort("0.0.0.0", "TCP",
                                                                         443)))},
     ["1 node(s) didn't have free ports for the requested pod ports"]),
])
def test_histogram(failed: dict, lines: list) -> None:
    assert histogram(failed) == lines


def test_the_message_of_the_issue() -> None:
    # Two nodes short of memory (one of them smaller than the pod), one unreachable.
    failed = {"a": (Insufficient("memory", 3 * Gi, 2 * Gi, 4 * Gi),),
              "b": (Insufficient("memory", 3 * Gi, 0, 2 * Gi),),
              "c": (UntoleratedTaint(UNREACHABLE),)}
    assert fit_error(info(), 3, failed) == (
        "0/3 nodes are available: 1 node(s) had untolerated taint "
        "{node.kubernetes.io/unreachable: }, 2 Insufficient memory. preemption: 0/3 nodes "
        "are available: 1 No preemption victims found for incoming pod, 2 Preemption is not "
        "helpful for scheduling.")


def test_preemption_policy_never() -> None:
    failed = {"a": (Insufficient("cpu", 1, 1, 1),)}
    assert fit_error(info(preemptionPolicy="Never"), 1, failed) == (
        "0/1 nodes are available: 1 Insufficient cpu. "
        "preemption: not eligible due to preemptionPolicy=Never.")


def nodes(*objs: dict, pods: tuple = ()) -> list:
    return Snapshot.of(objs, pods).schedulable()


def test_no_nodes() -> None:
    assert schedule(info(), []) == Unschedulable(NO_NODES_MESSAGE)


def test_the_only_fitting_node_is_chosen() -> None:
    decision = schedule(info(memory="3Gi"), nodes(node("small", memory="2Gi"),
                                                 node("big", memory="8Gi")))
    assert decision == Placement("big")


def test_the_best_scored_node_is_chosen() -> None:
    # "half" already has 2 of its 4 cpu requested: least-allocated prefers "empty".
    decision = schedule(info(cpu="500m"), nodes(
        node("empty"), node("half"), pods=(pod("b", "2", node_name="half"),)))
    assert decision == Placement("empty", feasible=2)


def test_preferred_affinity_and_prefer_no_schedule_steer() -> None:
    objs = (node("plain"), node("ssd", labels={"disk": "ssd"}))
    p = info(affinity=affinity(preferred=[(50, {"matchExpressions": [expr("disk", "In",
                                                                          "ssd")]})]))
    assert schedule(p, nodes(*objs)).node == "ssd"  # type: ignore[union-attr]
    objs = (node("plain"), node("soft", taints=[taint("x", "PreferNoSchedule")]))
    for i in range(10):
        assert schedule(info(name=f"p{i}"), nodes(*objs)).node == "plain"  # type: ignore


def test_unschedulable_lists_every_node() -> None:
    decision = schedule(info(memory="16Gi"), nodes(
        node("a", memory="8Gi"), node("b", memory="8Gi"),
        node("c", taints=[taint("node.kubernetes.io/unreachable")])))
    assert isinstance(decision, Unschedulable)
    assert decision.message == (
        "0/3 nodes are available: 1 node(s) had untolerated taint "
        "{node.kubernetes.io/unreachable: }, 2 Insufficient memory. preemption: 0/3 nodes "
        "are available: 3 Preemption is not helpful for scheduling.")
    assert decision.reasons["a"] == (Insufficient("memory", 16 * Gi, 0, 8 * Gi),)


def test_daemonset_pods_try_only_their_node() -> None:
    p = info(affinity=affinity({"matchFields": [expr("metadata.name", "In", "b")]}))
    assert schedule(p, nodes(node("a"), node("b"), node("c"))) == Placement("b")
    decision = schedule(p, nodes(node("a"), node("b", unschedulable=True), node("c")))
    assert decision.message.startswith(  # type: ignore[union-attr]
        "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't satisfy "
        "plugin(s) [NodeAffinity].")


def test_ties_are_broken_by_the_pod_uid() -> None:
    tied = nodes(node("a"), node("b"), node("c"))
    # crc32 over the uid picks the index among the tied nodes, in name order.
    for uid in ("u1", "u2", "u3", "u4"):
        assert tie_break(tied, uid).name == "abc"[zlib.crc32(uid.encode()) % 3]
    # Deterministic for one pod, spread over many.
    picks = {schedule(info(name=f"p{i}", uid=f"uid-{i}"), tied).node  # type: ignore
             for i in range(30)}
    assert picks == {"a", "b", "c"}


def test_scheduled_message() -> None:
    assert scheduled_message("default", "web-1", "pi2") == \
        "Successfully assigned default/web-1 to pi2"


NOW, EARLIER = "2026-05-01T12:00:00Z", "2026-05-01T11:00:00Z"


@pytest.mark.parametrize(("conditions", "expected"), [
    # New: appended with the transition now.
    ([], [{"type": "PodScheduled", "status": "False", "lastProbeTime": None,
           "lastTransitionTime": NOW, "reason": "Unschedulable", "message": "m"}]),
    # Already saying exactly this: nothing to write.
    ([{"type": "PodScheduled", "status": "False", "lastProbeTime": None,
       "lastTransitionTime": EARLIER, "reason": "Unschedulable", "message": "m"}], None),
    # Another message, still False: the transition time stays.
    ([{"type": "Ready", "status": "False"},
      {"type": "PodScheduled", "status": "False", "lastProbeTime": None,
       "lastTransitionTime": EARLIER, "reason": "Unschedulable", "message": "old"}],
     [{"type": "Ready", "status": "False"},
      {"type": "PodScheduled", "status": "False", "lastProbeTime": None,
       "lastTransitionTime": EARLIER, "reason": "Unschedulable", "message": "m"}]),
    # From another status: a new transition.
    ([{"type": "PodScheduled", "status": "True", "lastTransitionTime": EARLIER}],
     [{"type": "PodScheduled", "status": "False", "lastProbeTime": None,
       "lastTransitionTime": NOW, "reason": "Unschedulable", "message": "m"}]),
])
def test_unscheduled_conditions(conditions: list, expected: list | None) -> None:
    assert unscheduled_conditions(conditions, "Unschedulable", "m", NOW) == expected


@pytest.mark.parametrize(("obj", "expected"), [
    (pod(), True),
    (pod(schedulerName="default-scheduler"), True),
    (pod(schedulerName="my-scheduler"), False),
    (pod(node_name="pi1"), False),
    (pod(phase="Failed"), False),
    ({**pod(), "metadata": {"name": "p", "deletionTimestamp": NOW}}, False),
])
def test_responsible(obj: dict, expected: bool) -> None:
    assert responsible(obj) is expected


def test_gated() -> None:
    assert gated(pod(schedulingGates=[{"name": "example.com/wait"}]))
    assert not gated(pod(schedulingGates=[]))
