"""CrashLoopBackOff timing: restart at once, then 10 s doubling to 300 s, reset after a
10-minute run - with explicit times, no clock."""

import pytest

from bramble.node.pods import format_time
from bramble.node.pods.backoff import Backoff, delay_after, go_duration
from bramble.node.runtime.types import (
    LABEL_RESTART_COUNT,
    ObservedContainer,
    ObservedPod,
)

KEY = ("uid-1", "app")
T0 = 1_700_000_000.0

DELAYS = [
    # (consecutive short runs, wait before the next start)
    (1, 0),  # the first exit restarts at once
    (2, 10),  # 10 * 2**0
    (3, 20),  # 10 * 2**1
    (4, 40),
    (5, 80),
    (6, 160),
    (7, 300),  # 10 * 2**5 = 320, capped at 300
    (8, 300),
]


@pytest.mark.parametrize(("exits", "delay"), DELAYS)
def test_delay_sequence(exits, delay):
    assert delay_after(exits) == delay


def test_crash_loop_with_explicit_times():
    backoff = Backoff()
    assert backoff.next_allowed(KEY, T0) == T0  # never exited: start now

    # Ran 5 s, exited at T0+5: first exit, restart at once.
    assert backoff.record_exit(KEY, T0, T0 + 5) == 0
    assert backoff.next_allowed(KEY, T0 + 5) == T0 + 5

    # Restarted at T0+5, exited at T0+7: held 10 s -> allowed at 7 + 10 = T0+17.
    assert backoff.record_exit(KEY, T0 + 5, T0 + 7) == 10
    assert backoff.next_allowed(KEY, T0 + 8) == T0 + 17
    assert backoff.delay(KEY) == 10
    assert backoff.next_allowed(KEY, T0 + 20) == T0 + 20  # past it: now

    # Restarted at T0+17, exited at T0+18: 20 s -> T0+38.
    assert backoff.record_exit(KEY, T0 + 17, T0 + 18) == 20
    assert backoff.next_allowed(KEY, T0 + 18) == T0 + 38


def test_recording_the_same_exit_twice_changes_nothing():
    backoff = Backoff()
    backoff.record_exit(KEY, T0, T0 + 1)
    backoff.record_exit(KEY, T0 + 1, T0 + 2)
    assert backoff.record_exit(KEY, T0 + 1, T0 + 2) == 10  # still 10, not 20
    assert backoff.record_exit(KEY, T0, T0 + 1) == 10  # an older exit is ignored
    assert backoff.next_allowed(KEY, T0 + 2) == T0 + 12


def test_a_ten_minute_run_resets():
    backoff = Backoff()
    t = T0
    for _ in range(7):  # seven quick crashes: at the 300 s cap
        backoff.record_exit(KEY, t, t + 1)
        t += 400
    assert backoff.delay(KEY) == 300
    # Ran 600 s (the reset threshold) before exiting: start over, restart at once.
    assert backoff.record_exit(KEY, t, t + 600) == 0
    assert backoff.next_allowed(KEY, t + 600) == t + 600
    # The next quick crash waits 10 s again.
    assert backoff.record_exit(KEY, t + 600, t + 601) == 10


def test_a_run_just_short_of_ten_minutes_does_not_reset():
    backoff = Backoff()
    backoff.record_exit(KEY, T0, T0 + 1)
    backoff.record_exit(KEY, T0 + 1, T0 + 1 + 599.0)  # 599 s < 600 s
    assert backoff.delay(KEY) == 10


def test_never_started_counts_as_a_short_run():
    backoff = Backoff()
    backoff.record_exit(KEY, None, T0)
    assert backoff.record_exit(KEY, None, T0 + 1) == 10


def test_keys_are_per_container_and_pod():
    backoff = Backoff()
    backoff.record_exit(("uid-1", "a"), T0, T0 + 1)
    backoff.record_exit(("uid-1", "a"), T0 + 1, T0 + 2)
    backoff.record_exit(("uid-2", "a"), T0, T0 + 1)
    assert backoff.delay(("uid-1", "a")) == 10
    assert backoff.delay(("uid-2", "a")) == 0
    assert backoff.delay(("uid-1", "b")) == 0
    backoff.forget_pod("uid-1")
    assert len(backoff) == 1
    backoff.forget(("uid-2", "a"))
    assert len(backoff) == 0


def test_gc_drops_entries_idle_for_twice_the_maximum():
    backoff = Backoff()
    backoff.record_exit(("u", "old"), T0, T0 + 1)
    backoff.record_exit(("u", "new"), T0, T0 + 500)
    backoff.gc(T0 + 1 + 600)  # exactly 600 s after "old": kept
    assert len(backoff) == 2
    backoff.gc(T0 + 1 + 601)  # 601 s > 600 s: "old" goes, "new" (101 s) stays
    assert backoff.delay(("u", "new")) == 0 and len(backoff) == 1


def container(cid, name, restart, state, started=None, finished=None):
    return ObservedContainer(
        id=cid, name=name, state=state, labels={LABEL_RESTART_COUNT: str(restart)},
        exit_code=1 if state == "exited" else None,
        started_at=format_time(started) if started is not None else "",
        finished_at=format_time(finished) if finished is not None else "")


def test_record_pod_records_each_newest_exited_generation():
    observed = ObservedPod(uid="u", containers=(
        container("c0", "app", 0, "exited", T0, T0 + 1),
        container("c1", "app", 1, "exited", T0 + 1, T0 + 2),  # newest of "app"
        container("d0", "db", 0, "running", T0),
    ))
    backoff = Backoff()
    backoff.record_pod(observed)
    backoff.record_pod(observed)  # idempotent
    assert backoff.delay(("u", "app")) == 0  # one exit recorded (the newest): restart at once
    assert backoff.next_allowed(("u", "app"), T0 + 2) == T0 + 2
    assert backoff.delay(("u", "db")) == 0 and len(backoff) == 1


DURATIONS = [
    (0, "0s"),
    (10, "10s"),
    (20, "20s"),
    (80, "1m20s"),
    (160, "2m40s"),
    (300, "5m0s"),
    (3600, "1h0m0s"),
    (1.5, "1.5s"),
]


@pytest.mark.parametrize(("seconds", "text"), DURATIONS)
def test_go_duration(seconds, text):
    assert go_duration(seconds) == text
