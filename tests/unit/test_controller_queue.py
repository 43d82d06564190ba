"""The controllers' work queue: dedup, one run per key at a time, delays and back-off."""

from __future__ import annotations

import asyncio

import pytest

from bramble.master.controllers.base import RETRY_BASE, RETRY_MAX, WorkQueue


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def take(q: WorkQueue, seconds: float = 0.2) -> object:
    return await asyncio.wait_for(q.get(), seconds)


async def test_a_key_added_twice_runs_once() -> None:
    q = WorkQueue()
    q.add("a")
    q.add("b")
    q.add("a")
    assert await take(q) == "a"
    assert await take(q) == "b"
    with pytest.raises(TimeoutError):
        await take(q, 0.05)


async def test_a_key_added_while_running_runs_again_after_done() -> None:
    q = WorkQueue()
    q.add("a")
    assert await take(q) == "a"
    q.add("a")  # changed again while being reconciled
    with pytest.raises(TimeoutError):
        await take(q, 0.05)  # never two workers on one key
    q.done("a")
    assert await take(q) == "a"


async def test_add_after_waits_for_its_time() -> None:
    clock = Clock()
    q = WorkQueue(clock)
    q.add_after("late", 10)
    q.add_after("soon", 1)
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0.02)
    assert not getter.done()
    clock.now += 1
    q.add("other")  # any wake-up re-checks the delayed keys
    assert {await asyncio.wait_for(getter, 0.2), await take(q)} == {"soon", "other"}
    clock.now += 9
    q._wake.set()
    assert await take(q) == "late"


@pytest.mark.parametrize(("failures", "delay"), [
    (0, RETRY_BASE),        # first failure: the base delay
    (1, RETRY_BASE * 2),    # doubling
    (4, RETRY_BASE * 16),
    (30, RETRY_MAX),        # capped
])
def test_retry_backs_off_exponentially(failures: int, delay: float) -> None:
    q = WorkQueue(Clock())
    for _ in range(failures):
        q.retry("k")
    assert q.retry("k") == pytest.approx(delay)


def test_forget_resets_the_back_off() -> None:
    q = WorkQueue(Clock())
    q.retry("k")
    q.retry("k")
    q.forget("k")
    assert q.retry("k") == pytest.approx(RETRY_BASE)


def test_delayed_adds_keep_one_entry_per_key() -> None:
    clock = Clock()
    q = WorkQueue(clock)
    for delay in (10, 20, 5, 30):  # a reconcile asking again and again
        q.add_after("k", delay)
    assert len(q._delayed) == 2  # 10, then the earlier 5; 20 and 30 were later: dropped
    clock.now += 5
    assert q._promote() is not None  # "k" is due at 5; the stale 10 entry remains
    assert q._ready == ["k"]
