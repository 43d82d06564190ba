"""The scheduler's snapshot: requests as Kubernetes counts them, node facts, per-node sums."""

from __future__ import annotations

import pytest

from bramble.kube.taints import Taint, Toleration
from bramble.master.scheduler.snapshot import (
    DEFAULT_MEMORY_REQUEST,
    HostPort,
    Snapshot,
    node_facts,
    pinned_node_names,
    pod_info,
    pod_requests,
)
from tests.unit.scheduler_objects import container, node, pod

Mi, Gi = 1024**2, 1024**3


@pytest.mark.parametrize(("spec", "expected"), [
    # Containers run together: 100m + 200m = 300m, 64Mi + 128Mi = 192Mi.
    ({"containers": [container("100m", "64Mi"), container("200m", "128Mi")]},
     (300, 192 * Mi)),
    # Init containers run one at a time: max(300m, 500m) = 500m, max(192Mi, 1Gi) = 1Gi.
    ({"containers": [container("100m", "64Mi"), container("200m", "128Mi")],
      "initContainers": [container("500m", "1Gi"), container("50m", "10Mi")]},
     (500, Gi)),
    # kube-scheduler's own example: IC1 2/1G, IC2 2/3G; C1 2/1G, C2 1/1G
    # cpu max(2+1, 2, 2) = 3; memory max(1G+1G, 1G, 3G) = 3G.
    ({"containers": [container("2", "1G"), container("1", "1G")],
      "initContainers": [container("2", "1G"), container("2", "3G")]},
     (3000, 3 * 10**9)),
    # A sidecar (restartPolicy Always) keeps running: it adds to the containers
    # (200m + 100m = 300m) and to every later init step (500m + 100m = 600m) -> 600m.
    ({"containers": [container("200m")],
      "initContainers": [container("100m", name="sidecar", restartPolicy="Always"),
                         container("500m", name="migrate")]},
     (600, 0)),
    # Overhead comes on top: 250m + 100m, 64Mi + 120Mi.
    ({"containers": [container("250m", "64Mi")], "overhead": {"cpu": "100m",
                                                               "memory": "120Mi"}},
     (350, 184 * Mi)),
    # Nothing requested: nothing counted by the filters.
    ({"containers": [container()]}, (0, 0)),
])
def test_pod_requests(spec: dict, expected: tuple[int, int]) -> None:
    assert pod_requests(spec) == expected


def test_scoring_counts_missing_requests_at_the_defaults() -> None:
    # Two containers without requests: 2 * 100m and 2 * 200Mi for scoring; an explicit
    # zero stays zero (only *missing* requests get the default).
    spec = {"containers": [container(), container(cpu="0", name="d")]}
    assert pod_requests(spec, with_defaults=True) == (100, 2 * DEFAULT_MEMORY_REQUEST)
    assert pod_requests(spec) == (0, 0)


def test_pod_info_reads_what_filters_need() -> None:
    p = pod(cpu="250m", memory="64Mi", owner="rs1", nodeSelector={"disk": "ssd"},
            tolerations=[{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
            preemptionPolicy="Never",
            containers=[container("250m", "64Mi", ports=[
                {"containerPort": 80, "hostPort": 8080},
                {"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "10.0.0.1"},
                {"containerPort": 9000}])])
    i = pod_info(p)
    assert (i.cpu, i.memory, i.nonzero_cpu, i.nonzero_memory) == (250, 64 * Mi, 250, 64 * Mi)
    assert i.node_selector == (("disk", "ssd"),)
    assert i.tolerations == (Toleration("k", "Exists", "", "NoSchedule"),)
    assert i.host_ports == (HostPort("0.0.0.0", "TCP", 8080), HostPort("10.0.0.1", "UDP", 53))
    assert i.owner == "uid-rs1" and i.preemption_never and i.required_terms is None


@pytest.mark.parametrize(("terms", "pinned"), [
    # A DaemonSet pod: one term naming its node.
    ([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}],
     frozenset({"a"})),
    # Terms are ORed: the union of what each names.
    ([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]},
      {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]}],
     frozenset({"a", "b"})),
    # Within a term, requirements are ANDed: the intersection.
    ([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a", "b"]},
                       {"key": "metadata.name", "operator": "In", "values": ["b", "c"]}]}],
     frozenset({"b"})),
    # One term that does not name nodes: every node may do.
    ([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]},
      {"matchExpressions": [{"key": "x", "operator": "Exists"}]}], None),
    ([{"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["a"]}]}],
     None),
])
def test_pinned_node_names(terms: list, pinned: frozenset | None) -> None:
    assert pinned_node_names(terms) == pinned


