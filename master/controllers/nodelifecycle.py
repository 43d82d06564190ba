"""Node lifecycle: notices nodes that stop heartbeating, taints them, and evicts their pods.

Kubernetes' node lifecycle and taint eviction controllers, for a home lab:
- Health: a node agent renews its Lease kube-node-lease/NAME every few seconds and posts
  its status now and then. The controller notes, on its own monotonic clock, the last time
  either changed (the lease's renewTime, the Ready condition's lastHeartbeatTime); clock
  skew between Pis never matters. A node silent for longer than the grace period gets every
  kubelet condition (Ready, MemoryPressure, DiskPressure, PIDPressure) set to Unknown,
  reason NodeStatusUnknown, "Kubelet stopped posting node status." - and when Ready turns
  from True, a NodeNotReady event and its pods marked not ready (so Services drop them).
  A node seen for the first time (also: every node after a master restart) starts with a
  fresh grace period. A node that never posted a Ready condition gets the startup grace.
- Taints follow the conditions (TaintNodesByCondition): node.kubernetes.io/not-ready or
  unreachable (Ready False or Unknown), memory-, disk-, pid-pressure, network-unavailable,
  unschedulable (spec.unschedulable), all NoSchedule; plus not-ready or unreachable
  NoExecute, which evicts pods. A node that is Ready again loses them. When every node of
  every zone is not ready, the master itself is probably cut off: no NoExecute taints are
  kept (Kubernetes' "master disruption mode"); in a zone where most nodes (more than 2,
  at least 55%) are not ready, no new ones are added.
- Eviction: a pod on a node with NoExecute taints is deleted when it does not tolerate one,
  or once the shortest tolerationSeconds of the tolerations it uses has passed since that
  taint appeared. A pod with no toleration of its own for not-ready/unreachable gets the
  home-lab default (Kubernetes' DefaultTolerationSeconds admission adds 300 s); a
  toleration without tolerationSeconds tolerates forever. The pod gets a DisruptionTarget
  condition and an Event TaintManagerEviction "Marking for deletion Pod ns/name", then a
  normal delete: its node agent, once back, stops it and confirms. Workload controllers
  replace it meanwhile (they do not count terminating pods).

Every wait is a deadline on the work queue (never a poll): a node is looked at again when
its grace period would end, a pod when its toleration would. Decisions are pure functions
(`unknown_conditions`, `desired_taints`, `zone_state`, `eviction_delay`, ...); the
`NodeLifecycleController` reads the store and writes through the API.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from bramble.kube.errors import NotFound, StatusError
from bramble.kube.taints import Taint, Toleration

from ..api.auth import NODE_LEASE_NAMESPACE
from ..api.rest import ObjectAPI, Target, WriteOptions, rfc3339
from ..store import Change
from .base import Controller, EventRecorder, Watch

log = logging.getLogger(__name__)

Obj = dict[str, Any]

NO_SCHEDULE, NO_EXECUTE = "NoSchedule", "NoExecute"
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
TAINT_OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"
# (condition, status) -> the NoSchedule taint it brings (nodeConditionToTaintKeyStatusMap).
CONDITION_TAINTS = {
    ("Ready", "False"): TAINT_NOT_READY,
    ("Ready", "Unknown"): TAINT_UNREACHABLE,
    ("MemoryPressure", "True"): "node.kubernetes.io/memory-pressure",
    ("DiskPressure", "True"): "node.kubernetes.io/disk-pressure",
    ("NetworkUnavailable", "True"): "node.kubernetes.io/network-unavailable",
    ("PIDPressure", "True"): "node.kubernetes.io/pid-pressure",
}
# The conditions the kubelet owns; NetworkUnavailable belongs to the network plugin.
KUBELET_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
EXCLUDE_DISRUPTION = "node.kubernetes.io/exclude-disruption"

NORMAL, PARTIAL, FULL = "Normal", "PartialDisruption", "FullDisruption"
UNHEALTHY_ZONE_THRESHOLD = 0.55

UNKNOWN_REASON = "NodeStatusUnknown"
UNKNOWN_MESSAGE = "Kubelet stopped posting node status."
NEVER_REASON = "NodeStatusNeverUpdated"
NEVER_MESSAGE = "Kubelet never posted node status."


# --- pure decisions ----------------------------------------------------------------------

def _meta(obj: Obj) -> Obj:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def condition(node: Obj, type_: str) -> Obj | None:
    for c in (node.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == type_:
            return c
    return None


def ready_status(node: Obj) -> str | None:
    """"True", "False", "Unknown", or None when the node never posted a Ready condition."""
    c = condition(node, "Ready")
    return c.get("status") if c is not None else None


def unknown_conditions(node: Obj, now: str) -> list[Obj]:
    """The node's conditions once its agent is considered silent: every kubelet condition
    Unknown (those never posted added), heartbeats left as they were."""
    conditions = [dict(c) for c in (node.get("status") or {}).get("conditions") or []
                  if isinstance(c, dict)]
    for type_ in KUBELET_CONDITIONS:
        current = next((c for c in conditions if c.get("type") == type_), None)
        if current is None:
            conditions.append({"type": type_, "status": "Unknown", "reason": NEVER_REASON,
                               "message": NEVER_MESSAGE,
                               "lastHeartbeatTime": _meta(node).get("creationTimestamp"),
                               "lastTransitionTime": now})
        elif current.get("status") != "Unknown":
            current.update(status="Unknown", reason=UNKNOWN_REASON, message=UNKNOWN_MESSAGE,
                           lastTransitionTime=now)
    return conditions


def _managed(taint: Obj) -> bool:
    """A taint this controller owns (and may remove)."""
    key, effect = taint.get("key"), taint.get("effect")
    if effect == NO_SCHEDULE:
        return key == TAINT_UNSCHEDULABLE or key in CONDITION_TAINTS.values()
    return effect == NO_EXECUTE and key in (TAINT_NOT_READY, TAINT_UNREACHABLE)


def desired_taints(node: Obj, now: str, *, may_add_noexecute: bool = True,
                   keep_noexecute: bool = True) -> list[Obj]:
    """The node's taints as its conditions want them. Taints others set are kept in place;
    a taint already there is kept as it is (with its timeAdded); new ones are appended.

    NoExecute follows Ready (False: not-ready, Unknown: unreachable - one at a time, the
    other swapped at once); `may_add_noexecute` False (a disrupted zone) adds none where
    there was none, `keep_noexecute` False (every zone disrupted) removes them."""
    current = [t for t in (node.get("spec") or {}).get("taints") or [] if isinstance(t, dict)]
    wanted: list[tuple[str, str]] = []
    for c in (node.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict):
            taint = CONDITION_TAINTS.get((c.get("type", ""), c.get("status", "")))
            if taint is not None:
                wanted.append((taint, NO_SCHEDULE))
    if (node.get("spec") or {}).get("unschedulable"):
        wanted.append((TAINT_UNSCHEDULABLE, NO_SCHEDULE))
    noexecute = {"False": TAINT_NOT_READY, "Unknown": TAINT_UNREACHABLE}.get(
        ready_status(node) or "")
    had_noexecute = any(_managed(t) and t.get("effect") == NO_EXECUTE for t in current)
    if noexecute and keep_noexecute and (may_add_noexecute or had_noexecute):
        wanted.append((noexecute, NO_EXECUTE))
    present = {(t.get("key"), t.get("effect")) for t in current}
    kept = [t for t in current if not _managed(t) or (t.get("key"), t.get("effect")) in wanted]
    added = [{"key": k, "effect": e, "timeAdded": now} for k, e in dict.fromkeys(wanted)
             if (k, e) not in present]
    return kept + added


def noexecute_taints(node: Obj) -> list[Obj]:
    return [t for t in (node.get("spec") or {}).get("taints") or []
            if isinstance(t, dict) and t.get("effect") == NO_EXECUTE]


def zone_key(node: Obj) -> str:
    """The failure zone of a node (topology labels), "" when it has none."""
    labels = _meta(node).get("labels") or {}
    region = labels.get("topology.kubernetes.io/region") or labels.get(
        "failure-domain.beta.kubernetes.io/region", "")
    zone = labels.get("topology.kubernetes.io/zone") or labels.get(
        "failure-domain.beta.kubernetes.io/zone", "")
    return f"{region}:\x00:{zone}" if region or zone else ""


def zone_state(ready: Iterable[str | None]) -> str:
    """FullDisruption with no Ready node; PartialDisruption with more than 2 not ready and
    at least 55% of the zone; else Normal (ComputeZoneState)."""
    statuses = list(ready)
    not_ready = sum(1 for s in statuses if s != "True")
    if statuses and not_ready == len(statuses):
        return FULL
    if not_ready > 2 and not_ready / len(statuses) >= UNHEALTHY_ZONE_THRESHOLD:
        return PARTIAL
    return NORMAL


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """Toleration.ToleratesTaint over the API's objects."""
    return Toleration.from_obj(toleration).tolerates(Taint.from_obj(taint))


