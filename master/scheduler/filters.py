"""Filters: can this pod run on this node? Pure functions returning every reason it cannot.

Each filter is `(PodInfo, NodeInfo) -> tuple[Reason, ...]`; an empty tuple means the node
passes. A reason is a typed record (what was requested, used, available; which taint;
which port) whose `message` is kube-scheduler's own wording and whose `unresolvable` says
whether evicting pods could ever help (what the "preemption: ..." part of the message
reports).

`FILTERS` runs in kube-scheduler's default order (NodeAffinity's PreFilter narrowing,
NodeUnschedulable, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit), with a
readiness check after the taints; like kube-scheduler, a node reports the reasons of the
first filter it fails.

Differences from kube-scheduler, on purpose:
- Readiness. Kubernetes leaves it to the taints the node lifecycle controller sets
  (node.kubernetes.io/not-ready, unreachable). A node that is not Ready before it is
  tainted is refused here too - unless the pod tolerates the taint it is about to get.
- Taints and host ports report every offender, not only the first one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bramble.kube.taints import Taint, tolerated

from .snapshot import NO_EXECUTE, NO_SCHEDULE, HostPort, NodeInfo, PodInfo

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"


# --- reasons ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class NotPreselected:
    """The pod pins nodes by name (matchFields metadata.name) and this is not one."""

    @property
    def message(self) -> str:
        return "node(s) didn't satisfy plugin(s) [NodeAffinity]"

    unresolvable = True


@dataclass(frozen=True, slots=True)
class Cordoned:
    @property
    def message(self) -> str:
        return "node(s) were unschedulable"

    unresolvable = True


@dataclass(frozen=True, slots=True)
class UntoleratedTaint:
    taint: Taint

    @property
    def message(self) -> str:
        return f"node(s) had untolerated taint {{{self.taint.key}: {self.taint.value}}}"

    unresolvable = True


@dataclass(frozen=True, slots=True)
class NotReady:
    status: str  # the Ready condition's status

    @property
    def message(self) -> str:
        return "node(s) were not ready"

    unresolvable = True


@dataclass(frozen=True, slots=True)
class AffinityMismatch:
    @property
    def message(self) -> str:
        return "node(s) didn't match Pod's node affinity/selector"

    unresolvable = True


@dataclass(frozen=True, slots=True)
class PortInUse:
    port: HostPort

    @property
    def message(self) -> str:
        return "node(s) didn't have free ports for the requested pod ports"

    unresolvable = False  # the pod holding it could go


@dataclass(frozen=True, slots=True)
class Insufficient:
    """noderesources.InsufficientResource: cpu in millicores, memory in bytes, pods."""

    resource: str
    requested: int
    used: int
    capacity: int

    @property
    def message(self) -> str:
        return "Too many pods" if self.resource == "pods" else f"Insufficient {self.resource}"

    @property
    def unresolvable(self) -> bool:
        # Bigger than the whole node: no eviction could make room.
        return self.resource != "pods" and self.requested > self.capacity


Reason = (NotPreselected | Cordoned | UntoleratedTaint | NotReady | AffinityMismatch
          | PortInUse | Insufficient)
Filter = Callable[[PodInfo, NodeInfo], tuple[Reason, ...]]
FITS: tuple[Reason, ...] = ()


# --- filters ---------------------------------------------------------------------------

def node_name_preselection(pod: PodInfo, node: NodeInfo) -> tuple[Reason, ...]:
    """NodeAffinity's PreFilter: a pod whose every required term names nodes
    (matchFields metadata.name In) is only ever tried on those."""
    if pod.pinned_nodes is not None and node.name not in pod.pinned_nodes:
        return (NotPreselected(),)
    return FITS


_UNSCHEDULABLE = Taint(UNSCHEDULABLE_TAINT, "", NO_SCHEDULE)


def node_unschedulable(pod: PodInfo, node: NodeInfo) -> tuple[Reason, ...]:
    """A cordoned node (spec.unschedulable) takes only pods tolerating the
    node.kubernetes.io/unschedulable:NoSchedule taint (DaemonSet pods do)."""
    if node.unschedulable and not tolerated(pod.tolerations, _UNSCHEDULABLE):
        return (Cordoned(),)
    return FITS


def taint_toleration(pod: PodInfo, node: NodeInfo) -> tuple[Reason, ...]:
    """Every NoSchedule and NoExecute taint must be tolerated (PreferNoSchedule only
    lowers the score)."""
    if not node.taints:
        return FITS
    return tuple(UntoleratedTaint(t) for t in node.taints
                 if t.effect in (NO_SCHEDULE, NO_EXECUTE) and not tolerated(pod.tolerations, t))


def node_ready(pod: PodInfo, node: NodeInfo) -> tuple[Reason, ...]:
    """Ready=True, or the pod tolerates the NoSchedule taint a node in this state gets
    (not-ready for Ready=False, unreachable for Unknown)."""
    status = node.ready
    if status == "True":
        return FITS
    key = NOT_READY_TAINT if status == "False" else UNREACHABLE_TAINT
    if tolerated(pod.tolerations, Taint(key, "", NO_SCHEDULE)):
        return FITS
    return (NotReady(status),)


def node_affinity(pod: PodInfo, node: NodeInfo) -> tuple[Reason, ...]:
    """spec.nodeSelector (every label equal) and required node affinity (any term
    matching). The kubernetes.io/arch label makes architecture just another label."""
    labels = node.labels
    for key, value in pod.node_selector:
        if labels.get(key) != value:
            return (AffinityMismatch(),)
    terms = pod.required_terms
    if terms is not None and not any(t.matches(node.name, labels) for t in terms):
        return (AffinityMismatch(),)
    return FITS


def _conflicts(node: NodeInfo, port: HostPort) -> bool:
    """HostPortInfo.CheckConflict: 0.0.0.0 conflicts with the port on any address; a
    specific address with itself and with 0.0.0.0."""
    if port.ip == "0.0.0.0":
        return (port.protocol, port.port) in node.ports_any_ip
    return (HostPort(port.ip, port.protocol, port.port) in node.ports
            or HostPort("0.0.0.0", port.protocol, port.port) in node.ports)


def node_ports(pod: PodInfo, node: NodeInfo) -> tuple[Reason, ...]:
    if not pod.host_ports or not node.ports:
        return FITS
    return tuple(PortInUse(p) for p in pod.host_ports if _conflicts(node, p))


def resources_fit(pod: PodInfo, node: NodeInfo) -> tuple[Reason, ...]:
    """NodeResourcesFit: one more pod within allocatable pods; the pod's cpu and memory
    requests within allocatable minus what the pods counted on the node request."""
    found: list[Reason] = []
    if node.pod_count + 1 > node.allocatable_pods:
        found.append(Insufficient("pods", 1, node.pod_count, node.allocatable_pods))
    if pod.cpu and pod.cpu > node.allocatable_cpu - node.requested_cpu:
        found.append(Insufficient("cpu", pod.cpu, node.requested_cpu, node.allocatable_cpu))
    if pod.memory and pod.memory > node.allocatable_memory - node.requested_memory:
        found.append(Insufficient("memory", pod.memory, node.requested_memory,
                                  node.allocatable_memory))
    return tuple(found)


FILTERS: tuple[Filter, ...] = (node_name_preselection, node_unschedulable, taint_toleration,
                               node_ready, node_affinity, node_ports, resources_fit)


# Filters that only look at the node's own state: a clean node (Ready, not cordoned, no
# taints) passes them for every pod.
NODE_STATE_FILTERS = frozenset({node_unschedulable, taint_toleration, node_ready})


def filters_for(pod: PodInfo, clean_node: bool = False) -> tuple[Filter, ...]:
    """The filters that can refuse this pod (kube-scheduler's PreFilter "Skip"): a pod
    without a selector, affinity or host ports skips those checks, and a clean node
    skips the node-state ones. The result is the same as running every filter."""
    skip: set[Filter] = set(NODE_STATE_FILTERS) if clean_node else set()
    if pod.pinned_nodes is None:
        skip.add(node_name_preselection)
    if not pod.node_selector and pod.required_terms is None:
        skip.add(node_affinity)
    if not pod.host_ports:
        skip.add(node_ports)
    return tuple(f for f in FILTERS if f not in skip)


def first_failure(pod: PodInfo, node: NodeInfo,
                  filters: tuple[Filter, ...] = FILTERS) -> tuple[Reason, ...]:
    """The reasons of the first filter the node fails, or FITS."""
    for f in filters:
        reasons = f(pod, node)
        if reasons:
            return reasons
    return FITS
