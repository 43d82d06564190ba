"""Every scheduler score, table-driven, with kube-scheduler's integer arithmetic shown."""

from __future__ import annotations

import pytest

from bramble.master.scheduler.scores import (
    balanced_allocation,
    default_normalize,
    least_allocated,
    preferred_affinity,
    resource_scores,
    same_owner,
    spread_normalize,
    total_scores,
    untolerated_prefer_no_schedule,
)
from tests.unit.scheduler_objects import affinity, expr, info, node, node_info, pod, taint


@pytest.mark.parametrize(("alloc", "bound", "wanted", "score"), [
    # Empty 4 cpu / 8Gi node, pod 1 cpu / 2Gi:
    # cpu (4000-1000)*100//4000 = 75; memory (8-2)*100//8 = 75; (75+75)//2 = 75.
    (("4", "8Gi"), [], ("1", "2Gi"), 75),
    # 2 cpu and 4Gi already requested, pod 1 cpu / 2Gi:
    # cpu (4000-3000)*100//4000 = 25; memory (8-6)*100//8 = 25 -> 25.
    (("4", "8Gi"), [("2", "4Gi")], ("1", "2Gi"), 25),
    # cpu (4000-500)*100//4000 = 87 (87.5 truncated); memory (8192-1024)*100//8192 = 87.
    (("4", "8Gi"), [], ("500m", "1Gi"), 87),
    # A pod without requests counts 100m / 200Mi:
    # cpu (1000-100)*100//1000 = 90; memory (1024-200)*100//1024 = 80 -> (90+80)//2 = 85.
    (("1", "1Gi"), [], (None, None), 85),
    # Over capacity scores 0 for that resource: cpu 1000+1000 > 1000 -> 0;
    # memory (8-1)*100//8 = 87 -> (0+87)//2 = 43.
    (("1", "8Gi"), [("1", "0")], ("1", "1Gi"), 43),
    # The same bound pod without a memory request counts 200Mi:
    # memory (8192-200-1024)*100//8192 = 85 -> (0+85)//2 = 42.
    (("1", "8Gi"), [("1", None)], ("1", "1Gi"), 42),
])
def test_least_allocated(alloc: tuple, bound: list, wanted: tuple, score: int) -> None:
    n = node_info(node("n", *alloc), *[pod(f"b{i}", c, m) for i, (c, m) in enumerate(bound)])
    assert least_allocated(info(cpu=wanted[0], memory=wanted[1]), n) == score


@pytest.mark.parametrize(("alloc", "bound", "wanted", "score"), [
    # cpu 1000/4000 = 0.25, memory 2Gi/8Gi = 0.25: std 0 -> 100.
    (("4", "8Gi"), [], ("1", "2Gi"), 100),
    # cpu 3000/4000 = 0.75, memory 2/8 = 0.25: std |0.75-0.25|/2 = 0.25 -> 75.
    (("4", "8Gi"), [("2", None)], ("1", "2Gi"), 75),
    # cpu 0.5, memory 0: std 0.25 -> 75 (real requests, not the scoring defaults).
    (("4", "8Gi"), [], ("2", None), 75),
    # Shares are capped at 1: cpu min(6/4, 1) = 1, memory 0.5 -> std 0.25 -> 75.
    (("4", "8Gi"), [("5", None)], ("1", "4Gi"), 75),
    # A best-effort pod is not scored.
    (("4", "8Gi"), [("3", None)], (None, None), 0),
])
def test_balanced_allocation(alloc: tuple, bound: list, wanted: tuple, score: int) -> None:
    n = node_info(node("n", *alloc), *[pod(f"b{i}", c, m) for i, (c, m) in enumerate(bound)])
    assert balanced_allocation(info(cpu=wanted[0], memory=wanted[1]), n) == score


def test_preferred_affinity_adds_the_weights_of_matching_terms() -> None:
    p = info(affinity=affinity(preferred=[
        (10, {"matchExpressions": [expr("disk", "In", "ssd")]}),
        (5, {"matchExpressions": [expr("kubernetes.io/arch", "In", "arm64")]}),
        (80, {"matchExpressions": [expr("gpu", "Exists")]})]))
    n = node_info(node("n", labels={"disk": "ssd", "kubernetes.io/arch": "arm64"}))
    assert preferred_affinity(p, n) == 15  # 10 + 5; the gpu term does not match


