"""Pod garbage collection: pods nobody else will ever remove.

As Kubernetes' pod GC controller (pkg/controller/podgc):
- orphaned: pods bound to a node that does not exist are force-deleted (marked Failed with
  a DisruptionTarget condition "PodGC: node no longer exists" first), once the node has
  been missing for a quarantine period - a node agent re-registering its Node, or a pod
  created for a node that is about to join, must not lose its pods. The store is
  authoritative, so "missing" is never "not seen yet".
- terminated: beyond `threshold` pods in phase Succeeded or Failed, the surplus is deleted,
  evicted pods first, then oldest first (0 keeps them all).
- out of service: terminating pods on a node that is not ready and carries the
  node.kubernetes.io/out-of-service taint (an operator's statement that it is down for
  good) are force-deleted.

Terminating pods on a node that is merely unreachable are left alone: they go when their
node agent comes back and confirms, or when the node is deleted. Workload controllers do
not count them, so replacements do not wait for this.

Everything waits on deadlines on the work queue, never on a poll. `terminated_surplus`
and `gc_order` decide; `PodGarbageCollector` reads and writes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from bramble.kube.errors import NotFound

from ..api.rest import ObjectAPI, Target, WriteOptions, rfc3339
from ..store import Change, Entry
from .base import Controller, Watch
from .nodelifecycle import TAINT_OUT_OF_SERVICE, ready_status, with_pod_condition

log = logging.getLogger(__name__)

Obj = dict[str, Any]
TERMINAL = ("Succeeded", "Failed")
TERMINATED = ("terminated",)  # the one key of the threshold check
_OUT_OF_SERVICE = TAINT_OUT_OF_SERVICE.encode()
_MARKED = b'"deletionTimestamp"'


def evicted(pod: Obj) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Failed" and status.get("reason") == "Evicted"


def gc_order(pod: Obj) -> tuple[bool, str, str]:
    """byEvictionAndCreationTimestamp: evicted pods first, then the oldest, then by name."""
    m = pod.get("metadata") or {}
    return (not evicted(pod), m.get("creationTimestamp") or "", m.get("name") or "")


def terminated_surplus(pods: Iterable[Obj], threshold: int) -> list[Obj]:
    """The terminated pods to delete so that at most `threshold` remain."""
    done = [p for p in pods if (p.get("status") or {}).get("phase") in TERMINAL]
    surplus = len(done) - threshold
    if threshold <= 0 or surplus <= 0:
        return []
    return sorted(done, key=gc_order)[:surplus]


class PodGarbageCollector(Controller):
    """Keys: ("node", name) for orphaned and out-of-service pods, TERMINATED."""

    name = "pod-garbage-collector"

    def __init__(self, api: ObjectAPI, *, terminated_threshold: int, quarantine: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(api)
        self.threshold = terminated_threshold
        self.quarantine = quarantine
        self._clock = clock
        self._missing: dict[str, float] = {}  # node name -> when first found missing
        pods = api.registry.by_path("", "v1", "pods")
        assert pods is not None
        self._pods_rt = pods
        self.watches = [Watch("nodes", self._node_changed), Watch("pods", self._pod_changed)]

    def initial_keys(self) -> Iterable[Hashable]:
        nodes = {e.name for e in self.store.list("nodes")}
        wanted = {e.fields.get("spec.nodeName") for e in self.store.list("pods")}
        keys: list[Hashable] = [("node", n) for n in sorted(n for n in wanted if n)
                                if n not in nodes]
        keys += [("node", n) for n in nodes]
        keys.append(TERMINATED)
        return keys

    def _node_changed(self, change: Change) -> tuple[Hashable, ...]:
        e = change.entry
        if change.type == "MODIFIED" and _OUT_OF_SERVICE not in e.raw:
            return ()
        return (("node", e.name),)

    def _pod_changed(self, change: Change) -> set[Hashable]:
        e, p = change.entry, change.prev
        keys: set[Hashable] = set()
        if change.type == "DELETED":
            return keys
        node = e.fields.get("spec.nodeName")
        if node:
            found = self.store.latest("nodes", "", node)
            if found is None or (_OUT_OF_SERVICE in found.raw and _MARKED in e.raw):
                keys.add(("node", node))
        phase = e.fields.get("status.phase")
        if self.threshold > 0 and phase in TERMINAL and (
                p is None or p.fields.get("status.phase") not in TERMINAL):
            keys.add(TERMINATED)
        return keys

    async def reconcile(self, key: Hashable) -> float | None:
        if key == TERMINATED:
            await self._sync_terminated()
        else:
            assert isinstance(key, tuple)
            await self._sync_node(key[1])
        return None

    def _pods_on(self, node: str) -> list[Entry]:
        return [e for e in self.store.list("pods") if e.fields.get("spec.nodeName") == node]

    async def _sync_node(self, name: str) -> None:
        entry = self.store.latest("nodes", "", name)
        if entry is not None:
            self._missing.pop(name, None)
            if _OUT_OF_SERVICE in entry.raw:
                await self._out_of_service(name, entry.obj())
            return
        now = self._clock()
        since = self._missing.setdefault(name, now)
        left = since + self.quarantine - now
        if left > 0:
            self.queue.add_after(("node", name), left)
            return
        pods = self._pods_on(name)
        if pods:
            log.info("deleting the pods of a node that no longer exists",
                     extra={"node": name, "pods": len(pods)})
        await asyncio.gather(*(self._force_delete(e.obj(), {
            "type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
            "message": "PodGC: node no longer exists"}) for e in pods))
        self._missing.pop(name, None)

    async def _out_of_service(self, name: str, node: Obj) -> None:
        taints = (node.get("spec") or {}).get("taints") or []
        if ready_status(node) == "True" or not any(
                isinstance(t, dict) and t.get("key") == TAINT_OUT_OF_SERVICE for t in taints):
            return
        terminating = [e.obj() for e in self._pods_on(name) if _MARKED in e.raw]
        pods = [p for p in terminating if (p.get("metadata") or {}).get("deletionTimestamp")]
        if pods:
            log.info("deleting terminating pods of an out-of-service node",
                     extra={"node": name, "pods": len(pods)})
        await asyncio.gather(*(self._force_delete(p, None) for p in pods))

    async def _sync_terminated(self) -> None:
        if self.threshold <= 0:
            return
        done = [e for e in self.store.list("pods") if e.fields.get("status.phase") in TERMINAL]
        if len(done) <= self.threshold:
            return
        surplus = terminated_surplus((e.obj() for e in done), self.threshold)
        log.info("deleting terminated pods beyond the threshold",
                 extra={"pods": len(surplus), "threshold": self.threshold})
        await asyncio.gather(*(self._force_delete(p, None) for p in surplus))

    async def _force_delete(self, pod: Obj, cond: Obj | None) -> None:
        """markFailedAndDeletePod: a pod no agent will ever report on is Failed first, then
        deleted without a grace period."""
        m = pod.get("metadata") or {}
        namespace, name = m.get("namespace", ""), m.get("name", "")
        status = dict(pod.get("status") or {})
        if status.get("phase") not in TERMINAL:
            status["phase"] = "Failed"
            if cond is not None:
                status = with_pod_condition(status, cond, rfc3339(self.api.clock())) or status
            pod["status"] = status
            try:
                await self.api.update(Target(self._pods_rt, namespace, name, "status"), pod,
                                      WriteOptions(), self.identity)
            except NotFound:
                return
        try:
            await self.api.delete(Target(self._pods_rt, namespace, name),
                                  {"gracePeriodSeconds": 0,
                                   "preconditions": {"uid": m.get("uid")}}, self.identity)
        except NotFound:
            pass
