"""Every scheduler filter, table-driven: which nodes a pod may go to, and every reason not."""

from __future__ import annotations

import pytest

from bramble.kube.taints import Taint
from bramble.master.scheduler.filters import (
    FILTERS,
    AffinityMismatch,
    Cordoned,
    Insufficient,
    NotPreselected,
    NotReady,
    PortInUse,
    UntoleratedTaint,
    filters_for,
    first_failure,
    node_affinity,
    node_name_preselection,
    node_ports,
    node_ready,
    node_unschedulable,
    resources_fit,
    taint_toleration,
)
from bramble.master.scheduler.snapshot import HostPort, pod_info
from tests.unit.scheduler_objects import (
    affinity,
    container,
    expr,
    info,
    node,
    node_info,
    pod,
    taint,
)

Mi, Gi = 1024**2, 1024**3
EXISTS_ALL = {"operator": "Exists"}  # tolerates every taint


# --- node_unschedulable ------------------------------------------------------------------

@pytest.mark.parametrize(("cordoned", "tolerations", "reasons"), [
    (False, [], ()),
    (True, [], (Cordoned(),)),
    # DaemonSet pods tolerate the unschedulable taint, and so the cordon.
    (True, [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
             "effect": "NoSchedule"}], ()),
    (True, [EXISTS_ALL], ()),
    # A toleration for another effect does not count.
    (True, [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
             "effect": "NoExecute"}], (Cordoned(),)),
])
def test_node_unschedulable(cordoned: bool, tolerations: list, reasons: tuple) -> None:
    n = node_info(node(unschedulable=cordoned))
    assert node_unschedulable(info(tolerations=tolerations), n) == reasons


# --- taint_toleration --------------------------------------------------------------------

GPU = taint("gpu", "NoSchedule", "yes")
GONE = taint("node.kubernetes.io/unreachable", "NoExecute")
SOFT = taint("soft", "PreferNoSchedule")


@pytest.mark.parametrize(("taints", "tolerations", "untolerated"), [
    ([], [], []),
    ([GPU], [], [Taint("gpu", "yes", "NoSchedule")]),
    # Equal needs key, value and effect to match.
    ([GPU], [{"key": "gpu", "operator": "Equal", "value": "yes", "effect": "NoSchedule"}], []),
    ([GPU], [{"key": "gpu", "value": "no", "effect": "NoSchedule"}],
     [Taint("gpu", "yes", "NoSchedule")]),
    # Exists ignores the value; an empty effect matches every effect.
    ([GPU], [{"key": "gpu", "operator": "Exists"}], []),
    ([GPU, GONE], [EXISTS_ALL], []),
    # Every untolerated taint is reported, PreferNoSchedule never filters.
    ([GPU, GONE, SOFT], [], [Taint("gpu", "yes", "NoSchedule"),
                             Taint("node.kubernetes.io/unreachable", "", "NoExecute")]),
    ([GPU, GONE], [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
     [Taint("node.kubernetes.io/unreachable", "", "NoExecute")]),
])
def test_taint_toleration(taints: list, tolerations: list, untolerated: list) -> None:
    n = node_info(node(taints=taints))
    reasons = taint_toleration(info(tolerations=tolerations), n)
    assert reasons == tuple(UntoleratedTaint(t) for t in untolerated)


def test_untolerated_taint_message_is_kube_schedulers() -> None:
    assert UntoleratedTaint(Taint("node.kubernetes.io/unreachable", "", "NoExecute")).message \
        == "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"
    assert UntoleratedTaint(Taint("gpu", "yes", "NoSchedule")).message \
        == "node(s) had untolerated taint {gpu: yes}"


# --- node_ready --------------------------------------------------------------------------

@pytest.mark.parametrize(("ready", "tolerations", "reasons"), [
    ("True", [], ()),
    ("False", [], (NotReady("False"),)),
    ("Unknown", [], (NotReady("Unknown"),)),
    (None, [], (NotReady("Unknown"),)),  # never reported: as unreachable
    # Tolerating the taint the node is about to get is tolerating the state.
    ("False", [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                "effect": "NoSchedule"}], ()),
    ("False", [{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}],
     (NotReady("False"),)),
    ("Unknown", [{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}], ()),
    # The default NoExecute tolerations (300 s) of every pod do not tolerate NoSchedule.
    ("Unknown", [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                  "effect": "NoExecute", "tolerationSeconds": 300}], (NotReady("Unknown"),)),
])
def test_node_ready(ready: str | None, tolerations: list, reasons: tuple) -> None:
    assert node_ready(info(tolerations=tolerations), node_info(node(ready=ready))) == reasons


