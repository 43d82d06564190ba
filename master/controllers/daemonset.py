"""The DaemonSet controller: one pod of each DaemonSet on every node that should run it.

Role: pkg/controller/daemon. From the stored nodes and a DaemonSet's pods it decides which
nodes need a pod, which pods must go (node no longer eligible, failed, duplicate, pinned
to a node that is gone and never bound; bound ones there are the pod GC's),
which old-template pods a RollingUpdate replaces next, and the status `kubectl rollout
status ds/x` reads. Each decision is a pure function over (daemonset, nodes, pods, template
hash, now as Unix seconds); `DaemonSetController` only reads the store and writes what
they say.

Invariants:
- A daemon pod is pinned to its node by a required node affinity `matchFields
  metadata.name In [node]` (the scheduler binds it); an unbound pod counts for the node its
  affinity names, so a pod is never created twice for one node while it waits.
- Eligibility is NodeShouldRunDaemonPod: nodeSelector, required node affinity, and
  NoSchedule/NoExecute taints against the template's tolerations plus those Kubernetes adds
  to every daemon pod (DAEMON_TOLERATIONS). An untolerated NoSchedule taint only stops new
  pods; an untolerated NoExecute one removes running pods too.
- At most one pod per node (one old plus one new while surging with maxSurge); a node
  whose pod is terminating gets no replacement until it is gone (no two daemons at once).
- A pod is current when its `controller-revision-hash` label is the hash of the template.

Pod helpers (readiness, owners, claiming, pods from templates, the template hash) are the
ReplicaSet and Deployment controllers'; taints, tolerations and node selector terms the
scheduler's.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bramble.kube import selectors
from bramble.kube.errors import BadRequest, StatusError
from bramble.kube.taints import Taint, Toleration, tolerated

from ..api.rest import ObjectAPI, Target, WriteOptions
from ..scheduler.snapshot import node_selector_term
from ..store import Change, Entry
from .base import Controller, EventRecorder, Key, Watch, own_key, owner_keys
from .replicaset import (
    Claim,
    available_in,
    claim,
    controller_of,
    is_available,
    is_ready,
    new_pod,
    write_claims,
)
from .rollout import compute_hash, scaled_value

log = logging.getLogger(__name__)

Obj = dict[str, Any]

DAEMONSETS = "daemonsets.apps"
COMPONENT = "daemonset-controller"
# The label that names the template revision a pod was made from (apps/v1).
REVISION_HASH_LABEL = "controller-revision-hash"
# The per-generation label of older clusters; set only when the generation annotation is.
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"

# What util.AddOrUpdateDaemonPodTolerations gives every daemon pod: it stays through node
# problems (no tolerationSeconds: never evicted for them) and is placed on cordoned or
# pressured nodes, since it is the node's own workload.
DAEMON_TOLERATIONS: tuple[Obj, ...] = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists",
     "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)
HOST_NETWORK_TOLERATION: Obj = {"key": "node.kubernetes.io/network-unavailable",
                                "operator": "Exists", "effect": "NoSchedule"}

# A failed daemon pod is deleted and recreated; repeats back off per node as Kubernetes'
# failedPodsBackoff does (1 s doubling to 15 min), so a pod the node rejects does not spin.
FAILED_POD_BACKOFF = 1.0
FAILED_POD_BACKOFF_MAX = 900.0


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def _name(obj: Obj) -> str:
    return _meta(obj).get("name", "")


def _deleting(obj: Obj) -> bool:
    return bool(_meta(obj).get("deletionTimestamp"))


# --- node eligibility -----------------------------------------------------------------

def _tolerations(pod_spec: Obj) -> list[Toleration]:
    return [Toleration(str(t.get("key") or ""), str(t.get("operator") or "Equal"),
                       str(t.get("value") or ""), str(t.get("effect") or ""))
            for t in pod_spec.get("tolerations") or [] if isinstance(t, dict)]


def untolerated_taint(node: Obj, pod_spec: Obj, effects: Iterable[str]) -> Taint | None:
    """FindMatchingUntoleratedTaint: the first taint of the node with one of `effects` that
    the pod does not tolerate, if any."""
    tolerations = _tolerations(pod_spec)
    wanted = set(effects)
    for t in _spec(node).get("taints") or []:
        taint = Taint(str(t.get("key") or ""), str(t.get("value") or ""),
                      str(t.get("effect") or ""))
        if taint.effect in wanted and not tolerated(tolerations, taint):
            return taint
    return None


def fits_node_affinity(pod_spec: Obj, node: Obj) -> bool:
    """The pod's nodeSelector and required node affinity (any term) both match the node."""
    labels = _meta(node).get("labels") or {}
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    affinity = (pod_spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return True
    return any(node_selector_term(t).matches(_name(node), labels)
               for t in required.get("nodeSelectorTerms") or [])


def add_daemon_tolerations(pod_spec: Obj) -> None:
    """AddOrUpdateDaemonPodTolerations, in place: a toleration with the same key, operator,
    value and effect is replaced by the daemon one (which has no tolerationSeconds)."""
    extra = list(DAEMON_TOLERATIONS)
    if pod_spec.get("hostNetwork"):
        extra.append(HOST_NETWORK_TOLERATION)
    fields = ("key", "operator", "value", "effect")
    tolerations = list(pod_spec.get("tolerations") or [])
    for wanted in extra:
        ident = tuple(wanted.get(k) or "" for k in fields)
        same = [i for i, t in enumerate(tolerations)
                if tuple(t.get(k) or "" for k in fields) == ident]
        for i in same:
            tolerations[i] = dict(wanted)
        if not same:
            tolerations.append(dict(wanted))
    pod_spec["tolerations"] = tolerations


def daemon_pod_spec(ds: Obj) -> Obj:
    """The template's pod spec as the eligibility checks see it (daemon tolerations added)."""
    spec = copy.deepcopy((_spec(ds).get("template") or {}).get("spec") or {})
    add_daemon_tolerations(spec)
    return spec


def should_run(ds: Obj, node: Obj, pod_spec: Obj | None = None) -> tuple[bool, bool]:
    """NodeShouldRunDaemonPod: (a new pod belongs here, an existing one may stay)."""
    pod_spec = daemon_pod_spec(ds) if pod_spec is None else pod_spec
    if pod_spec.get("nodeName") and pod_spec["nodeName"] != _name(node):
        return False, False
    if not fits_node_affinity(pod_spec, node):
        return False, False
    if untolerated_taint(node, pod_spec, ("NoSchedule", "NoExecute")) is not None:
        # Placed before the taint came: it stays unless the taint also evicts.
        return False, untolerated_taint(node, pod_spec, ("NoExecute",)) is None
    return True, True


# --- daemon pods ----------------------------------------------------------------------

def target_node(pod: Obj) -> str:
    """GetTargetNodeName: the bound node, else the one the node-name affinity pins."""
    name = _spec(pod).get("nodeName")
    if name:
        return name
    affinity = (_spec(pod).get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    for term in required.get("nodeSelectorTerms") or []:
        for req in term.get("matchFields") or []:
            if req.get("key") == "metadata.name" and req.get("operator") == "In":
                values = req.get("values") or []
                return values[0] if len(values) == 1 else ""
    return ""


def pin_to_node(pod_spec: Obj, node_name: str) -> None:
    """ReplaceDaemonSetPodNodeNameNodeAffinity, in place: the required node affinity becomes
    the one term `metadata.name In [node]` (the node already passed the template's own)."""
    affinity = pod_spec.get("affinity") or {}
    node_affinity = affinity.get("nodeAffinity") or {}
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}]}
    affinity["nodeAffinity"] = node_affinity
    pod_spec["affinity"] = affinity