def effective_tolerations(pod: Obj, default_seconds: int) -> list[Obj]:
    """The pod's tolerations plus what DefaultTolerationSeconds admission would add: a
    not-ready and an unreachable NoExecute toleration unless the pod has its own."""
    own = [t for t in (pod.get("spec") or {}).get("tolerations") or [] if isinstance(t, dict)]
    added = []
    for key in (TAINT_NOT_READY, TAINT_UNREACHABLE):
        if not any(t.get("key") in (key, None, "") and t.get("effect") in (NO_EXECUTE, None, "")
                   for t in own):
            added.append({"key": key, "operator": "Exists", "effect": NO_EXECUTE,
                          "tolerationSeconds": default_seconds})
    return own + added


def eviction_delay(pod: Obj, taints: list[tuple[Obj, datetime]], *, default_seconds: int,
                   now: datetime) -> float | None:
    """Seconds until `pod` is to be evicted from a node with these NoExecute taints (each
    with the time it appeared), 0 for now, None for never.

    As the taint eviction controller: a taint no toleration matches evicts at once; each
    tolerated taint uses the first toleration matching it; a tolerationSeconds <= 0 evicts
    at once, none tolerates forever. Each taint's time counts from when it appeared, so a
    taint tolerated forever never shortens the time another one gives."""
    tolerations = effective_tolerations(pod, default_seconds)
    deadline: datetime | None = None
    for taint, since in taints:
        if taint.get("effect") != NO_EXECUTE:
            continue
        match = next((t for t in tolerations if tolerates(t, taint)), None)
        if match is None:
            return 0.0
        seconds = match.get("tolerationSeconds")
        if seconds is None:
            continue
        if seconds <= 0:
            return 0.0
        due = since.timestamp() + seconds
        if deadline is None or due < deadline.timestamp():
            deadline = datetime.fromtimestamp(due, UTC)
    if deadline is None:
        return None
    return max(0.0, deadline.timestamp() - now.timestamp())