# --- node_affinity and the node-name preselection ------------------------------------------

ARM = {"kubernetes.io/arch": "arm64", "kubernetes.io/hostname": "pi1", "cores": "4"}
MISMATCH = (AffinityMismatch(),)


@pytest.mark.parametrize(("spec", "reasons"), [
    ({}, ()),
    # nodeSelector: every label equal. Architecture is just a label.
    ({"nodeSelector": {"kubernetes.io/arch": "arm64"}}, ()),
    ({"nodeSelector": {"kubernetes.io/arch": "amd64"}}, MISMATCH),
    ({"nodeSelector": {"kubernetes.io/arch": "arm64", "disk": "ssd"}}, MISMATCH),
    # Each operator, matching and not.
    ({"affinity": affinity({"matchExpressions": [
        expr("kubernetes.io/arch", "In", "arm64", "arm")]})}, ()),
    ({"affinity": affinity({"matchExpressions": [
        expr("kubernetes.io/arch", "In", "amd64")]})}, MISMATCH),
    ({"affinity": affinity({"matchExpressions": [
        expr("kubernetes.io/arch", "NotIn", "amd64")]})}, ()),
    ({"affinity": affinity({"matchExpressions": [
        expr("kubernetes.io/arch", "NotIn", "arm64")]})}, MISMATCH),
    ({"affinity": affinity({"matchExpressions": [expr("disk", "NotIn", "hdd")]})}, ()),
    ({"affinity": affinity({"matchExpressions": [expr("cores", "Exists")]})}, ()),
    ({"affinity": affinity({"matchExpressions": [expr("gpu", "Exists")]})}, MISMATCH),
    ({"affinity": affinity({"matchExpressions": [expr("gpu", "DoesNotExist")]})}, ()),
    ({"affinity": affinity({"matchExpressions": [expr("cores", "DoesNotExist")]})}, MISMATCH),
    ({"affinity": affinity({"matchExpressions": [expr("cores", "Gt", "2")]})}, ()),  # 4 > 2
    ({"affinity": affinity({"matchExpressions": [expr("cores", "Gt", "4")]})}, MISMATCH),
    ({"affinity": affinity({"matchExpressions": [expr("cores", "Lt", "8")]})}, ()),  # 4 < 8
    ({"affinity": affinity({"matchExpressions": [expr("cores", "Lt", "4")]})}, MISMATCH),
    # Gt on a missing or non-numeric label does not match.
    ({"affinity": affinity({"matchExpressions": [expr("gpu", "Gt", "0")]})}, MISMATCH),
    ({"affinity": affinity({"matchExpressions": [
        expr("kubernetes.io/arch", "Gt", "0")]})}, MISMATCH),
    # Expressions in a term are ANDed; terms are ORed.
    ({"affinity": affinity({"matchExpressions": [expr("cores", "Exists"),
                                                 expr("gpu", "Exists")]})}, MISMATCH),
    ({"affinity": affinity({"matchExpressions": [expr("gpu", "Exists")]},
                           {"matchExpressions": [expr("cores", "Exists")]})}, ()),
    # matchFields on the node's name (DaemonSet pods).
    ({"affinity": affinity({"matchFields": [expr("metadata.name", "In", "pi1")]})}, ()),
    ({"affinity": affinity({"matchFields": [expr("metadata.name", "In", "pi2")]})},
     MISMATCH),
    ({"affinity": affinity({"matchFields": [expr("metadata.name", "NotIn", "pi2")]})}, ()),
    # An empty term matches nothing; an unknown operator makes a term match nothing.
    ({"affinity": affinity({})}, MISMATCH),
    ({"affinity": affinity({"matchExpressions": [expr("cores", "Near", "4")]})}, MISMATCH),
    # nodeSelector and affinity must both hold.
    ({"nodeSelector": {"kubernetes.io/arch": "amd64"},
      "affinity": affinity({"matchExpressions": [expr("cores", "Exists")]})}, MISMATCH),
    # Only preferred terms: they score, they do not filter.
    ({"affinity": affinity(preferred=[(10, {"matchExpressions": [
        expr("gpu", "Exists")]})])}, ()),
])
def test_node_affinity(spec: dict, reasons: tuple) -> None:
    assert node_affinity(info(**spec), node_info(node("pi1", labels=ARM))) == reasons


