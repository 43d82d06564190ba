"""One worker per pod: each pod's changes are handled strictly in order, pods in parallel.

As in kubelet's pod_workers: a worker holds only the newest desired state of its pod (an
older one is never worth acting on), syncs, and syncs again when the pod changes, when
the runtime reports an event for it, or when the sync asks to be called back (a back-off
expiring, a probe due). When a sync reports the pod fully gone, the worker ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Pod = dict[str, Any]


@dataclass(frozen=True)
class SyncResult:
    """What a sync wants next: be called again after `resync` seconds (None: only on
    change), or `done` (the pod is terminated and removed: end the worker)."""

    resync: float | None = None
    done: bool = False


# sync(uid, pod) where pod None means the API no longer has it.
Sync = Callable[[str, Pod | None], Awaitable[SyncResult]]


class _Worker:
    def __init__(self, uid: str, pod: Pod | None) -> None:
        self.uid = uid
        self.pod = pod
        self.wake = asyncio.Event()
        self.wake.set()
        self.task: asyncio.Task[None] | None = None


class PodWorkers:
    def __init__(self, sync: Sync, *, error_backoff: float = 2.0) -> None:
        self._sync = sync
        self._workers: dict[str, _Worker] = {}
        self._error_backoff = error_backoff

    def __len__(self) -> int:
        return len(self._workers)

    def update(self, uid: str, pod: Pod | None) -> None:
        """A new desired state (None: the pod left the API). Never blocks."""
        worker = self._workers.get(uid)
        if worker is None:
            worker = self._workers[uid] = _Worker(uid, pod)
            worker.task = asyncio.create_task(self._run(worker), name=f"pod-worker-{uid[:8]}")
        else:
            worker.pod = pod
            worker.wake.set()

    def poke(self, uid: str) -> None:
        """Something happened in the runtime for this pod: sync it soon."""
        worker = self._workers.get(uid)
        if worker is not None:
            worker.wake.set()

    def poke_all(self) -> None:
        for worker in self._workers.values():
            worker.wake.set()

    async def _run(self, worker: _Worker) -> None:
        resync: float | None = None
        try:
            while True:
                try:
                    await asyncio.wait_for(worker.wake.wait(), resync)
                except TimeoutError:
                    pass
                worker.wake.clear()
                try:
                    result = await self._sync(worker.uid, worker.pod)
                except asyncio.CancelledError:
                    raise
                except Exception:  # one pod's failure must not stop the others
                    log.exception("pod sync failed; retrying", extra={"pod_uid": worker.uid})
                    resync = self._error_backoff
                    continue
                if result.done and not worker.wake.is_set():
                    return
                resync = result.resync
        finally:
            if self._workers.get(worker.uid) is worker:
                del self._workers[worker.uid]

    async def stop(self) -> None:
        """Cancel every worker (the pods keep running: a restarted agent adopts them)."""
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers.clear()