def test_node_facts() -> None:
    n = node("pi1", "4", "7812Mi", "110", labels={"kubernetes.io/arch": "arm64"},
             taints=[{"key": "gpu", "value": "yes", "effect": "NoSchedule"}],
             unschedulable=True)
    facts = node_facts(n)
    assert (facts.cpu, facts.memory, facts.pods) == (4000, 7812 * Mi, 110)
    assert facts.labels == (("kubernetes.io/arch", "arm64"),)
    assert facts.taints == (Taint("gpu", "yes", "NoSchedule"),)
    assert facts.unschedulable and facts.ready == "True"
    assert node_facts(node(ready=None)).ready == "Unknown"  # no Ready condition yet


def test_sums_follow_pods_on_and_off_nodes() -> None:
    snap = Snapshot.of([node("a"), node("b")])
    snap.observe(pod("p1", "100m", "64Mi", node_name="a", owner="rs"))
    snap.observe(pod("p2", "200m", "64Mi", node_name="a", owner="rs"))
    a = snap.nodes["a"]
    # 100m + 200m, 64Mi + 64Mi, two pods, both of rs.
    assert (a.requested_cpu, a.requested_memory, a.pod_count) == (300, 128 * Mi, 2)
    assert a.owners == {"uid-rs": 2}
    # A bound pod seen again (a status update) is not counted twice.
    snap.observe(pod("p1", "100m", "64Mi", node_name="a", owner="rs", phase="Running"))
    assert a.pod_count == 2
    # Finished pods free their requests: 300m - 100m.
    assert snap.observe(pod("p1", "100m", "64Mi", node_name="a", phase="Succeeded")) is True
    assert (a.requested_cpu, a.pod_count, a.owners) == (200, 1, {"uid-rs": 1})
    assert snap.remove(("default", "p2")) is True
    assert (a.requested_cpu, a.requested_memory, a.pod_count, a.owners) == (0, 0, 0, {})
    assert snap.remove(("default", "p2")) is False


def test_assumed_pods_count_until_confirmed_or_forgotten() -> None:
    snap = Snapshot.of([node("a")])
    key = ("default", "p")
    snap.place(key, pod_info(pod("p", "1", "1Gi")), "a", assumed=True)
    assert snap.nodes["a"].requested_cpu == 1000 and snap.is_assumed(key)
    # A watch change from before the binding (the pod still unbound) keeps the assumption.
    snap.observe(pod("p", "1", "1Gi"))
    assert snap.nodes["a"].requested_cpu == 1000
    # The binding arrives through the watch: confirmed, still counted once.
    snap.observe(pod("p", "1", "1Gi", node_name="a"))
    assert not snap.is_assumed(key) and snap.nodes["a"].pod_count == 1
    # A confirmed pod is not dropped by a late "binding failed".
    snap.forget_assumed(key, "a")
    assert snap.nodes["a"].pod_count == 1
    other = ("default", "q")
    snap.place(other, pod_info(pod("q", "1")), "a", assumed=True)
    snap.forget_assumed(other, "a")
    assert snap.nodes["a"].pod_count == 1 and snap.placed_on(other) is None


def test_pods_count_on_a_node_before_it_registers() -> None:
    snap = Snapshot()
    snap.observe(pod("p", "500m", node_name="late"))
    assert snap.schedulable() == []  # no Node object yet
    assert snap.set_node("late", node_facts(node("late"))) is True
    [late] = snap.schedulable()
    assert late.requested_cpu == 500
    # Same facts again (a heartbeat): nothing changed for scheduling.
    assert snap.set_node("late", node_facts(node("late"))) is False
    assert snap.set_node("late", node_facts(node("late", unschedulable=True))) is True
    snap.remove_node("late")
    assert snap.schedulable() == [] and snap.nodes["late"].requested_cpu == 500