def with_pod_condition(status: Obj, cond: Obj, now: str) -> Obj | None:
    """`status` with `cond` set (UpdatePodCondition: the transition time moves only when
    the status does), or None when nothing changes."""
    conditions = [dict(c) for c in status.get("conditions") or [] if isinstance(c, dict)]
    new = {**cond, "lastTransitionTime": now}
    for i, old in enumerate(conditions):
        if old.get("type") == cond.get("type"):
            if old.get("status") == new.get("status"):
                new["lastTransitionTime"] = old.get("lastTransitionTime")
            merged = {**old, **new}
            if merged == old:
                return None
            conditions[i] = merged
            break
    else:
        conditions.append(new)
    return {**status, "conditions": conditions}


def pod_not_ready(pod: Obj, now: str) -> Obj | None:
    """The pod's status with its Ready condition False (MarkPodsNotReady), or None when it
    has no Ready condition or it is False already."""
    status = pod.get("status") or {}
    ready = next((c for c in status.get("conditions") or []
                  if isinstance(c, dict) and c.get("type") == "Ready"), None)
    if ready is None:
        return None
    return with_pod_condition(status, {**ready, "status": "False"}, now)


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


# --- the loop ----------------------------------------------------------------------------

@dataclass
class _Health:
    probe: float  # monotonic time of the last sign of life
    heartbeat: Any  # the Ready condition's lastHeartbeatTime as last seen
    uid: str


@dataclass(frozen=True)
class _View:
    """What zone states need of a node, kept from watches so no reconcile decodes them all."""

    ready: str | None
    zone: str
    excluded: bool


def _view(node: Obj) -> _View:
    labels = _meta(node).get("labels") or {}
    return _View(ready_status(node), zone_key(node), EXCLUDE_DISRUPTION in labels)


