"""The live cluster view: computed once, shared by every open page.

One task per watched resource turns store changes into a "dirty" flag; the publisher
recomputes the view (view.build, pure) at most every COALESCE seconds while pages are
open, encodes it once and wakes every event stream. A refresher task samples the nodes'
usage into the history every REFRESH seconds and marks the view dirty too (usage and
join requests are not store objects). With no page open nothing is computed: the next
reader computes on demand.

Invariants: every task is named and owned (started and cancelled by `lifecycle`);
subscribers never miss the newest view (they take the wake-up event before reading);
on shutdown every stream is woken and sees `stopping`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bramble.kube.quantity import to_int, to_milli

from ..api.nodeapi import UsageCache
from ..store import Store
from . import view
from .actions import Approver
from .history import UsageHistory

log = logging.getLogger(__name__)

COALESCE = 0.5
REFRESH = 10.0
# The watched resources, and the Snapshot field each one's objects go to.
_LISTS = {"nodes": "nodes", "pods": "pods", "services": "services", "events": "events",
          "deployments.apps": "deployments", "daemonsets.apps": "daemonsets",
          "replicasets.apps": "replicasets", "replicationcontrollers": "replicationcontrollers",
          "jobs.batch": "jobs"}
WATCHED = tuple(_LISTS)


def parse_usage(usage: dict[str, str]) -> view.Usage | None:
    try:
        return view.Usage(to_milli(usage["cpu"]), to_int(usage["memory"]))
    except (KeyError, ValueError):
        return None


class LiveView:
    def __init__(self, store: Store, usage: UsageCache, approver: Approver | None,
                 cluster: dict[str, Any], history: UsageHistory | None = None,
                 coalesce: float = COALESCE, refresh: float = REFRESH,
                 wall: Callable[[], datetime] = lambda: datetime.now(UTC),
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.usage = usage
        self.approver = approver
        self.cluster = cluster
        self.history = history or UsageHistory()
        self.coalesce = coalesce
        self.refresh = refresh
        self.wall = wall
        self.clock = clock
        self.viewers = 0
        self.stopping = False
        self._encoded: bytes | None = None  # None: stale
        self._dirty = asyncio.Event()
        self._next = asyncio.Event()  # set (and replaced) on every publish
        self._tasks: list[asyncio.Task[None]] = []
        self._computing = asyncio.Lock()

    # -- readers -------------------------------------------------------------------------

    @property
    def next_change(self) -> asyncio.Event:
        """Set when a newer view is published (or the master stops). Take it before
        reading `current()` so nothing published in between is missed."""
        return self._next

    async def current(self) -> bytes:
        # One computation however many pages (re)connect at once, e.g. after a restart.
        async with self._computing:
            if self._encoded is None:
                self._encoded = await self._compute()
            return self._encoded

    def invalidate(self) -> None:
        """Something changed outside the store (an approval): recompute soon."""
        self._encoded = None
        self._dirty.set()

    # -- computing -----------------------------------------------------------------------

    async def snapshot(self) -> view.Snapshot:
        lists = {field: [e.obj() for e in self.store.list(resource)]
                 for resource, field in _LISTS.items()}
        usage = {}
        for report in self.usage.reports():
            parsed = parse_usage(report.usage)
            if parsed is not None:
                usage[report.node] = parsed
        pending = await self.approver.pending() if self.approver is not None else []
        return view.Snapshot(now=self.wall(), usage=usage, pending=pending,
                             history=self.history.of, cluster=self.cluster, **lists)

    async def _compute(self) -> bytes:
        return view.encode(view.build(await self.snapshot()))

    async def _publish(self) -> None:
        async with self._computing:
            self._encoded = await self._compute()
        woken, self._next = self._next, asyncio.Event()
        woken.set()

    def sample(self) -> None:
        """Record each reporting node's usage in the history (percent of allocatable)."""
        nodes = {e.name: e.obj() for e in self.store.list("nodes")}
        now = self.clock()
        for report in self.usage.reports():
            node, parsed = nodes.get(report.node), parse_usage(report.usage)
            if node is None or parsed is None:
                continue
            cpu, memory = view.node_usage(node, parsed)
            if cpu is not None and memory is not None:
                self.history.record(report.node, cpu["percent"], memory["percent"], now)
        self.history.forget_except(nodes)

    # -- tasks ---------------------------------------------------------------------------

    async def _watch(self, resource: str) -> None:
        while True:
            watcher = self.store.watch(resource, None, None, None)
            try:
                while watcher.closed_reason is None:
                    if await watcher.next_batch(None):
                        self.invalidate()
            finally:
                watcher.close()
            # The hub ended the watch (the master is stopping, or we fell behind): the
            # view may have missed a change, so recompute, then watch again.
            self.invalidate()
            await asyncio.sleep(1.0)

    async def _publisher(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if self.viewers:
                await self._publish()
            else:
                self._encoded = None
            await asyncio.sleep(self.coalesce)

    async def _refresher(self) -> None:
        while True:
            self.sample()
            self.invalidate()
            await asyncio.sleep(self.refresh)

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """cleanup_ctx: start the tasks; cancel and await them at the end."""
        self._tasks = [asyncio.create_task(self._watch(r), name=f"web-watch-{r}")
                       for r in WATCHED]
        self._tasks.append(asyncio.create_task(self._publisher(), name="web-view-publisher"))
        self._tasks.append(asyncio.create_task(self._refresher(), name="web-usage-sampler"))
        try:
            yield
        finally:
            for task in self._tasks:
                task.cancel()
            results = await asyncio.gather(*self._tasks, return_exceptions=True)
            for task, result in zip(self._tasks, results, strict=True):
                if isinstance(result, Exception):
                    log.error("status page task failed", exc_info=result,
                              extra={"task": task.get_name()})
            self._tasks = []

    async def stop_streams(self, app: web.Application | None = None) -> None:
        """on_shutdown: wake every event stream so it ends."""
        self.stopping = True
        self._next.set()
