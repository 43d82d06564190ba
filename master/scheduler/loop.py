"""The scheduler loop: watch pods and nodes, decide, bind, report, retry.

A `Controller` whose keys are pending pods. Its watch mappers also keep the `Snapshot` in
step with every pod and node change, so a decision reads per-node sums instead of
listing pods. A reconcile decides synchronously, counts the pod on the chosen node at
once ("assumes" it, as kube-scheduler's cache does) and only then awaits the binding:
decisions never interleave, and the next pod already sees the previous one placed even
before its binding is durable. Several workers bind at the same time, so their bindings
(and Events) share the store's group commit instead of paying one fsync each.

A pod that fits nowhere gets PodScheduled=False (reason Unschedulable, kube-scheduler's
message) and a FailedScheduling Event, and waits. It is tried again (see `retry`):
- when the pod itself changes;
- after a cluster change that could make room (a node added, or changed in labels, taints,
  cordon, readiness or allocatable; a bound pod deleted or finished), but not before its
  back-off (1 s doubling to 10 s by default) has passed since its last attempt;
- every `flush` seconds (5 min) regardless, as kube-scheduler does.
Nothing polls: the waits are WorkQueue timers, at most one outstanding per pod. An
unchanged failure writes no condition, and its Event is folded by the EventRecorder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from bramble.kube.errors import StatusError

from ..api.rest import ObjectAPI, Target, WriteOptions, rfc3339
from ..controllers.base import Controller, EventRecorder, Key, Watch
from ..store import DELETED, Change, Entry
from .retry import Backoff, Waiting
from .schedule import (
    GATED_MESSAGE,
    SCHEDULER_NAME,
    SCHEDULING_GATED,
    UNSCHEDULABLE,
    Placement,
    gated,
    responsible,
    schedule,
    scheduled_message,
    unscheduled_conditions,
)
from .snapshot import TERMINAL_PHASES, PodInfo, Snapshot, node_facts, pod_info

log = logging.getLogger(__name__)

NORMAL, WARNING = "Normal", "Warning"


class Scheduler(Controller):
    name = "scheduler"

    def __init__(self, api: ObjectAPI, *, workers: int = 32, backoff_initial: float = 1.0,
                 backoff_max: float = 10.0, flush: float = 300.0) -> None:
        super().__init__(api)
        self.workers = workers
        self.backoff = Backoff(backoff_initial, backoff_max, flush)
        self.snapshot = Snapshot()
        self.events = EventRecorder(api, SCHEDULER_NAME)
        rt = api.registry.by_path("", "v1", "pods")
        assert rt is not None
        self._pods = rt
        self._clock = time.monotonic
        self._waiting: dict[Key, Waiting] = {}
        self.watches = [Watch("nodes", self._node_changed), Watch("pods", self._pod_changed)]

    # -- keeping the snapshot (watch mappers; they run for every change) ----------------

    def initial_keys(self) -> Iterable[Key]:
        """Rebuild the snapshot from the store (at start and after a watch resync) and
        return every pending pod. Called with no await since the watches subscribed."""
        assumed = self.snapshot.assumed()
        snap = Snapshot()
        for entry in self.store.list("nodes"):
            snap.set_node(entry.name, node_facts(entry.obj()))
        pending = []
        for entry in self.store.list("pods"):
            key = (entry.namespace, entry.name)
            fields = entry.fields
            if fields.get("status.phase") in TERMINAL_PHASES:
                continue
            node = fields.get("spec.nodeName")
            if node:
                snap.place(key, pod_info(entry.obj()), node)
            elif fields.get("spec.schedulerName") in ("", SCHEDULER_NAME):
                pending.append(key)
                if key in assumed:  # its binding is still in flight
                    node, info = assumed[key]
                    snap.place(key, info, node, assumed=True)
        self.snapshot = snap
        self._cluster_changed()
        return pending

    def _node_changed(self, change: Change) -> Iterable[Key]:
        name = change.entry.name
        if change.type == DELETED:
            self.snapshot.remove_node(name)
        elif self.snapshot.set_node(name, node_facts(change.entry.obj())):
            self._cluster_changed()
        return ()

    def _pod_changed(self, change: Change) -> Iterable[Key]:
        entry = change.entry
        key = (entry.namespace, entry.name)
        if change.type == DELETED:
            self._waiting.pop(key, None)
            if self.snapshot.remove(key):
                self._cluster_changed()
            return ()
        fields = entry.fields
        terminal = fields.get("status.phase") in TERMINAL_PHASES
        node = fields.get("spec.nodeName")
        if node:
            self._waiting.pop(key, None)
            if terminal:
                if self.snapshot.remove(key):
                    self._cluster_changed()
            elif not self.snapshot.confirm(key, node):
                # Bound by someone else, or seen for the first time: count it. (Its
                # requests never change, so later updates of a counted pod cost nothing.)
                self.snapshot.place(key, pod_info(entry.obj()), node)
            return ()
        if terminal or fields.get("spec.schedulerName") not in ("", SCHEDULER_NAME):
            return ()
        return (key,)

    # -- retry timing (see retry.py) ----------------------------------------------------

    def _arm(self, key: Key, w: Waiting, now: float) -> None:
        due = w.arm(self.backoff)
        if due is not None:
            self.queue.add_after(key, due - now)

    def _cluster_changed(self) -> None:
        """Something that could make room happened: every waiting pod is due once its
        back-off has passed."""
        now = self._clock()
        for key, w in self._waiting.items():
            w.moved = True
            self._arm(key, w, now)

    # -- reconcile ----------------------------------------------------------------------

    async def reconcile(self, key: Key) -> float | None:
        namespace, name = key  # type: ignore[misc]
        entry = self.store.get("pods", namespace, name)
        if entry is None or entry.fields.get("spec.nodeName"):
            self._waiting.pop(key, None)
            return None
        now = self._clock()
        waiting = self._waiting.get(key)
        if waiting is not None and not waiting.due(entry.rv, now, self.backoff):
            self._arm(key, waiting, now)
            return None
        pod = entry.obj()
        if not responsible(pod):
            self._waiting.pop(key, None)
            return None
        if gated(pod):
            # Not tried until its gates are removed - an update of the pod itself.
            self._waiting.pop(key, None)
            await self._set_condition(entry, pod, SCHEDULING_GATED, GATED_MESSAGE)
            return None
        info = pod_info(pod)
        decision = schedule(info, self.snapshot.schedulable())
        if isinstance(decision, Placement):
            await self._bind(key, pod, info, decision.node)
            return None
        rv = await self._set_condition(entry, pod, UNSCHEDULABLE, decision.message)
        waiting = self._waiting.setdefault(key, Waiting())
        waiting.failed(now, rv)
        self._arm(key, waiting, now)
        log.debug("pod unschedulable", extra={"pod": f"{namespace}/{name}",
                                              "message": decision.message})
        await self.events.record(pod, WARNING, "FailedScheduling", decision.message)
        return None

    async def _bind(self, key: Key, pod: dict[str, Any], info: PodInfo,
                    node: str) -> None:
        namespace, name = key  # type: ignore[misc]
        # Counted before the first await: the next decision sees this pod on `node`.
        self.snapshot.place(key, info, node, assumed=True)
        binding = {"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": name, "namespace": namespace},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        try:
            await self.api.bind(Target(self._pods, namespace, name, "binding"), binding,
                                self.identity)
        except StatusError as err:
            self.snapshot.forget_assumed(key, node)
            if err.code in (404, 409):
                # Deleted, being deleted, or bound meanwhile: its watch changes follow.
                log.info("binding refused", extra={"pod": f"{namespace}/{name}",
                                                   "node": node, "error": err.message})
                return
            raise
        except BaseException:
            self.snapshot.forget_assumed(key, node)
            raise
        self._waiting.pop(key, None)
        log.debug("pod bound", extra={"pod": f"{namespace}/{name}", "node": node})
        await self.events.record(pod, NORMAL, "Scheduled",
                                 scheduled_message(namespace, name, node))

    async def _set_condition(self, entry: Entry, pod: dict[str, Any], reason: str,
                             message: str) -> int:
        """Write PodScheduled=False unless it already says this; the pod's rv after."""
        status = pod.setdefault("status", {})
        conditions = unscheduled_conditions(status.get("conditions"), reason, message,
                                            rfc3339(self.api.clock()))
        if conditions is None:
            return entry.rv
        status["conditions"] = conditions
        target = Target(self._pods, entry.namespace, entry.name, "status")
        written, _ = await self.api.update(target, pod, WriteOptions(), self.identity)
        return int(written["metadata"]["resourceVersion"])
