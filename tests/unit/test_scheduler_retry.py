"""When an unschedulable pod is tried again: back-off, flush, one timer at a time."""

from __future__ import annotations

import pytest

from bramble.master.scheduler.retry import Backoff, Waiting

B = Backoff(initial=1.0, maximum=10.0, flush=300.0)


@pytest.mark.parametrize(("attempts", "delay"), [
    (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0),  # 1 * 2^(attempts-1)
    (5, 10.0), (20, 10.0),  # 16 and beyond: the maximum
])
def test_backoff_doubles_up_to_the_maximum(attempts: int, delay: float) -> None:
    assert B.delay(attempts) == delay


def waited(attempts: int = 2, last_try: float = 100.0, rv: int = 7,
           moved: bool = False) -> Waiting:
    return Waiting(attempts=attempts, last_try=last_try, rv=rv, moved=moved)


@pytest.mark.parametrize(("w", "rv", "now", "due"), [
    # Nothing changed: not before the flush (100 + 300).
    (waited(), 7, 150.0, False),
    (waited(), 7, 400.0, True),
    # The pod itself changed: at once.
    (waited(), 8, 100.5, True),
    # A cluster change: after the back-off of 2 attempts (2 s) - at 102, not at 101.
    (waited(moved=True), 7, 101.0, False),
    (waited(moved=True), 7, 102.0, True),
    (waited(attempts=6, moved=True), 7, 109.0, False),  # 10 s at most
    (waited(attempts=6, moved=True), 7, 110.0, True),
])
def test_due(w: Waiting, rv: int, now: float, due: bool) -> None:
    assert w.due(rv, now, B) is due


def test_one_timer_at_a_time() -> None:
    w = waited()
    # After a failure: one timer for the flush.
    assert w.arm(B) == 400.0
    assert w.arm(B) is None  # already armed
    # A cluster change brings the next try forward: an earlier timer is needed...
    w.moved = True
    assert w.arm(B) == 102.0
    # ...and more changes add nothing while it is outstanding.
    for _ in range(100):
        assert w.arm(B) is None
    # It fires (the pod comes off the queue at 102): due, and the timer is gone.
    assert w.due(7, 102.0, B) is True and w.timer is None
    w.failed(102.0, 9)
    assert (w.attempts, w.last_try, w.rv, w.moved) == (3, 102.0, 9, False)
    assert w.arm(B) == 402.0


def test_an_early_timer_rearms_for_the_real_due_time() -> None:
    # A stale timer (from before the last attempt) brings the pod back early: not due,
    # and the caller arms the one that matters.
    w = waited(moved=False)
    w.timer = 101.0
    assert w.due(7, 101.0, B) is False and w.timer is None
    assert w.arm(B) == 400.0
