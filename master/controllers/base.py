"""What every in-process controller shares: a work queue of keys, the watches that fill it,
and one supervised loop that calls `reconcile(key)`.

Controllers run inside the master, so the store itself is their informer cache: they read
with `store.list/get` (committed state) and write through ObjectAPI with their own
identity, awaiting each write. Because a reconcile awaits its writes before it returns, the
next reconcile of the same key already sees them - no "expectations" bookkeeping as in
client-go is needed.

The queue gives the guarantees client-go's workqueue gives: a key queued many times is
reconciled once; one key is never reconciled by two workers at once (a key added while it is
being reconciled runs again afterwards); failures retry with per-key exponential back-off;
`add_after` schedules a later look (deadlines, grace periods) without polling.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bramble.kube.errors import StatusError

from ..api.auth import ADMIN_GROUP, Identity
from ..api.rest import ObjectAPI, Target, WriteOptions
from ..store import Change, Store

log = logging.getLogger(__name__)

Key = Hashable
Mapper = Callable[[Change], Iterable[Key]]

RETRY_BASE = 0.05
RETRY_MAX = 30.0


def controller_identity(name: str) -> Identity:
    return Identity(f"system:controller:{name}", (ADMIN_GROUP,))


class WorkQueue:
    """Deduplicating, per-key serialised queue with delayed adds and retry back-off."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._ready: list[Key] = []          # FIFO of keys ready to run
        self._queued: set[Key] = set()       # keys in _ready
        self._running: set[Key] = set()
        self._again: set[Key] = set()        # added while running: run once more after
        self._delayed: list[tuple[float, int, Key]] = []
        self._due: dict[Key, float] = {}     # the earliest delayed time of each key
        self._seq = itertools.count()
        self._failures: dict[Key, int] = {}
        self._wake = asyncio.Event()

    def __len__(self) -> int:
        return len(self._queued) + len(self._again)

    def add(self, key: Key) -> None:
        if key in self._running:
            self._again.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._ready.append(key)
            self._wake.set()

    def add_after(self, key: Key, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        when = self._clock() + delay
        if self._due.get(key, float("inf")) <= when:
            return  # an earlier look is already scheduled: one heap entry per key
        self._due[key] = when
        heapq.heappush(self._delayed, (when, next(self._seq), key))
        self._wake.set()

    def retry(self, key: Key) -> float:
        """Queue `key` again after its back-off; returns the delay."""
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        delay = min(RETRY_BASE * (2 ** n), RETRY_MAX)
        self.add_after(key, delay)
        return delay

    def forget(self, key: Key) -> None:
        """The key succeeded: its next failure starts the back-off again."""
        self._failures.pop(key, None)

    def _promote(self) -> float | None:
        """Move due delayed keys to ready; the seconds until the next one, if any."""
        now = self._clock()
        while self._delayed and self._delayed[0][0] <= now:
            when, _, key = heapq.heappop(self._delayed)
            if self._due.get(key) == when:
                del self._due[key]
            self.add(key)
        return self._delayed[0][0] - now if self._delayed else None

    async def get(self) -> Key:
        while True:
            wait = self._promote()
            if self._ready:
                key = self._ready.pop(0)
                self._queued.discard(key)
                self._running.add(key)
                return key
            self._wake.clear()
            try:
                # asyncio.timeout, not wait_for: in 3.11 wait_for can swallow a cancel
                # that arrives as the event fires, and the master's stop would hang.
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def done(self, key: Key) -> None:
        self._running.discard(key)
        if key in self._again:
            self._again.discard(key)
            self.add(key)


@dataclass
class Watch:
    """Changes of `resource` (qualified, e.g. "pods" or "apps/replicasets") become keys."""

    resource: str
    keys: Mapper


class Controller:
    """Subclasses set `name` and `watches`, and implement `initial_keys` and `reconcile`.

    `reconcile` returns None when done, or seconds after which to look again (a deadline);
    it raises to retry with back-off. Conflicts (409) are expected between writers and
    retried at once, without a warning.
    """

    name = "controller"
    workers = 1

    def __init__(self, api: ObjectAPI) -> None:
        self.api = api
        self.store: Store = api.store
        self.identity = controller_identity(self.name)
        self.queue = WorkQueue()
        self.watches: list[Watch] = []

    def initial_keys(self) -> Iterable[Key]:
        return ()

    async def reconcile(self, key: Key) -> float | None:
        raise NotImplementedError

    # -- helpers for subclasses -----------------------------------------------------

    def target(self, group: str, version: str, plural: str, namespace: str = "",
               name: str = "") -> Target:
        rt = self.api.registry.by_path(group, version, plural)
        assert rt is not None, f"unknown resource {group}/{version}/{plural}"
        return Target(rt, namespace, name)

    # -- the loop -------------------------------------------------------------------

    async def run(self) -> None:
        watchers = [(w, self.store.watch(w.resource, None, None, None)) for w in self.watches]
        relays = [asyncio.create_task(self._relay(w, watcher),
                                      name=f"{self.name}-watch-{w.resource}")
                  for w, watcher in watchers]
        for key in self.initial_keys():
            self.queue.add(key)
        workers = [asyncio.create_task(self._work(), name=f"{self.name}-worker-{i}")
                   for i in range(self.workers)]
        tasks = relays + workers
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # a relay or worker that ended is a bug: stop the master
            raise RuntimeError(f"{self.name}: a task ended")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for _, watcher in watchers:
                watcher.close()

    async def _relay(self, w: Watch, watcher: Any) -> None:
        while True:
            if watcher.closed_reason is not None:
                # Fell behind (or the hub closed it): subscribe again and look at everything.
                log.warning("controller watch closed; resyncing",
                            extra={"controller": self.name, "reason": watcher.closed_reason})
                watcher = self.store.watch(w.resource, None, None, None)
                for key in self.initial_keys():
                    self.queue.add(key)
            for _, change in await watcher.next_batch(None):
                for key in w.keys(change):
                    self.queue.add(key)

    async def _work(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                after = await self.reconcile(key)
            except StatusError as err:
                if err.code == 409:
                    self.queue.add_after(key, 0.01)
                else:
                    delay = self.queue.retry(key)
                    log.warning("reconcile failed", extra={
                        "controller": self.name, "key": str(key), "error": err.message,
                        "retry_in": delay})
            except asyncio.CancelledError:
                raise
            except Exception:
                delay = self.queue.retry(key)
                log.exception("reconcile crashed", extra={"controller": self.name,
                                                          "key": str(key), "retry_in": delay})
            else:
                self.queue.forget(key)
                if after is not None:
                    self.queue.add_after(key, after)
            finally:
                self.queue.done(key)


# --- keys from changes ----------------------------------------------------------------

def own_key(change: Change) -> Iterable[Key]:
    """The changed object's own (namespace, name)."""
    return ((change.entry.namespace, change.entry.name),)


def owner_keys(kind: str) -> Mapper:
    """(namespace, owner name) of each controller owner of `kind` the object had or has."""
    def keys(change: Change) -> Iterable[Key]:
        found = set()
        for entry in (change.entry, change.prev):
            if entry is None:
                continue
            for ref in entry.obj().get("metadata", {}).get("ownerReferences") or []:
                if ref.get("kind") == kind and ref.get("controller"):
                    found.add((entry.namespace, ref.get("name", "")))
        return found
    return keys


# --- events ---------------------------------------------------------------------------

def reference(obj: dict[str, Any]) -> dict[str, Any]:
    m = obj.get("metadata") or {}
    return {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""),
            "namespace": m.get("namespace", ""), "name": m.get("name", ""),
            "uid": m.get("uid", ""), "resourceVersion": m.get("resourceVersion", "")}


@dataclass
class EventRecorder:
    """Events from a master component, folded like the kubelet's: a repeat of (object,
    reason, message) bumps `count` on the same Event, written at most once per
    `min_interval` - an unschedulable pod retried every few seconds costs the SD card one
    write a minute, not one per retry. Events are advice: a failed write is logged only."""

    api: ObjectAPI
    component: str
    min_interval: float = 60.0
    _folded: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)

    async def record(self, obj: dict[str, Any], type_: str, reason: str,
                     message: str) -> None:
        ref = reference(obj)
        key = (ref["uid"], reason, message)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        ns = ref["namespace"] or "default"
        identity = controller_identity(self.component)
        folded = self._folded.get(key)
        try:
            if folded is not None:
                folded["count"] += 1
                folded["last"] = now
                if time.monotonic() - folded["written_at"] < self.min_interval:
                    return
                events = self.api.registry.by_path("", "v1", "events")
                assert events is not None
                t = Target(events, ns, folded["name"])
                current = self.api.store.get(t.resource, t.namespace, t.name)
                if current is not None:
                    event = current.obj()
                    event["count"] = folded["count"]
                    event["lastTimestamp"] = now
                    await self.api.update(t, event, WriteOptions(), identity)
                    folded["written_at"] = time.monotonic()
                    return
                del self._folded[key]  # removed meanwhile: start a new one
            events = self.api.registry.by_path("", "v1", "events")
            assert events is not None
            name = f"{ref['name']}.{secrets.token_hex(8)}"
            body = {"apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": name, "namespace": ns},
                    "involvedObject": ref, "reason": reason, "message": message,
                    "type": type_, "count": 1, "firstTimestamp": now, "lastTimestamp": now,
                    "source": {"component": self.component},
                    "reportingComponent": self.component}
            await self.api.create(Target(events, ns), body, WriteOptions(), identity)
            self._folded[key] = {"name": name, "count": 1, "last": now,
                                 "written_at": time.monotonic()}
            if len(self._folded) > 10_000:  # bounded memory: forget the oldest half
                for old in list(self._folded)[:5_000]:
                    del self._folded[old]
        except StatusError as err:
            log.info("could not record an event", extra={"component": self.component,
                                                         "reason": reason,
                                                         "error": err.message})