@pytest.mark.parametrize(("names", "node_name", "reasons"), [
    (["pi1"], "pi1", ()),
    (["pi1"], "pi2", (NotPreselected(),)),
    (["pi1", "pi2"], "pi2", ()),
])
def test_node_name_preselection(names: list, node_name: str, reasons: tuple) -> None:
    p = info(affinity=affinity({"matchFields": [expr("metadata.name", "In", *names)]}))
    assert node_name_preselection(p, node_info(node(node_name))) == reasons


def test_without_pinned_names_every_node_is_preselected() -> None:
    p = info(affinity=affinity({"matchExpressions": [expr("cores", "Exists")]}))
    assert node_name_preselection(p, node_info(node("any"))) == ()


# --- node_ports --------------------------------------------------------------------------

def ports(*specs: tuple[int, str, str]) -> dict:
    return {"containers": [container(ports=[
        {"containerPort": p, "hostPort": p, "protocol": proto, **({"hostIP": ip} if ip else {})}
        for p, proto, ip in specs])]}


@pytest.mark.parametrize(("used", "wanted", "conflicts"), [
    ([], [(80, "TCP", "")], []),
    ([(80, "TCP", "")], [(80, "TCP", "")], [HostPort("0.0.0.0", "TCP", 80)]),
    ([(80, "TCP", "")], [(80, "UDP", "")], []),  # another protocol
    ([(80, "TCP", "")], [(8080, "TCP", "")], []),
    # 0.0.0.0 conflicts with a specific address, and the other way round.
    ([(80, "TCP", "10.0.0.1")], [(80, "TCP", "")], [HostPort("0.0.0.0", "TCP", 80)]),
    ([(80, "TCP", "")], [(80, "TCP", "10.0.0.1")], [HostPort("10.0.0.1", "TCP", 80)]),
    # Two specific addresses do not conflict.
    ([(80, "TCP", "10.0.0.1")], [(80, "TCP", "10.0.0.2")], []),
    # Every conflicting port is reported.
    ([(80, "TCP", ""), (443, "TCP", "")], [(80, "TCP", ""), (443, "TCP", ""),
                                           (8443, "TCP", "")],
     [HostPort("0.0.0.0", "TCP", 80), HostPort("0.0.0.0", "TCP", 443)]),
])
def test_node_ports(used: list, wanted: list, conflicts: list) -> None:
    n = node_info(node(), pod("holder", **ports(*used)))
    assert node_ports(info(**ports(*wanted)), n) == tuple(PortInUse(p) for p in conflicts)


def test_a_deleted_pod_frees_its_host_ports() -> None:
    holder = pod("holder", **ports((80, "TCP", "")))
    n = node_info(node(), holder)
    assert node_ports(info(**ports((80, "TCP", ""))), n)
    n.remove(pod_info(holder))
    assert node_ports(info(**ports((80, "TCP", ""))), n) == ()


# --- resources_fit -----------------------------------------------------------------------

