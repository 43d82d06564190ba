"""What the scheduler decides from: typed views of pods and nodes, and per-node sums.

`PodInfo` is a pod reduced to what filters and scores read (requests as Kubernetes counts
them, tolerations, node selector and affinity, host ports, controller owner). `NodeInfo`
is a node's scheduling facts plus the sums of the pods counted on it. `Snapshot` keeps
those sums incrementally: the loop feeds it every pod and node watch change, so a decision
costs O(nodes), never O(pods).

Invariants:
- A pod is counted on at most one node: the one it is bound to, or the one the scheduler
  has just chosen for it ("assumed", before its binding is durable). Terminated pods
  (Succeeded, Failed) are not counted; pods being deleted still are, as in Kubernetes.
- Sums exist for a node name even before (or after) its Node object: a pod bound to a node
  that registers later is already accounted for when the node appears.
- Pure and synchronous: no I/O, no clock. Mutations happen on the event loop between
  awaits, so a decision and the assumption it makes are atomic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from bramble.kube import quantity
from bramble.kube.selectors import (
    DOES_NOT_EXIST,
    EXISTS,
    GREATER_THAN,
    IN,
    LESS_THAN,
    NOT_IN,
    Requirement,
)
from bramble.kube.taints import Taint, Toleration

Obj = dict[str, Any]
PodKey = tuple[str, str]  # (namespace, name)

# What a container without a request counts as when nodes are scored (kube-scheduler's
# DefaultMilliCPURequest and DefaultMemoryRequest), so that many pods without requests
# do not all land on one node. Filters use the real requests.
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024

TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
NO_SCHEDULE, PREFER_NO_SCHEDULE, NO_EXECUTE = "NoSchedule", "PreferNoSchedule", "NoExecute"
NODE_NAME_FIELD = "metadata.name"

_NODE_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS,
                   "DoesNotExist": DOES_NOT_EXIST, "Gt": GREATER_THAN, "Lt": LESS_THAN}

# Quantity strings repeat across pods ("100m", "64Mi"): parse each spelling once.
_milli = lru_cache(maxsize=4096)(quantity.to_milli)
_units = lru_cache(maxsize=4096)(quantity.to_int)


# --- typed pieces ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class HostPort:
    """A host port a pod claims; "0.0.0.0" means every address of the node."""

    ip: str
    protocol: str
    port: int


@dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    """One nodeSelectorTerm: its label expressions AND its field expressions must hold.

    `invalid` marks a term Kubernetes could not parse (unknown operator, bad field key):
    such a term matches no node, as the apiserver's nodeaffinity helper treats it.
    """

    expressions: tuple[Requirement, ...] = ()
    fields: tuple[Requirement, ...] = ()
    invalid: bool = False

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        if self.invalid or not (self.expressions or self.fields):
            return False  # an empty term matches no objects (API documentation)
        for r in self.expressions:
            if not r.matches(labels):
                return False
        if self.fields:
            fields = {NODE_NAME_FIELD: name}
            for r in self.fields:
                if not r.matches(fields):
                    return False
        return True


@dataclass(frozen=True, slots=True)
class PodInfo:
    """A pod as filters and scores read it, computed once per scheduling attempt."""

    namespace: str
    name: str
    uid: str
    # Requests as NodeResourcesFit counts them: max(sum(containers + sidecars), the
    # largest init step) + overhead. cpu in millicores, memory in bytes.
    cpu: int
    memory: int
    # The same with containers that request nothing counted at the defaults above.
    nonzero_cpu: int
    nonzero_memory: int
    node_selector: tuple[tuple[str, str], ...] = ()
    # Required node affinity: None when the pod has none; terms are ORed.
    required_terms: tuple[NodeSelectorTerm, ...] | None = None
    # Node names every required term pins with `matchFields metadata.name In` (what
    # NodeAffinity's PreFilter narrows to; DaemonSet pods use it), or None.
    pinned_nodes: frozenset[str] | None = None
    preferred_terms: tuple[tuple[int, NodeSelectorTerm], ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    host_ports: tuple[HostPort, ...] = ()
    owner: str = ""  # uid of the controller ownerReference, "" without one
    preemption_never: bool = False

    @property
    def best_effort(self) -> bool:
        return self.cpu == 0 and self.memory == 0


# --- parsing ---------------------------------------------------------------------------

def _requested(container: Obj, with_defaults: bool) -> tuple[int, int]:
    requests = (container.get("resources") or {}).get("requests") or {}
    cpu = requests.get("cpu")
    memory = requests.get("memory")
    return (
        _milli(cpu) if cpu is not None else (DEFAULT_MILLI_CPU_REQUEST if with_defaults else 0),
        _units(memory) if memory is not None else (DEFAULT_MEMORY_REQUEST if with_defaults
                                                   else 0),
    )


def pod_requests(spec: Obj, with_defaults: bool = False) -> tuple[int, int]:
    """(millicpu, bytes) a pod needs on a node, as resourcehelper.PodRequests computes it.

    Regular containers run together: their requests add up. Init containers run one after
    another, so only the largest step counts - except sidecars (restartPolicy Always),
    which keep running: they add to the total and to every later init step. The pod needs
    the larger of the two; spec.overhead (the runtime's own cost) comes on top.
    """
    cpu = memory = 0
    for container in spec.get("containers") or ():
        c, m = _requested(container, with_defaults)
        cpu += c
        memory += m
    side_cpu = side_memory = init_cpu = init_memory = 0
    for container in spec.get("initContainers") or ():
        c, m = _requested(container, with_defaults)
        if container.get("restartPolicy") == "Always":
            cpu += c
            memory += m
            side_cpu += c
            side_memory += m
            step_cpu, step_memory = side_cpu, side_memory
        else:
            step_cpu, step_memory = c + side_cpu, m + side_memory
        init_cpu = max(init_cpu, step_cpu)
        init_memory = max(init_memory, step_memory)
    cpu = max(cpu, init_cpu)
    memory = max(memory, init_memory)
    overhead = spec.get("overhead") or {}
    if "cpu" in overhead:
        cpu += _milli(overhead["cpu"])
    if "memory" in overhead:
        memory += _units(overhead["memory"])
    return cpu, memory


def _requirement(expr: Any, allowed: Iterable[str]) -> Requirement | None:
    if not isinstance(expr, dict):
        return None
    operator = expr.get("operator", "")
    if operator not in allowed:
        return None
    values = tuple(str(v) for v in expr.get("values") or ())
    return Requirement(str(expr.get("key", "")), _NODE_OPERATORS[operator], values)


def node_selector_term(term: Any) -> NodeSelectorTerm:
    """Parse a v1.NodeSelectorTerm. matchFields supports only metadata.name with In and
    NotIn, as Kubernetes does."""
    if not isinstance(term, dict):
        return NodeSelectorTerm(invalid=True)
    expressions: list[Requirement] = []
    fields: list[Requirement] = []
    for expr in term.get("matchExpressions") or ():
        r = _requirement(expr, _NODE_OPERATORS)
        if r is None:
            return NodeSelectorTerm(invalid=True)
        expressions.append(r)
    for expr in term.get("matchFields") or ():
        r = _requirement(expr, ("In", "NotIn"))
        if r is None or r.key != NODE_NAME_FIELD:
            return NodeSelectorTerm(invalid=True)
        fields.append(r)
    return NodeSelectorTerm(tuple(expressions), tuple(fields))


def pinned_node_names(terms: Iterable[Any]) -> frozenset[str] | None:
    """The node names NodeAffinity's PreFilter narrows to: the union over terms of the
    intersection of their `metadata.name In` fields - None (every node) as soon as one
    term does not pin names, since terms are ORed."""
    names: set[str] = set()
    any_term = False
    for term in terms:
        any_term = True
        term_names: set[str] | None = None
        for expr in (term.get("matchFields") or ()) if isinstance(term, dict) else ():
            if (isinstance(expr, dict) and expr.get("key") == NODE_NAME_FIELD
                    and expr.get("operator") == "In"):
                values = {str(v) for v in expr.get("values") or ()}
                term_names = values if term_names is None else term_names & values
        if term_names is None:
            return None
        names |= term_names
    return frozenset(names) if any_term else None


def _tolerations(spec: Obj) -> tuple[Toleration, ...]:
    return tuple(Toleration.from_obj(t) for t in spec.get("tolerations") or ()
                 if isinstance(t, dict))


def _host_ports(spec: Obj) -> tuple[HostPort, ...]:
    ports = []
    for container in spec.get("containers") or ():
        for port in container.get("ports") or ():
            host_port = port.get("hostPort") or 0
            if isinstance(host_port, int) and host_port > 0:
                ports.append(HostPort(port.get("hostIP") or "0.0.0.0",
                                      port.get("protocol") or "TCP", host_port))
    return tuple(dict.fromkeys(ports))


def controller_owner(metadata: Obj) -> str:
    for ref in metadata.get("ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("controller"):
            return str(ref.get("uid") or f"{ref.get('kind')}/{ref.get('name')}")
    return ""


def pod_info(pod: Obj) -> PodInfo:
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    cpu, memory = pod_requests(spec)
    nonzero_cpu, nonzero_memory = pod_requests(spec, with_defaults=True)
    node_affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    required_terms: tuple[NodeSelectorTerm, ...] | None = None
    pinned = None
    if isinstance(required, dict):
        raw_terms = required.get("nodeSelectorTerms") or []
        required_terms = tuple(node_selector_term(t) for t in raw_terms)
        pinned = pinned_node_names(raw_terms)
    preferred = []
    for p in node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or ():
        if isinstance(p, dict) and isinstance(p.get("weight"), int) and p["weight"] > 0:
            preferred.append((p["weight"], node_selector_term(p.get("preference"))))
    selector = spec.get("nodeSelector") or {}
    return PodInfo(
        namespace=metadata.get("namespace", ""), name=metadata.get("name", ""),
        uid=metadata.get("uid", ""), cpu=cpu, memory=memory, nonzero_cpu=nonzero_cpu,
        nonzero_memory=nonzero_memory,
        node_selector=tuple(sorted((str(k), str(v)) for k, v in selector.items())),
        required_terms=required_terms, pinned_nodes=pinned, preferred_terms=tuple(preferred),
        tolerations=_tolerations(spec), host_ports=_host_ports(spec),
        owner=controller_owner(metadata),
        preemption_never=spec.get("preemptionPolicy") == "Never")


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """What the scheduler reads from a Node object. Equal facts: nothing that could change
    a decision changed (a heartbeat, an image list, an annotation)."""

    labels: tuple[tuple[str, str], ...]
    taints: tuple[Taint, ...]
    unschedulable: bool
    ready: str  # the Ready condition's status: "True", "False" or "Unknown"
    cpu: int
    memory: int
    pods: int


def node_facts(node: Obj) -> NodeFacts:
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    allocatable = status.get("allocatable") or {}
    ready = "Unknown"
    for condition in status.get("conditions") or ():
        if isinstance(condition, dict) and condition.get("type") == "Ready":
            ready = str(condition.get("status") or "Unknown")
    taints = tuple(Taint.from_obj(t) for t in spec.get("taints") or () if isinstance(t, dict))
    labels = (node.get("metadata") or {}).get("labels") or {}
    return NodeFacts(
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())), taints=taints,
        unschedulable=bool(spec.get("unschedulable")), ready=ready,
        cpu=_milli(allocatable["cpu"]) if "cpu" in allocatable else 0,
        memory=_units(allocatable["memory"]) if "memory" in allocatable else 0,
        pods=_units(allocatable["pods"]) if "pods" in allocatable else 0)


# --- nodes and their sums --------------------------------------------------------------

class NodeInfo:
    """A node's facts (None until its Node object is seen) and the sums of its pods.

    Attributes are read directly by filters and scores: this is the hot path.
    """

    __slots__ = ("allocatable_cpu", "allocatable_memory", "allocatable_pods", "clean",
                 "facts", "labels", "name", "nonzero_cpu", "nonzero_memory", "owners",
                 "pod_count", "ports", "ports_any_ip", "requested_cpu", "requested_memory",
                 "taints")

    def __init__(self, name: str) -> None:
        self.name = name
        self.facts: NodeFacts | None = None
        self.labels: dict[str, str] = {}
        self.taints: tuple[Taint, ...] = ()
        # Ready, not cordoned, untainted: no pod can fail the node-state filters here.
        self.clean = False
        self.allocatable_cpu = self.allocatable_memory = self.allocatable_pods = 0
        self.requested_cpu = self.requested_memory = 0
        self.nonzero_cpu = self.nonzero_memory = 0
        self.pod_count = 0
        self.ports: dict[HostPort, int] = {}
        self.ports_any_ip: dict[tuple[str, int], int] = {}  # (protocol, port) on any ip
        self.owners: dict[str, int] = {}

    @property
    def unschedulable(self) -> bool:
        return self.facts is not None and self.facts.unschedulable

    @property
    def ready(self) -> str:
        return self.facts.ready if self.facts is not None else "Unknown"

    def set_facts(self, facts: NodeFacts | None) -> None:
        self.facts = facts
        if facts is None:
            self.labels, self.taints, self.clean = {}, (), False
            self.allocatable_cpu = self.allocatable_memory = self.allocatable_pods = 0
            return
        self.labels = dict(facts.labels)
        self.taints = facts.taints
        self.clean = facts.ready == "True" and not facts.unschedulable and not facts.taints
        self.allocatable_cpu, self.allocatable_memory = facts.cpu, facts.memory
        self.allocatable_pods = facts.pods

    def _count(self, pod: PodInfo, sign: int) -> None:
        self.requested_cpu += sign * pod.cpu
        self.requested_memory += sign * pod.memory
        self.nonzero_cpu += sign * pod.nonzero_cpu
        self.nonzero_memory += sign * pod.nonzero_memory
        self.pod_count += sign
        for port in pod.host_ports:
            _bump(self.ports, port, sign)
            _bump(self.ports_any_ip, (port.protocol, port.port), sign)
        if pod.owner:
            _bump(self.owners, pod.owner, sign)

    def add(self, pod: PodInfo) -> None:
        self._count(pod, 1)

    def remove(self, pod: PodInfo) -> None:
        self._count(pod, -1)

    def empty(self) -> bool:
        return self.facts is None and self.pod_count == 0


def _bump(counts: dict, key: Any, sign: int) -> None:
    n = counts.get(key, 0) + sign
    if n > 0:
        counts[key] = n
    else:
        counts.pop(key, None)


@dataclass(slots=True)
class _Placed:
    node: str
    info: PodInfo
    assumed: bool  # chosen by the scheduler; its binding not yet seen in a watch


class Snapshot:
    """Nodes and the pods counted on them, updated change by change."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self._placed: dict[PodKey, _Placed] = {}
        self._schedulable: list[NodeInfo] | None = None

    @classmethod
    def of(cls, nodes: Iterable[Obj], pods: Iterable[Obj] = ()) -> Snapshot:
        """A snapshot of whole objects (startup, resync, tests)."""
        snap = cls()
        for node in nodes:
            snap.set_node(node["metadata"]["name"], node_facts(node))
        for pod in pods:
            snap.observe(pod)
        return snap

    # -- nodes ------------------------------------------------------------------------

    def _node(self, name: str) -> NodeInfo:
        info = self.nodes.get(name)
        if info is None:
            info = self.nodes[name] = NodeInfo(name)
        return info

    def set_node(self, name: str, facts: NodeFacts) -> bool:
        """Record a node's facts; True when they are new or different (a reason to look
        at unschedulable pods again)."""
        info = self._node(name)
        if info.facts == facts:
            return False
        if info.facts is None:
            self._schedulable = None
        info.set_facts(facts)
        return True

    def remove_node(self, name: str) -> None:
        info = self.nodes.get(name)
        if info is None:
            return
        info.set_facts(None)
        self._schedulable = None
        if info.empty():
            del self.nodes[name]

    def schedulable(self) -> list[NodeInfo]:
        """Nodes with a Node object, by name (the order ties are broken in)."""
        if self._schedulable is None:
            self._schedulable = sorted((n for n in self.nodes.values() if n.facts is not None),
                                       key=lambda n: n.name)
        return self._schedulable

    # -- pods -------------------------------------------------------------------------

    def placed_on(self, key: PodKey) -> str | None:
        placed = self._placed.get(key)
        return placed.node if placed is not None else None

    def is_assumed(self, key: PodKey) -> bool:
        placed = self._placed.get(key)
        return placed is not None and placed.assumed

    def place(self, key: PodKey, info: PodInfo, node: str, *, assumed: bool = False) -> None:
        """Count a pod on `node` (moving it if it was counted elsewhere)."""
        self.remove(key)
        self._placed[key] = _Placed(node, info, assumed)
        self._node(node).add(info)

    def confirm(self, key: PodKey, node: str) -> bool:
        """The watch shows `key` bound to `node`: True if it was already counted there."""
        placed = self._placed.get(key)
        if placed is None or placed.node != node:
            return False
        placed.assumed = False
        return True

    def remove(self, key: PodKey) -> bool:
        """Stop counting a pod; True if it was counted somewhere (resources were freed)."""
        placed = self._placed.pop(key, None)
        if placed is None:
            return False
        info = self.nodes.get(placed.node)
        if info is not None:
            info.remove(placed.info)
            if info.empty():
                del self.nodes[placed.node]
        return True

    def forget_assumed(self, key: PodKey, node: str) -> None:
        """A binding failed: drop the assumption unless a watch has confirmed it since."""
        placed = self._placed.get(key)
        if placed is not None and placed.assumed and placed.node == node:
            self.remove(key)

    def observe(self, pod: Obj) -> bool:
        """Count a whole pod object as the store has it; True if a count was freed."""
        metadata = pod.get("metadata") or {}
        key = (metadata.get("namespace", ""), metadata.get("name", ""))
        node = (pod.get("spec") or {}).get("nodeName") or ""
        if not node or (pod.get("status") or {}).get("phase") in TERMINAL_PHASES:
            if self.is_assumed(key) and not node:
                return False  # our own binding is on its way
            return self.remove(key)
        if not self.confirm(key, node):
            self.place(key, pod_info(pod), node)
        return False

    def assumed(self) -> dict[PodKey, tuple[str, PodInfo]]:
        return {k: (p.node, p.info) for k, p in self._placed.items() if p.assumed}