@pytest.mark.parametrize(("taints", "tolerations", "count"), [
    ([taint("a", "PreferNoSchedule"), taint("b", "PreferNoSchedule")], [], 2),
    # NoSchedule taints are for the filter, not counted here.
    ([taint("a", "PreferNoSchedule"), taint("b", "NoSchedule")], [], 1),
    ([taint("a", "PreferNoSchedule")], [{"key": "a", "operator": "Exists",
                                         "effect": "PreferNoSchedule"}], 0),
    # A toleration without an effect tolerates PreferNoSchedule too.
    ([taint("a", "PreferNoSchedule")], [{"key": "a", "operator": "Exists"}], 0),
    # One for NoSchedule only does not.
    ([taint("a", "PreferNoSchedule")], [{"key": "a", "operator": "Exists",
                                         "effect": "NoSchedule"}], 1),
])
def test_untolerated_prefer_no_schedule(taints: list, tolerations: list, count: int) -> None:
    n = node_info(node(taints=taints))
    assert untolerated_prefer_no_schedule(info(tolerations=tolerations), n) == count


def test_same_owner_counts_the_controllers_pods_on_the_node() -> None:
    n = node_info(node(), pod("a", owner="rs1"), pod("b", owner="rs1"), pod("c", owner="rs2"),
                  pod("d"))
    assert same_owner(info(owner="rs1"), n) == 2
    assert same_owner(info(owner="rs3"), n) == 0
    assert same_owner(info(), n) == 0


@pytest.mark.parametrize(("raw", "reverse", "normalized"), [
    # 100 * s // max: 100*5//20 = 25, 100*20//20 = 100.
    ([0, 5, 20], False, [0, 25, 100]),
    # Reversed: 100 - that.
    ([0, 5, 20], True, [100, 75, 0]),
    ([1, 2], True, [50, 0]),  # 100 - 100*1//2 = 50
    ([0, 0], False, [0, 0]),
    ([0, 0], True, [100, 100]),
])
def test_default_normalize(raw: list, reverse: bool, normalized: list) -> None:
    assert default_normalize(raw, reverse) == normalized


@pytest.mark.parametrize(("counts", "normalized"), [
    # 100 * (max - count) / max, truncated: max 3 -> (3-0)/3 = 100, (3-1)/3 = 66, 0.
    ([0, 1, 3], [100, 66, 0]),
    ([2, 2], [0, 0]),
    ([0, 0, 0], [100, 100, 100]),
])
def test_spread_normalize(counts: list, normalized: list) -> None:
    assert spread_normalize(counts) == normalized


def test_total_is_the_weighted_sum() -> None:
    # Two empty 4 cpu / 8Gi nodes; "busy" already holds one pod of the same owner and a
    # PreferNoSchedule taint; the pod (1 cpu, 2Gi) prefers disk=ssd (weight 10) - "busy".
    busy = node_info(node("busy", labels={"disk": "ssd"},
                          taints=[taint("soft", "PreferNoSchedule")]),
                     pod("old", "1", "2Gi", owner="rs"))
    idle = node_info(node("idle"))
    p = info(cpu="1", memory="2Gi", owner="rs", affinity=affinity(
        preferred=[(10, {"matchExpressions": [expr("disk", "In", "ssd")]})]))
    # busy: least allocated (4000-2000)*100//4000 = 50, (8-4)*100//8 = 50 -> 50;
    #       balanced 0.5 vs 0.5 -> 100; spread counts [1, 0] -> 0; affinity [10, 0] -> 100;
    #       taints [1, 0] reversed -> 0.
    #       50 + 100 + 2*0 + 2*100 + 3*0 = 350
    # idle: least allocated 75; balanced 100; spread 100; affinity 0; taints 100.
    #       75 + 100 + 2*100 + 2*0 + 3*100 = 675
    assert total_scores(p, [busy, idle]) == [350, 675]


def test_the_inlined_resource_scores_equal_the_plugins() -> None:
    # resource_scores is least_allocated + balanced_allocation written out for speed.
    bound = [pod(f"b{i}", f"{150 * i}m", f"{97 * i}Mi", node_name="x") for i in range(12)]
    nodes = [node_info(node(f"n{i}", str(1 + i % 4), f"{1 + i % 5}Gi"), *bound[:i])
             for i in range(12)]
    nodes.append(node_info({**node("no-memory"), "status": {"allocatable": {"cpu": "2"},
                                                           "conditions": []}}))
    for wanted in (info(cpu="300m", memory="200Mi"), info(), info(cpu="5"),
                   info(memory="3Gi")):
        assert resource_scores(wanted, nodes) == [
            least_allocated(wanted, n) + balanced_allocation(wanted, n) for n in nodes]