@pytest.mark.parametrize(("alloc", "bound", "wanted", "reasons"), [
    # 4 cpu, 8Gi free; 1 cpu 1Gi wanted: fits.
    (("4", "8Gi", "110"), [], ("1", "1Gi"), ()),
    # Bound 3500m; 4000 - 3500 = 500m free < 1000m wanted.
    (("4", "8Gi", "110"), [("3500m", "1Gi")], ("1", "1Gi"),
     (Insufficient("cpu", 1000, 3500, 4000),)),
    # Exactly full is fine: 8Gi - 7Gi = 1Gi free, 1Gi wanted.
    (("4", "8Gi", "110"), [("1", "7Gi")], ("1", "1Gi"), ()),
    # Both short: both reported (cpu 4000-3000 < 2000; memory 8Gi-7.5Gi < 1Gi).
    (("4", "8Gi", "110"), [("3", "7680Mi")], ("2", "1Gi"),
     (Insufficient("cpu", 2000, 3000, 4000), Insufficient("memory", Gi, 7680 * Mi, 8 * Gi))),
    # Pod count: 2 bound + 1 > 2 allowed, even for a pod requesting nothing.
    (("4", "8Gi", "2"), [(None, None), (None, None)], (None, None),
     (Insufficient("pods", 1, 2, 2),)),
    # A pod requesting nothing fits a full node (only the pod count is checked).
    (("1", "1Gi", "110"), [("1", "1Gi")], (None, None), ()),
    # Bigger than the whole node.
    (("1", "1Gi", "110"), [], ("2", None), (Insufficient("cpu", 2000, 0, 1000),)),
])
def test_resources_fit(alloc: tuple, bound: list, wanted: tuple, reasons: tuple) -> None:
    pods = [pod(f"b{i}", cpu, mem) for i, (cpu, mem) in enumerate(bound)]
    n = node_info(node("n", *alloc), *pods)
    assert resources_fit(info(cpu=wanted[0], memory=wanted[1]), n) == reasons


def test_init_containers_count_as_kubernetes_counts_them() -> None:
    # Containers 500m, an init container 3: the pod needs max(500m, 3000m) = 3 cpu,
    # more than the 2 cpu node has.
    p = info(containers=[container("500m")], init=[container("3", name="init")])
    assert resources_fit(p, node_info(node("n", "2"))) == (Insufficient("cpu", 3000, 0, 2000),)


@pytest.mark.parametrize(("reason", "message", "unresolvable"), [
    (Insufficient("cpu", 500, 3600, 4000), "Insufficient cpu", False),
    (Insufficient("memory", 16 * Gi, 0, 8 * Gi), "Insufficient memory", True),
    (Insufficient("pods", 1, 110, 110), "Too many pods", False),
    (Cordoned(), "node(s) were unschedulable", True),
    (NotReady("False"), "node(s) were not ready", True),
    (AffinityMismatch(), "node(s) didn't match Pod's node affinity/selector", True),
    (NotPreselected(), "node(s) didn't satisfy plugin(s) [NodeAffinity]", True),
    (PortInUse(HostPort("0.0.0.0", "TCP", 80)),
     "node(s) didn't have free ports for the requested pod ports", False),
])
def test_reason_wording(reason: object, message: str, unresolvable: bool) -> None:
    assert reason.message == message  # type: ignore[attr-defined]
    assert reason.unresolvable is unresolvable  # type: ignore[attr-defined]


# --- order ---------------------------------------------------------------------------------

def test_a_node_reports_the_first_filter_it_fails() -> None:
    # Cordoned, tainted and too small: kube-scheduler stops at NodeUnschedulable.
    n = node_info(node("n", "1", unschedulable=True, taints=[GPU]))
    assert first_failure(info(cpu="2"), n) == (Cordoned(),)
    n = node_info(node("n", "1", taints=[GPU]))
    assert first_failure(info(cpu="2"), n) == (UntoleratedTaint(Taint("gpu", "yes",
                                                                      "NoSchedule")),)
    assert first_failure(info(cpu="2", tolerations=[EXISTS_ALL]), n) == (
        Insufficient("cpu", 2000, 0, 1000),)


def test_filters_a_pod_cannot_fail_are_skipped() -> None:
    assert filters_for(info()) == (node_unschedulable, taint_toleration, node_ready,
                                   resources_fit)
    everything = info(nodeSelector={"a": "b"}, **ports((80, "TCP", "")),
                      affinity=affinity({"matchFields": [expr("metadata.name", "In", "x")]}))
    assert filters_for(everything) == FILTERS


def test_a_clean_node_passes_every_node_state_filter() -> None:
    # Ready, not cordoned, untainted: what `filters_for(pod, clean_node=True)` skips
    # can refuse no pod there.
    clean = node_info(node())
    assert clean.clean
    for p in (info(), info(tolerations=[EXISTS_ALL]), info(nodeSelector={"a": "b"})):
        assert [f(p, clean) for f in (node_unschedulable, taint_toleration, node_ready)] \
            == [(), (), ()]
    assert filters_for(info(), clean_node=True) == (resources_fit,)
    for dirty in (node(ready="False"), node(unschedulable=True), node(taints=[SOFT])):
        assert not node_info(dirty).clean
