"""The master's object store: live state in memory, durable through a backend, watchable.

Reads are served from memory and see only *committed* (durable) state. A write is staged
synchronously - checked against the latest state including other staged writes, given the
next resourceVersion - and acknowledged when its batch is durable. Writes staged while a
commit is in flight share the next commit (group commit), so 16 concurrent clients cost
one fsync, not 16.

Because staging is synchronous on the event loop, a caller that reads `latest()`, computes
a new object and stages it without awaiting in between performs an atomic
read-modify-write: nothing can interleave.

Invariants:
- resourceVersions increase strictly, across restarts too (the backend keeps a ceiling).
- A change is published to watchers only after it is durable, in resourceVersion order.
- Volatile resources (node heartbeats) are never written to disk; their resourceVersions
  come from a block reserved on disk, so the ceiling is written once per many heartbeats.
- If the backend fails, the store stops accepting writes and the committer task fails:
  the daemon's supervisor then stops the process (systemd restarts it; disk is the truth).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from bramble.kube.errors import ServiceUnavailable

from .backend import Backend, Op
from .entry import Entry
from .watch import ADDED, DELETED, MODIFIED, Change, Predicate, Watcher, WatchHub

log = logging.getLogger(__name__)

# Returns (labels, selectable fields) of an object of a resource.
Indexer = Callable[[str, dict[str, Any]], tuple[dict[str, str], dict[str, str]]]

# How many resourceVersions one on-disk reservation covers for volatile writes.
RV_RESERVATION = 10_000


class StoreError(Exception):
    pass


class KeyExists(StoreError):
    pass


class KeyNotFound(StoreError):
    pass


class VersionConflict(StoreError):
    def __init__(self, current: int) -> None:
        super().__init__(current)
        self.current = current


@dataclass(slots=True)
class _Staged:
    op: Op
    change: Change
    future: asyncio.Future[Entry]


_Key = tuple[str, str]  # (namespace, name)


class Store:
    def __init__(self, backend: Backend, indexer: Indexer, *,
                 volatile: frozenset[str] = frozenset(), history: int = 10_000,
                 on_commit: Callable[[float, int, int], None] | None = None) -> None:
        self._backend = backend
        self._index = indexer
        self._volatile = volatile
        self.hub = WatchHub(history)
        self._on_commit = on_commit
        self._data: dict[str, dict[_Key, Entry]] = {}
        self._overlay: dict[tuple[str, str, str], Entry | None] = {}
        self._staged: list[_Staged] = []
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._rv = 0  # committed
        self._next_rv = 0  # last handed out
        self._ceiling = 0  # highest rv covered on disk
        self._failed: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        loaded = await self._backend.open()
        top = int(loaded.meta.get("rv", 0))
        for resource, key, rv, raw in loaded.objects:
            namespace, _, name = key.rpartition("/")
            labels, fields = self._index(resource, orjson.loads(raw))
            self._data.setdefault(resource, {})[(namespace, name)] = Entry(
                resource, namespace, name, rv, raw, labels, fields)
            top = max(top, rv)
        self._rv = self._next_rv = self._ceiling = top
        # History starts now: a watch from before this start must list again.
        self.hub.floor = top
        log.info("store opened", extra={"objects": len(loaded.objects), "rv": top,
                                        "seconds": round(loaded.seconds, 3)})

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self._committer(), name="store-committer")
        return self._task

    async def close(self) -> None:
        """Finish staged writes, then stop. Idempotent."""
        if self._task is not None and not self._task.done() and self._failed is None:
            await self._idle.wait()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        self.hub.close_all("store closed")
        await self._backend.close()

    # -- reads (committed state) ----------------------------------------------------

    @property
    def rv(self) -> int:
        return self._rv

    def get(self, resource: str, namespace: str, name: str) -> Entry | None:
        return self._data.get(resource, {}).get((namespace, name))

    def list(self, resource: str, namespace: str | None = None) -> list[Entry]:
        """Entries sorted by (namespace, name), like etcd's key order."""
        table = self._data.get(resource, {})
        if namespace is None:
            keys = sorted(table)
        else:
            keys = sorted(k for k in table if k[0] == namespace)
        return [table[k] for k in keys]

    def count(self, resource: str) -> int:
        return len(self._data.get(resource, {}))

    def watch(self, resource: str, namespace: str | None, predicate: Predicate | None,
              since: int | None) -> Watcher:
        return self.hub.subscribe(resource, namespace, predicate, since)

    # -- writes ---------------------------------------------------------------------

    def latest(self, resource: str, namespace: str, name: str) -> Entry | None:
        """The newest state including staged writes: the base for read-modify-write."""
        key = (resource, namespace, name)
        if key in self._overlay:
            return self._overlay[key]
        return self.get(resource, namespace, name)

    def create(self, resource: str, namespace: str, name: str,
               obj: dict[str, Any]) -> Awaitable[Entry]:
        if self.latest(resource, namespace, name) is not None:
            raise KeyExists(name)
        return self._stage(resource, namespace, name, obj, None, ADDED)

    def update(self, resource: str, namespace: str, name: str, obj: dict[str, Any],
               expect_rv: int | None = None) -> Awaitable[Entry]:
        current = self.latest(resource, namespace, name)
        if current is None:
            raise KeyNotFound(name)
        if expect_rv is not None and expect_rv != current.rv:
            raise VersionConflict(current.rv)
        return self._stage(resource, namespace, name, obj, current, MODIFIED)

    def delete(self, resource: str, namespace: str, name: str, expect_rv: int | None = None,
               final: dict[str, Any] | None = None) -> Awaitable[Entry]:
        """Remove an object; watchers see `final` (default: the object as it was)."""
        current = self.latest(resource, namespace, name)
        if current is None:
            raise KeyNotFound(name)
        if expect_rv is not None and expect_rv != current.rv:
            raise VersionConflict(current.rv)
        return self._stage(resource, namespace, name, final or current.obj(), current, DELETED)

    def _stage(self, resource: str, namespace: str, name: str, obj: dict[str, Any],
               prev: Entry | None, kind: str) -> Awaitable[Entry]:
        if self._failed is not None:
            raise ServiceUnavailable("the store is failing; the master is restarting")
        self._next_rv += 1
        rv = self._next_rv
        obj.setdefault("metadata", {})["resourceVersion"] = str(rv)
        raw = orjson.dumps(obj)
        labels, fields = self._index(resource, obj)
        entry = Entry(resource, namespace, name, rv, raw, labels, fields)
        key = f"{namespace}/{name}" if namespace else name
        op = Op(resource, key, rv, None if kind == DELETED else raw)
        change = Change(kind, entry, prev)
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        self._overlay[(resource, namespace, name)] = None if kind == DELETED else entry
        self._staged.append(_Staged(op, change, future))
        self._idle.clear()
        self._wakeup.set()
        return future

    async def _committer(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._staged:
                batch, self._staged = self._staged, []
                try:
                    await self._commit(batch)
                except BaseException as err:
                    self._fail(batch, err)
                    raise
            if not self._staged:
                self._idle.set()

    async def _commit(self, batch: list[_Staged]) -> None:
        durable = [s.op for s in batch if s.op.resource not in self._volatile]
        top = batch[-1].op.rv
        if durable or top > self._ceiling:
            ceiling = top if durable and top >= self._ceiling else max(
                self._ceiling, top + RV_RESERVATION)
            started = time.monotonic()
            written = await self._backend.commit(durable, {"rv": ceiling})
            self._ceiling = ceiling
            if self._on_commit is not None:
                self._on_commit(time.monotonic() - started, written, len(durable))
        for staged in batch:
            change, entry = staged.change, staged.change.entry
            table = self._data.setdefault(entry.resource, {})
            key3 = (entry.resource, entry.namespace, entry.name)
            live = None if change.type == DELETED else entry
            if live is None:
                table.pop((entry.namespace, entry.name), None)
            else:
                table[(entry.namespace, entry.name)] = live
            # Drop the overlay only if no later staged write has replaced it.
            # (For a deletion the overlay holds None; if later writes re-created the
            # object it holds their entry instead, so identity tells the two apart.)
            if key3 in self._overlay and self._overlay[key3] is live:
                del self._overlay[key3]
            self._rv = entry.rv
            self.hub.publish(change)
            if not staged.future.done():
                staged.future.set_result(entry)

    def _fail(self, batch: list[_Staged], err: BaseException) -> None:
        self._failed = err
        log.critical("store commit failed; refusing further writes", exc_info=err)
        failure = ServiceUnavailable(f"the store could not write: {err}")
        for staged in batch + self._staged:
            if not staged.future.done():
                staged.future.set_exception(failure)
        self._staged = []
        self._overlay.clear()
        self._idle.set()