def template_hash(ds: Obj) -> str:
    """The revision hash of the DaemonSet's template (ComputeHash with its collisionCount)."""
    return compute_hash(_spec(ds).get("template") or {},
                        (ds.get("status") or {}).get("collisionCount"))


def template_generation(ds: Obj) -> str | None:
    return (_meta(ds).get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)


def is_updated(pod: Obj, hash_: str, generation: str | None) -> bool:
    """util.IsPodUpdated: the pod carries the current hash (or the current generation)."""
    labels = _meta(pod).get("labels") or {}
    return bool((hash_ and labels.get(REVISION_HASH_LABEL) == hash_)
                or (generation is not None
                    and labels.get(TEMPLATE_GENERATION_LABEL) == generation))


def daemon_pod(ds: Obj, node_name: str, hash_: str) -> Obj:
    """A new pod for `node_name` (CreatePodTemplate): the template with the daemon
    tolerations, the node-name affinity and the revision labels; the DaemonSet controls it."""
    template = copy.deepcopy(_spec(ds).get("template") or {})
    spec = template.get("spec") or {}
    add_daemon_tolerations(spec)
    pin_to_node(spec, node_name)
    template["spec"] = spec
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    generation = template_generation(ds)
    if generation is not None:
        labels[TEMPLATE_GENERATION_LABEL] = generation
    labels[REVISION_HASH_LABEL] = hash_
    template.setdefault("metadata", {})["labels"] = labels
    return new_pod({**ds, "spec": {**_spec(ds), "template": template}})


