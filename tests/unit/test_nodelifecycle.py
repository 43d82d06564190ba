"""Node lifecycle decisions: silent nodes' conditions, taints, zone states, eviction times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bramble.master.controllers.nodelifecycle import (
    FULL,
    NEVER_MESSAGE,
    NORMAL,
    PARTIAL,
    TAINT_NOT_READY,
    TAINT_UNREACHABLE,
    UNKNOWN_MESSAGE,
    desired_taints,
    effective_tolerations,
    eviction_delay,
    pod_not_ready,
    tolerates,
    unknown_conditions,
    with_pod_condition,
    zone_key,
    zone_state,
)

NOW = "2024-05-01T12:00:00Z"
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
BEAT = "2024-05-01T11:59:50Z"


def cond(type_: str, status: str, **extra: Any) -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": "KubeletReady", "message": "ok",
            "lastHeartbeatTime": BEAT, "lastTransitionTime": "2024-05-01T10:00:00Z", **extra}


def node(*conditions: dict, taints: list | None = None, unschedulable: bool = False,
         labels: dict | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if taints is not None:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {"metadata": {"name": "pi1", "creationTimestamp": "2024-05-01T09:00:00Z",
                         "labels": labels or {}},
            "spec": spec, "status": {"conditions": list(conditions)}}


# -- conditions of a silent node ----------------------------------------------------------

def test_unknown_conditions_mark_every_kubelet_condition() -> None:
    n = node(cond("Ready", "True"), cond("MemoryPressure", "False"),
             cond("NetworkUnavailable", "False"))
    got = {c["type"]: c for c in unknown_conditions(n, NOW)}
    for type_ in ("Ready", "MemoryPressure"):
        assert got[type_]["status"] == "Unknown"
        assert got[type_]["reason"] == "NodeStatusUnknown"
        assert got[type_]["message"] == UNKNOWN_MESSAGE
        assert got[type_]["lastTransitionTime"] == NOW
        assert got[type_]["lastHeartbeatTime"] == BEAT  # the last one really posted
    # never posted: added, with the node's creation as the heartbeat
    for type_ in ("DiskPressure", "PIDPressure"):
        assert got[type_]["reason"] == "NodeStatusNeverUpdated"
        assert got[type_]["message"] == NEVER_MESSAGE
        assert got[type_]["lastHeartbeatTime"] == "2024-05-01T09:00:00Z"
    # the network plugin's condition is not the kubelet's
    assert got["NetworkUnavailable"]["status"] == "False"
    assert n["status"]["conditions"][0]["status"] == "True"  # the input is not changed


def test_unknown_conditions_keep_an_unknown_transition_time() -> None:
    before = cond("Ready", "Unknown", lastTransitionTime="2024-05-01T11:00:00Z")
    got = unknown_conditions(node(before), NOW)
    assert got[0] == before


# -- taints -------------------------------------------------------------------------------

def taint(key: str, effect: str = "NoSchedule", added: str = "2024-05-01T11:00:00Z",
          **extra: Any) -> dict[str, Any]:
    return {"key": key, "effect": effect, "timeAdded": added, **extra}


def keys(taints: list[dict]) -> list[str]:
    return [f"{t['key']}:{t['effect']}" for t in taints]


UR, NR = TAINT_UNREACHABLE, TAINT_NOT_READY

TAINT_CASES = [
    # (id, node, may add NoExecute, keep NoExecute, taints wanted)
    ("ready", node(cond("Ready", "True")), True, True, []),
    ("unknown", node(cond("Ready", "Unknown")), True, True,
     [f"{UR}:NoSchedule", f"{UR}:NoExecute"]),
    ("not-ready", node(cond("Ready", "False")), True, True,
     [f"{NR}:NoSchedule", f"{NR}:NoExecute"]),
    ("pressure", node(cond("Ready", "True"), cond("MemoryPressure", "True"),
                      cond("DiskPressure", "True"), cond("PIDPressure", "False")), True, True,
     ["node.kubernetes.io/memory-pressure:NoSchedule",
      "node.kubernetes.io/disk-pressure:NoSchedule"]),
    ("cordoned", node(cond("Ready", "True"), unschedulable=True), True, True,
     ["node.kubernetes.io/unschedulable:NoSchedule"]),
    # back to ready: the controller's taints go, a user's stay
    ("recovered", node(cond("Ready", "True"), taints=[
        taint(UR), taint(UR, "NoExecute"), taint("dedicated", "NoSchedule")]), True, True,
     ["dedicated:NoSchedule"]),
    # unknown -> not ready: the NoExecute taint is swapped at once
    ("swap", node(cond("Ready", "False"), taints=[taint(UR), taint(UR, "NoExecute")]),
     False, True, [f"{NR}:NoSchedule", f"{NR}:NoExecute"]),
    # a disrupted zone: no new NoExecute taint, an existing one stays
    ("partial-new", node(cond("Ready", "Unknown")), False, True, [f"{UR}:NoSchedule"]),
    ("partial-kept", node(cond("Ready", "Unknown"), taints=[taint(UR, "NoExecute")]), False,
     True, [f"{UR}:NoExecute", f"{UR}:NoSchedule"]),
    # every zone disrupted (the master is cut off): no NoExecute at all
    ("all-disrupted", node(cond("Ready", "Unknown"), taints=[taint(UR, "NoExecute")]), True,
     False, [f"{UR}:NoSchedule"]),
    ("never-posted", node(), True, True, []),
]


@pytest.mark.parametrize(("n", "may_add", "keep", "expected"), [c[1:] for c in TAINT_CASES],
                         ids=[c[0] for c in TAINT_CASES])
def test_desired_taints(n: dict, may_add: bool, keep: bool, expected: list[str]) -> None:
    got = desired_taints(n, NOW, may_add_noexecute=may_add, keep_noexecute=keep)
    assert keys(got) == expected
    before = {(t["key"], t["effect"]): t for t in n["spec"].get("taints", [])}
    for t in got:
        # taints already there keep their timeAdded; new ones are stamped now
        assert t["timeAdded"] == before.get((t["key"], t["effect"]), {"timeAdded": NOW})[
            "timeAdded"]


def test_desired_taints_unchanged_is_equal() -> None:
    n = node(cond("Ready", "Unknown"), taints=[taint(UR), taint(UR, "NoExecute")])
    assert desired_taints(n, NOW) == n["spec"]["taints"]


# -- zones --------------------------------------------------------------------------------

@pytest.mark.parametrize(("ready", "expected"), [
    (["True", "True", "Unknown"], NORMAL),
    (["Unknown"], FULL),  # a one-node cluster: nowhere to evict to anyway
    (["False", "Unknown"], FULL),
    (["True", "Unknown", "Unknown"], NORMAL),  # 2 not ready: never "partial"
    (["True", "Unknown", "Unknown", "Unknown"], PARTIAL),  # 3 of 4 = 75% >= 55%
    (["True", "True", "Unknown", "Unknown", "Unknown"], PARTIAL),  # 3 of 5 = 60%
    (["True"] * 3 + ["Unknown"] * 3, NORMAL),  # 3 of 6 = 50% < 55%
    ([None, "True"], NORMAL),  # a node that never posted counts as not ready
    ([], NORMAL),
])
def test_zone_state(ready: list, expected: str) -> None:
    assert zone_state(ready) == expected


def test_zone_key() -> None:
    assert zone_key(node()) == ""
    labels = {"topology.kubernetes.io/region": "attic", "topology.kubernetes.io/zone": "shelf"}
    assert zone_key(node(labels=labels)) == "attic:\x00:shelf"


# -- tolerations and eviction times -------------------------------------------------------

@pytest.mark.parametrize(("toleration", "t", "expected"), [
    ({"key": UR, "operator": "Exists", "effect": "NoExecute"}, taint(UR, "NoExecute"), True),
    ({"key": UR, "operator": "Exists"}, taint(UR, "NoExecute"), True),  # any effect
    ({"operator": "Exists"}, taint(UR, "NoExecute"), True),  # any key
    ({"key": UR, "operator": "Exists", "effect": "NoSchedule"}, taint(UR, "NoExecute"), False),
    ({"key": "k", "value": "v"}, taint("k", "NoExecute", value="v"), True),  # Equal default
    ({"key": "k", "operator": "Equal", "value": "v"}, taint("k", "NoExecute", value="w"),
     False),
    ({"key": "other", "operator": "Exists"}, taint(UR, "NoExecute"), False),
])
def test_tolerates(toleration: dict, t: dict, expected: bool) -> None:
    assert tolerates(toleration, t) is expected


def pod(*tolerations: dict) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "spec": {"tolerations": list(tolerations)}}


def test_default_tolerations_only_where_the_pod_has_none() -> None:
    got = effective_tolerations(pod(), 5)
    assert got == [{"key": NR, "operator": "Exists", "effect": "NoExecute",
                    "tolerationSeconds": 5},
                   {"key": UR, "operator": "Exists", "effect": "NoExecute",
                    "tolerationSeconds": 5}]
    own = {"key": UR, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}
    assert effective_tolerations(pod(own), 5) == [own, got[0]]
    everything = {"operator": "Exists"}  # tolerates every taint: nothing is added
    assert effective_tolerations(pod(everything), 5) == [everything]


UNREACHABLE = taint(UR, "NoExecute")

EVICTION_CASES = [
    # (id, pod, [(taint, seconds before now it appeared)], delay)
    ("no-taints", pod(), [], None),
    # default 5 s, taint 2 s old: 5 - 2 = 3 s left
    ("default", pod(), [(UNREACHABLE, 2)], 3.0),
    ("default-passed", pod(), [(UNREACHABLE, 9)], 0.0),
    # its own toleration: 60 - 2 = 58 s
    ("own-seconds", pod({"key": UR, "operator": "Exists", "effect": "NoExecute",
                         "tolerationSeconds": 60}), [(UNREACHABLE, 2)], 58.0),
    ("own-forever", pod({"key": UR, "operator": "Exists", "effect": "NoExecute"}),
     [(UNREACHABLE, 2)], None),
    ("own-zero", pod({"key": UR, "operator": "Exists", "effect": "NoExecute",
                      "tolerationSeconds": 0}), [(UNREACHABLE, 0)], 0.0),
    # a NoExecute taint no toleration matches: at once
    ("untolerated", pod(), [(taint("maintenance", "NoExecute"), 0)], 0.0),
    ("tolerated-user-taint", pod({"key": "maintenance", "operator": "Exists"}),
     [(taint("maintenance", "NoExecute"), 0)], None),
    # a taint tolerated forever for an hour does not shorten the unreachable one:
    # min(forever, 5 - 1) = 4 s
    ("forever-and-new", pod({"key": "maintenance", "operator": "Exists"}),
     [(taint("maintenance", "NoExecute"), 3600), (UNREACHABLE, 1)], 4.0),
    # the shortest of two: not-ready 5 - 1 = 4, own unreachable 30 - 1 = 29 -> 4 s
    ("shortest", pod({"key": UR, "operator": "Exists", "effect": "NoExecute",
                      "tolerationSeconds": 30}),
     [(UNREACHABLE, 1), (taint(NR, "NoExecute"), 1)], 4.0),
    ("noschedule-ignored", pod(), [(taint(UR), 100)], None),
]


@pytest.mark.parametrize(("p", "taints", "expected"), [c[1:] for c in EVICTION_CASES],
                         ids=[c[0] for c in EVICTION_CASES])
def test_eviction_delay(p: dict, taints: list, expected: float | None) -> None:
    timed = [(t, T0 - timedelta(seconds=age)) for t, age in taints]
    got = eviction_delay(p, timed, default_seconds=5, now=T0)
    assert got == (None if expected is None else pytest.approx(expected))


# -- pod conditions -----------------------------------------------------------------------

def test_with_pod_condition() -> None:
    status = {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": "t0"}]}
    added = with_pod_condition(status, {"type": "DisruptionTarget", "status": "True",
                                        "reason": "R"}, NOW)
    assert added is not None
    assert added["conditions"][1] == {"type": "DisruptionTarget", "status": "True",
                                      "reason": "R", "lastTransitionTime": NOW}
    assert with_pod_condition(added, {"type": "DisruptionTarget", "status": "True",
                                      "reason": "R"}, "later") is None  # nothing changes
    flipped = with_pod_condition(status, {"type": "Ready", "status": "False"}, NOW)
    assert flipped is not None and flipped["conditions"] == [
        {"type": "Ready", "status": "False", "lastTransitionTime": NOW}]
    assert status["conditions"][0]["status"] == "True"  # the input is not changed


def test_pod_not_ready() -> None:
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True",
                                        "reason": "", "lastTransitionTime": "t0"}]}}
    got = pod_not_ready(ready, NOW)
    assert got is not None and got["conditions"][0]["status"] == "False"
    assert pod_not_ready({"status": got}, NOW) is None  # already not ready
    assert pod_not_ready({"status": {"phase": "Pending"}}, NOW) is None  # no Ready condition