def _node_ref(name: str, uid: str) -> Obj:
    return {"kind": "Node", "apiVersion": "v1", "metadata": {"name": name, "uid": uid}}


class NodeLifecycleController(Controller):
    """Keys: ("node", name) for health and taints, ("pod", namespace, name) for eviction."""

    name = "node-lifecycle"
    workers = 2

    def __init__(self, api: ObjectAPI, *, grace: float, startup_grace: float,
                 eviction_seconds: int, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(api)
        self.grace = grace
        self.startup_grace = startup_grace
        self.eviction_seconds = eviction_seconds
        self._clock = clock
        self.node_events = EventRecorder(api, "node-controller")
        self.pod_events = EventRecorder(api, "taint-eviction-controller")
        nodes = api.registry.by_path("", "v1", "nodes")
        pods = api.registry.by_path("", "v1", "pods")
        assert nodes is not None and pods is not None
        self._nodes_rt, self._pods_rt = nodes, pods
        self._health: dict[str, _Health] = {}
        self._leases: dict[str, tuple[Any, float]] = {}  # node -> (renewTime, seen at)
        self._views: dict[str, _View] = {}
        self._zone_states: dict[str, str] = {}
        self._all_disrupted = False
        self._tainted: dict[str, list[Obj]] = {}  # node -> its NoExecute taints
        self._taint_since: dict[tuple[str, Any, Any], datetime] = {}
        self._scheduled: set[tuple[str, str, str]] = set()  # pods with an eviction due
        self.watches = [Watch("nodes", self._node_changed),
                        Watch("leases.coordination.k8s.io", self._lease_changed),
                        Watch("pods", self._pod_changed)]

    # -- watches --------------------------------------------------------------------

    def initial_keys(self) -> Iterable[Hashable]:
        self._views.clear()
        keys: list[Hashable] = []
        for entry in self.store.list("nodes"):
            node = entry.obj()
            self._views[entry.name] = _view(node)
            self._track_taints(entry.name, noexecute_taints(node), initial=True)
            keys.append(("node", entry.name))
        self._zone_states = self._compute_zones()
        self._all_disrupted = _all_full(self._zone_states)
        keys += [("pod", e.namespace, e.name) for e in self.store.list("pods")
                 if e.fields.get("spec.nodeName") in self._tainted]
        return keys

    def _track_taints(self, name: str, taints: list[Obj], *, initial: bool) -> None:
        """Remember when each NoExecute taint appeared: now, as seen; after a restart, its
        timeAdded. (timeAdded has whole seconds only, and may be missing.)"""
        now = self.api.clock()
        current = set()
        for t in taints:
            key = (name, t.get("key"), t.get("effect"))
            current.add(key)
            if key not in self._taint_since:
                added = parse_time(t.get("timeAdded")) if initial else None
                self._taint_since[key] = added or now
        for key in [k for k in self._taint_since if k[0] == name and k not in current]:
            del self._taint_since[key]
        if taints:
            self._tainted[name] = taints
        else:
            self._tainted.pop(name, None)

    def _pods_on(self, node: str) -> list[Any]:
        return [e for e in self.store.list("pods") if e.fields.get("spec.nodeName") == node]

    def _node_changed(self, change: Change) -> set[Hashable]:
        name = change.entry.name
        keys: set[Hashable] = {("node", name)}
        before = _taint_ids(self._tainted.get(name, []))
        if change.type == "DELETED":
            self._views.pop(name, None)
            self._track_taints(name, [], initial=False)
        else:
            node = change.entry.obj()
            self._views[name] = _view(node)
            self._track_taints(name, noexecute_taints(node), initial=False)
        after = _taint_ids(self._tainted.get(name, []))
        if before != after:
            keys |= {("pod", e.namespace, e.name) for e in self._pods_on(name)}
        return keys

    def _lease_changed(self, change: Change) -> tuple[()]:
        """A renewed lease is a sign of life; noted at once, on this master's clock."""
        e = change.entry
        if e.namespace == NODE_LEASE_NAMESPACE and change.type != "DELETED":
            renew = (e.obj().get("spec") or {}).get("renewTime")
            seen = self._leases.get(e.name)
            if seen is None or seen[0] != renew:
                self._leases[e.name] = (renew, self._clock())
        return ()

    def _pod_changed(self, change: Change) -> tuple[Hashable, ...]:
        e, p = change.entry, change.prev
        key = ("pod", e.namespace, e.name)
        if change.type == "DELETED":
            self._scheduled.discard(key)
            return ()
        node = e.fields.get("spec.nodeName")
        if not node or node not in self._tainted:
            return ()
        if p is None or change.type == "ADDED" or p.fields.get("spec.nodeName") != node:
            return (key,)
        if key in self._scheduled and b'"deletionTimestamp"' in e.raw:
            return (key,)
        # Tolerations may be added to a running pod (only those, and their seconds).
        if _tolerations(e.raw) != _tolerations(p.raw):
            return (key,)
        return ()

    # -- reconcile ------------------------------------------------------------------

    async def reconcile(self, key: Hashable) -> float | None:
        assert isinstance(key, tuple)
        if key[0] == "node":
            await self._sync_node(key[1])
        else:
            await self._sync_pod(key[1], key[2])
        return None

    async def _sync_node(self, name: str) -> None:
        entry = self.store.latest("nodes", "", name)
        if entry is None:
            health = self._health.pop(name, None)
            self._leases.pop(name, None)
            self._views.pop(name, None)
            if health is not None:
                await self.node_events.record(
                    _node_ref(name, health.uid), "Normal", "RemovingNode",
                    f"Node {name} event: Removing Node {name} from Controller")
            self._check_disruption()
            return
        node = entry.obj()
        now, wall = self._clock(), rfc3339(self.api.clock())
        uid = _meta(node).get("uid", "")
        ready = condition(node, "Ready")
        heartbeat = ready.get("lastHeartbeatTime") if ready is not None else None
        health = self._health.get(name)
        if health is None or health.uid != uid:
            # First seen (or re-created): a fresh grace period, whatever the stored status
            # says - after a master restart no node has had a chance to renew yet.
            health = self._health[name] = _Health(now, heartbeat, uid)
            await self.node_events.record(_node_ref(name, uid), "Normal", "RegisteredNode",
                                          f"Node {name} event: Registered Node {name} in "
                                          "Controller")
        elif heartbeat != health.heartbeat:
            health.probe, health.heartbeat = now, heartbeat
        lease = self._leases.get(name)
        if lease is not None:
            health.probe = max(health.probe, lease[1])
        grace = self.grace if ready is not None else self.startup_grace
        observed = ready_status(node)
        if now - health.probe > grace:
            conditions = unknown_conditions(node, wall)
            if next(c for c in conditions if c["type"] == "Ready") != ready:
                node.setdefault("status", {})["conditions"] = conditions
                written = await self._write(Target(self._nodes_rt, "", name, "status"), node)
                if written is None:
                    return
                node = written
                self._views[name] = _view(node)
                log.warning("node stopped posting status", extra={
                    "node": name, "silent_seconds": round(now - health.probe, 1)})
                if observed == "True":
                    await self.node_events.record(_node_ref(name, name), "Normal",
                                                  "NodeNotReady",
                                                  f"Node {name} status is now: NodeNotReady")
                    await self._mark_pods_not_ready(name, wall)
        else:
            self.queue.add_after(("node", name), health.probe + grace - now)
        self._check_disruption()
        state = self._zone_states.get(zone_key(node), NORMAL)
        taints = desired_taints(node, wall, may_add_noexecute=state == NORMAL,
                                keep_noexecute=not self._all_disrupted)
        if taints != ((node.get("spec") or {}).get("taints") or []):
            spec = node.setdefault("spec", {})
            if taints:
                spec["taints"] = taints
            else:
                spec.pop("taints", None)
            log.info("node taints changed", extra={
                "node": name, "taints": [f"{t['key']}:{t['effect']}" for t in taints]})
            await self._write(Target(self._nodes_rt, "", name), node)

    def _compute_zones(self) -> dict[str, str]:
        zones: dict[str, list[str | None]] = {}
        for view in self._views.values():
            if not view.excluded:
                zones.setdefault(view.zone, []).append(view.ready)
        return {zone: zone_state(ready) for zone, ready in zones.items()}

    def _check_disruption(self) -> None:
        """Follow zone states (handleDisruption); nodes whose NoExecute taints depend on a
        state that changed get another look."""
        states = self._compute_zones()
        all_full = _all_full(states)
        if all_full != self._all_disrupted:
            if all_full:
                log.warning("no node is ready: the master is probably cut off; "
                            "not evicting anything")
            else:
                log.warning("nodes are ready again; evictions resume")
                # Everyone gets a fresh grace period, as after a master restart.
                now = self._clock()
                for health in self._health.values():
                    health.probe = now
            self._all_disrupted = all_full
            for name in self._views:
                self.queue.add(("node", name))
        else:
            changed = {z for z, s in states.items() if self._zone_states.get(z) != s}
            for name, view in self._views.items():
                if view.zone in changed:
                    self.queue.add(("node", name))
        self._zone_states = states

    async def _write(self, t: Target, obj: Obj) -> Obj | None:
        try:
            new, _ = await self.api.update(t, obj, WriteOptions(), self.identity)
            return new
        except NotFound:
            return None

    async def _mark_pods_not_ready(self, node: str, now: str) -> None:
        """Pods on a node that stopped reporting are not ready any more (MarkPodsNotReady),
        so Endpoints stop sending them traffic before any eviction."""
        async def mark(entry: Any) -> None:
            pod = entry.obj()
            status = pod_not_ready(pod, now)
            if status is None:
                return
            pod["status"] = status
            t = Target(self._pods_rt, entry.namespace, entry.name, "status")
            try:
                await self.api.update(t, pod, WriteOptions(), self.identity)
            except StatusError as err:
                if err.code != 404:
                    log.warning("could not mark a pod not ready", extra={
                        "pod": f"{entry.namespace}/{entry.name}", "error": err.message})
                return
            await self.node_events.record(pod, "Warning", "NodeNotReady", "Node is not ready")

        await asyncio.gather(*(mark(e) for e in self._pods_on(node)))

    async def _sync_pod(self, namespace: str, name: str) -> None:
        key = ("pod", namespace, name)
        entry = self.store.latest("pods", namespace, name)
        pod = entry.obj() if entry is not None else None
        node_name = ((pod or {}).get("spec") or {}).get("nodeName")
        node = self.store.latest("nodes", "", node_name) if node_name else None
        if pod is None or node is None or _meta(pod).get("deletionTimestamp"):
            self._scheduled.discard(key)
            return
        taints = [(t, self._taint_since.get((node_name, t.get("key"), t.get("effect")))
                   or self.api.clock()) for t in noexecute_taints(node.obj())]
        delay = eviction_delay(pod, taints, default_seconds=self.eviction_seconds,
                               now=self.api.clock())
        if delay is None:
            if key in self._scheduled:
                self._scheduled.discard(key)
                await self.pod_events.record(pod, "Normal", "TaintManagerEviction",
                                             f"Cancelling deletion of Pod {namespace}/{name}")
            return
        if delay > 0:
            self._scheduled.add(key)
            self.queue.add_after(key, delay)
            return
        await self._evict(key, pod)

    async def _evict(self, key: tuple[str, str, str], pod: Obj) -> None:
        _, namespace, name = key
        status = with_pod_condition(pod.get("status") or {}, {
            "type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint"},
            rfc3339(self.api.clock()))
        if status is not None:
            pod["status"] = status
            written = await self._write(Target(self._pods_rt, namespace, name, "status"), pod)
            if written is None:
                return
        log.info("evicting a pod from a tainted node", extra={
            "pod": f"{namespace}/{name}", "node": (pod.get("spec") or {}).get("nodeName")})
        try:
            await self.api.delete(Target(self._pods_rt, namespace, name),
                                  {"preconditions": {"uid": _meta(pod).get("uid")}},
                                  self.identity)
        except NotFound:
            return
        finally:
            self._scheduled.discard(key)
        await self.pod_events.record(pod, "Normal", "TaintManagerEviction",
                                     f"Marking for deletion Pod {namespace}/{name}")


def _all_full(states: dict[str, str]) -> bool:
    return bool(states) and all(s == FULL for s in states.values())


def _taint_ids(taints: list[Obj]) -> list[tuple[Any, Any, Any]]:
    return [(t.get("key"), t.get("value"), t.get("effect")) for t in taints]


def _tolerations(raw: bytes) -> Any:
    if b'"tolerations"' not in raw:
        return None
    return (orjson.loads(raw).get("spec") or {}).get("tolerations")