def _by_creation(pod: Obj) -> tuple[int, str, str]:
    """podByCreationTimestampAndPhase: bound pods first, then oldest, then by name."""
    return (0 if _spec(pod).get("nodeName") else 1, _meta(pod).get("creationTimestamp", ""),
            _name(pod))


def pods_by_node(pods: Iterable[Obj]) -> dict[str, list[Obj]]:
    found: dict[str, list[Obj]] = {}
    for pod in pods:
        node = target_node(pod)
        if node:
            found.setdefault(node, []).append(pod)
    return found


def _rolling(ds: Obj) -> Obj:
    strategy = _spec(ds).get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return {}
    return strategy.get("rollingUpdate") or {}


def _scaled(value: Any, total: int) -> int:
    try:
        return scaled_value(value, total, True)
    except ValueError:
        return 0  # validation refuses these


def surge_count(ds: Obj, desired: int) -> int:
    """util.SurgeCount: maxSurge of the desired nodes, rounded up (0 without RollingUpdate)."""
    return _scaled(_rolling(ds).get("maxSurge", 0), desired) if _rolling(ds) else 0


def unavailable_count(ds: Obj, desired: int) -> int:
    """util.UnavailableCount: maxUnavailable of the desired nodes, rounded up."""
    return _scaled(_rolling(ds).get("maxUnavailable", 1), desired) if _rolling(ds) else 0


def allows_surge(ds: Obj) -> bool:
    return surge_count(ds, 1) != 0


# --- decisions --------------------------------------------------------------------------

@dataclass
class DaemonPlan:
    """Pods to create (by node) and delete, and failed pods to replace, subject to the
    per-node back-off."""

    create: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (pod, node)


def manage(ds: Obj, nodes: list[Obj], pods: list[Obj], hash_: str, now: float) -> DaemonPlan:
    """podsShouldBeOnNode for every node, plus the unbound pods pinned to a node that no
    longer exists (no scheduler will ever bind them). Bound pods of a vanished node are the
    pod garbage collector's, as in Kubernetes: it waits out a quarantine in case the node
    registers again."""
    plan = DaemonPlan()
    pod_spec = daemon_pod_spec(ds)
    surge = allows_surge(ds)
    min_ready = int(_spec(ds).get("minReadySeconds") or 0)
    generation = template_generation(ds)
    on_node = pods_by_node(pods)
    for node in nodes:
        name = _name(node)
        run, stay = should_run(ds, node, pod_spec)
        present = on_node.get(name, [])
        if run and not present:
            plan.create.append(name)
        elif stay:
            running = []
            for pod in present:
                phase = (pod.get("status") or {}).get("phase")
                if _deleting(pod):
                    continue
                if phase == "Failed":
                    plan.failed.append((_name(pod), name))
                elif phase == "Succeeded":
                    plan.delete.append(_name(pod))  # a daemon is not meant to end
                else:
                    running.append(pod)
            running.sort(key=_by_creation)
            if not surge:
                plan.delete += [_name(p) for p in running[1:]]
            elif not running:
                if run:
                    plan.create.append(name)
            elif len(running) > 1:
                # Surging: the oldest new and the oldest old pod may both run; the old one
                # goes once it is not ready or the new one is available. Others go now.
                new = old = None
                for pod in running:
                    if is_updated(pod, hash_, generation):
                        if new is None:
                            new = pod
                            continue
                    elif old is None:
                        old = pod
                        continue
                    plan.delete.append(_name(pod))
                if new is not None and old is not None and (
                        not is_ready(old) or is_available(new, min_ready, now)):
                    plan.delete.append(_name(old))
        else:
            plan.delete += [_name(p) for p in present if not _deleting(p)]
    known = {_name(n) for n in nodes}
    plan.delete += [_name(p) for node_name, present in on_node.items() if node_name not in known
                    for p in present if not _spec(p).get("nodeName") and not _deleting(p)]
    return plan


