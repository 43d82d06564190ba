"""Pod workers: per-pod order, newest state wins, failures stay with their pod."""

from __future__ import annotations

import asyncio

from bramble.node.workers import PodWorkers, SyncResult


async def test_each_pod_is_synced_in_order_and_newest_state_wins() -> None:
    seen: list[tuple[str, int | None]] = []
    gate = asyncio.Event()

    async def sync(uid: str, pod: dict | None) -> SyncResult:
        seen.append((uid, pod["v"] if pod else None))
        if uid == "a" and pod and pod["v"] == 1:
            await gate.wait()  # a slow first sync of pod a
        return SyncResult()

    workers = PodWorkers(sync)
    workers.update("a", {"v": 1})
    workers.update("b", {"v": 1})
    await asyncio.sleep(0.01)
    # While a's first sync runs, three newer versions arrive: only the newest is synced.
    for v in (2, 3, 4):
        workers.update("a", {"v": v})
    await asyncio.sleep(0.01)
    assert ("b", 1) in seen  # b was not held up by a
    gate.set()
    await asyncio.sleep(0.05)
    assert [s for s in seen if s[0] == "a"] == [("a", 1), ("a", 4)]
    await workers.stop()


async def test_done_ends_the_worker_and_errors_retry() -> None:
    calls = {"n": 0}

    async def sync(uid: str, pod: dict | None) -> SyncResult:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("runtime hiccup")
        return SyncResult(done=pod is None)

    workers = PodWorkers(sync, error_backoff=0.01)
    workers.update("x", {"v": 1})
    await asyncio.sleep(0.05)
    assert calls["n"] >= 2 and len(workers) == 1
    workers.update("x", None)
    await asyncio.sleep(0.05)
    assert len(workers) == 0


async def test_resync_after_requested_delay() -> None:
    times: list[float] = []
    loop = asyncio.get_running_loop()

    async def sync(uid: str, pod: dict | None) -> SyncResult:
        times.append(loop.time())
        return SyncResult(resync=0.05) if len(times) < 3 else SyncResult()

    workers = PodWorkers(sync)
    workers.update("r", {})
    await asyncio.sleep(0.3)
    assert len(times) == 3
    await workers.stop()