def _updated_pods_on_node(pods: list[Obj], hash_: str,
                          generation: str | None) -> tuple[Obj | None, Obj | None, bool]:
    """findUpdatedPodsOnNode: (new pod, old pod, ok); not ok with two of either kind."""
    new = old = None
    for pod in pods:
        if _deleting(pod):
            continue
        if is_updated(pod, hash_, generation):
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


def rolling_update(ds: Obj, nodes: list[Obj], pods: list[Obj], hash_: str,
                   now: float) -> DaemonPlan:
    """The RollingUpdate step (pkg/controller/daemon/update.go rollingUpdate).

    Without surge: delete old pods while fewer than maxUnavailable nodes lack an available
    current pod (old pods that are unavailable anyway go at once); the manage step then
    places the new ones. With surge: place a new pod next to an old one on up to maxSurge
    nodes (at once where the old one is unavailable) and delete the old one when the new
    one is available. Deleted pods do not count as unavailable, so a down node cannot block
    the update.
    """
    plan = DaemonPlan()
    pod_spec = daemon_pod_spec(ds)
    min_ready = int(_spec(ds).get("minReadySeconds") or 0)
    generation = template_generation(ds)
    on_node = pods_by_node(pods)
    eligible = {}
    for node in nodes:
        run, _ = should_run(ds, node, pod_spec)
        eligible[_name(node)] = run
        if run:
            on_node.setdefault(_name(node), [])
    desired = sum(eligible.values())
    max_surge, max_unavailable = surge_count(ds, desired), unavailable_count(ds, desired)
    if desired > 0 and max_surge == 0 and max_unavailable == 0:
        max_unavailable = 1  # an impossible configuration: accept unavailability
    if max_surge == 0:
        unavailable = 0
        replace: list[str] = []
        candidates: list[str] = []
        for name in sorted(on_node):
            new, old, ok = _updated_pods_on_node(on_node[name], hash_, generation)
            if not ok or (new is None) == (old is None):
                unavailable += 1  # the manage step creates or prunes here
            elif new is not None:
                unavailable += not is_available(new, min_ready, now)
            elif old is not None:
                if not is_available(old, min_ready, now):
                    replace.append(_name(old))
                elif unavailable < max_unavailable:
                    candidates.append(_name(old))
        room = max(0, min(max_unavailable - unavailable, len(candidates)))
        plan.delete = replace + candidates[:room]
        return plan
    surging = available = 0
    allowed: list[str] = []
    candidate_nodes: list[str] = []
    sunset: list[str] = []  # old pods on nodes the DaemonSet no longer wants
    for name in sorted(on_node):
        new, old, ok = _updated_pods_on_node(on_node[name], hash_, generation)
        if not ok:
            surging += 1
            continue
        if old is not None or new is not None:
            available += is_available(old if old is not None else new, min_ready, now)
        if old is None:
            continue
        if new is None:
            if not is_available(old, min_ready, now):
                if eligible.get(name, False):
                    allowed.append(name)
                else:
                    plan.delete.append(_name(old))
            elif not eligible.get(name, False):
                sunset.append(_name(old))
            elif surging < max_surge:
                candidate_nodes.append(name)
        elif not is_available(new, min_ready, now):
            surging += 1
        else:
            plan.delete.append(_name(old))
    # With surge the owner expects no loss of availability: an old pod on a node that no
    # longer qualifies goes only once enough pods elsewhere are available.
    spare = min(available - desired, len(sunset))
    if spare > 0:
        plan.delete += sunset[:spare]
    room = max(0, min(max_surge - surging, len(candidate_nodes)))
    plan.create = allowed + candidate_nodes[:room]
    return plan


def daemonset_status(ds: Obj, nodes: list[Obj], pods: list[Obj], hash_: str,
                     now: float) -> tuple[Obj, float | None]:
    """updateDaemonSetStatus: the counters, and the seconds until a ready pod becomes
    available (minReadySeconds), when the status will change by itself."""
    pod_spec = daemon_pod_spec(ds)
    min_ready = int(_spec(ds).get("minReadySeconds") or 0)
    generation = template_generation(ds)
    # Terminal pods being deleted no longer count (includeDeletedTerminal false).
    on_node = pods_by_node(p for p in pods if not (
        _deleting(p) and (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")))
    desired = current = misscheduled = ready = updated = available = 0
    soonest: float | None = None
    for node in nodes:
        run, _ = should_run(ds, node, pod_spec)
        present = sorted(on_node.get(_name(node), []), key=_by_creation)
        if not run:
            misscheduled += bool(present)
            continue
        desired += 1
        if not present:
            continue
        current += 1
        pod = present[0]
        if is_ready(pod):
            ready += 1
            left = available_in(pod, min_ready, now)
            if left == 0.0:
                available += 1
            elif left is not None:
                soonest = left if soonest is None else min(soonest, left)
        updated += is_updated(pod, hash_, generation)
    status: Obj = {"currentNumberScheduled": current, "numberMisscheduled": misscheduled,
                   "desiredNumberScheduled": desired, "numberReady": ready}
    if _meta(ds).get("generation"):
        status["observedGeneration"] = _meta(ds)["generation"]
    # The omitempty fields, as the Go struct serialises them.
    for key, value in (("updatedNumberScheduled", updated), ("numberAvailable", available),
                       ("numberUnavailable", desired - available)):
        if value:
            status[key] = value
    old = ds.get("status") or {}
    for key in ("collisionCount", "conditions"):
        if key in old:
            status[key] = old[key]
    # Strictly after minReadySeconds (IsPodAvailable compares with Before).
    return status, None if soonest is None else soonest + 0.5


# --- the loop -----------------------------------------------------------------------------

def _node_view(entry: Entry | None) -> Any:
    """What eligibility reads of a node: existence, labels and taints."""
    if entry is None:
        return None
    node = entry.obj()
    return _meta(node).get("labels") or {}, _spec(node).get("taints") or []


class DaemonSetController(Controller):
    name = COMPONENT
    workers = 2

    def __init__(self, api: ObjectAPI, clock: Callable[[], float] = time.time) -> None:
        super().__init__(api)
        self.clock = clock
        self.events = EventRecorder(api, COMPONENT)
        self.pods = self.target("", "v1", "pods")
        self.daemonsets = self.target("apps", "v1", "daemonsets")
        # (daemonset uid, node) -> (current delay, monotonic time it ends)
        self._failed_backoff: dict[tuple[str, str], tuple[float, float]] = {}
        self.watches = [Watch(DAEMONSETS, own_key), Watch("pods", self._pod_keys),
                        Watch("nodes", self._node_keys)]
        self._owner_keys = owner_keys("DaemonSet")

    def initial_keys(self) -> Iterable[Key]:
        return [(e.namespace, e.name) for e in self.store.list(DAEMONSETS)]

    def _pod_keys(self, change: Change) -> Iterable[Key]:
        keys = set(self._owner_keys(change))
        for entry in (change.entry, change.prev):
            if entry is None or controller_of(entry.obj()) is not None:
                continue
            # An orphan: a DaemonSet whose selector matches may adopt it.
            for ds in self.store.list(DAEMONSETS, entry.namespace):
                try:
                    selector = selectors.label_selector_from_struct(
                        _spec(ds.obj()).get("selector"))
                except BadRequest:
                    continue
                if not selector.empty() and selector.matches(entry.labels):
                    keys.add((ds.namespace, ds.name))
        return keys

    def _node_keys(self, change: Change) -> Iterable[Key]:
        # Status reports (heartbeats, conditions) change nothing a DaemonSet decides on.
        if change.type == "MODIFIED" and _node_view(change.entry) == _node_view(change.prev):
            return ()
        return self.initial_keys()

    def _claim(self, ds: Obj, selector: selectors.LabelSelector) -> Claim:
        """The namespace's pods this DaemonSet controls, adopts or releases: those its
        selector matches and those naming its uid. Only those are decoded."""
        uid = _meta(ds).get("uid", "").encode()
        candidates = [e.obj() for e in self.store.list("pods", _meta(ds).get("namespace", ""))
                      if selector.matches(e.labels) or (uid and uid in e.raw)]
        return claim(ds, selector, candidates)

    async def _pods(self, ds: Obj, selector: selectors.LabelSelector) -> list[Obj]:
        claimed = self._claim(ds, selector)
        if claimed.adopt or claimed.release:
            await write_claims(self.api, self.identity, self.pods, ds, claimed)
            claimed = self._claim(ds, selector)
        return claimed.owned

    async def reconcile(self, key: Key) -> float | None:
        namespace, name = key  # type: ignore[misc]
        entry = self.store.get(DAEMONSETS, namespace, name)
        if entry is None:
            return None
        ds = entry.obj()
        if _deleting(ds):
            return None
        try:
            selector = selectors.label_selector_from_struct(_spec(ds).get("selector"))
        except BadRequest:
            return None  # validation keeps these out
        if selector.empty():
            await self.events.record(ds, "Warning", "SelectingAll",
                                     "This daemon set is selecting all pods. A non-empty "
                                     "selector is required.")
            return None
        hash_ = template_hash(ds)
        nodes = [e.obj() for e in self.store.list("nodes")]
        waits = await self._apply(ds, manage(ds, nodes, await self._pods(ds, selector), hash_,
                                             self.clock()), hash_)
        if (_spec(ds).get("updateStrategy") or {}).get("type",
                                                       "RollingUpdate") == "RollingUpdate":
            plan = rolling_update(ds, nodes, await self._pods(ds, selector), hash_,
                                  self.clock())
            waits += await self._apply(ds, plan, hash_)
        status, soonest = daemonset_status(ds, nodes, await self._pods(ds, selector), hash_,
                                           self.clock())
        if soonest is not None:
            waits.append(soonest)
        if status != (ds.get("status") or {}):
            ds["status"] = status
            await self.api.update(Target(self.daemonsets.rt, namespace, name, "status"), ds,
                                  WriteOptions(), self.identity)
        return min(waits) if waits else None

    async def _apply(self, ds: Obj, plan: DaemonPlan, hash_: str) -> list[float]:
        """Carry out a plan; returns the delays after which failed pods may be replaced."""
        namespace = _meta(ds).get("namespace", "")
        waits = []
        for node in plan.create:
            try:
                pod, _ = await self.api.create(Target(self.pods.rt, namespace),
                                               daemon_pod(ds, node, hash_), WriteOptions(),
                                               self.identity)
            except StatusError as err:
                if err.code == 403 and "being terminated" in err.message:
                    return waits  # the namespace is going away: so is this DaemonSet
                await self.events.record(ds, "Warning", "FailedCreate",
                                         f"Error creating: {err.message}")
                raise
            await self.events.record(ds, "Normal", "SuccessfulCreate",
                                     f"Created pod: {_name(pod)}")
        doomed = list(plan.delete)
        uid = _meta(ds).get("uid", "")
        for pod_name, node in plan.failed:
            wait = self._backoff_left(uid, node)
            if wait > 0:
                waits.append(wait)
                continue
            await self.events.record(ds, "Warning", "FailedDaemonPod",
                                     f"Found failed daemon pod {namespace}/{pod_name} on node "
                                     f"{node}, will try to kill it")
            self._back_off(uid, node)
            doomed.append(pod_name)
        for pod_name in doomed:
            try:
                await self.api.delete(Target(self.pods.rt, namespace, pod_name), {},
                                      self.identity)
            except StatusError as err:
                if err.code == 404:
                    continue
                await self.events.record(ds, "Warning", "FailedDelete",
                                         f"Error deleting: {err.message}")
                raise
            await self.events.record(ds, "Normal", "SuccessfulDelete",
                                     f"Deleted pod: {pod_name}")
        return waits

    def _backoff_left(self, uid: str, node: str) -> float:
        entry = self._failed_backoff.get((uid, node))
        return 0.0 if entry is None else max(0.0, entry[1] - time.monotonic())

    def _back_off(self, uid: str, node: str) -> None:
        now = time.monotonic()
        previous = self._failed_backoff.get((uid, node))
        if previous is None or now - previous[1] > 2 * FAILED_POD_BACKOFF_MAX:
            delay = FAILED_POD_BACKOFF  # quiet for long: start over, as flowcontrol.Backoff
        else:
            delay = min(previous[0] * 2, FAILED_POD_BACKOFF_MAX)
        self._failed_backoff[(uid, node)] = (delay, now + delay)
        if len(self._failed_backoff) > 10_000:  # bounded: forget long-expired entries
            for k, (_, until) in list(self._failed_backoff.items()):
                if now - until > 2 * FAILED_POD_BACKOFF_MAX:
                    del self._failed_backoff[k]
