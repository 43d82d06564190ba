"""When an unschedulable pod is tried again: kube-scheduler's queueing, as pure state.

A pod that fits nowhere waits. It is due again:
- at once when the pod itself changed (its resourceVersion moved past the one recorded
  after the last attempt, which includes the scheduler's own condition write);
- after a cluster change that could make room (`moved`), once its back-off has passed
  since the last attempt: `initial * 2^(attempts-1)`, at most `maximum` (kube-scheduler:
  1 s, 10 s);
- `flush` seconds after the last attempt regardless (kube-scheduler: 5 min).

The caller keeps a timer in its work queue for the next due time; `arm` says when one is
needed, so that a pod never has more than one outstanding timer that matters, however
many changes arrive. Pure: times are passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

_EPSILON = 1e-3  # queue timers fire at or just after their due time


@dataclass(frozen=True)
class Backoff:
    initial: float = 1.0
    maximum: float = 10.0
    flush: float = 300.0

    def delay(self, attempts: int) -> float:
        return min(self.initial * 2 ** max(attempts - 1, 0), self.maximum)


@dataclass
class Waiting:
    """One unschedulable pod between attempts."""

    attempts: int = 0
    last_try: float = 0.0
    rv: int = 0  # the pod's resourceVersion after the last attempt
    moved: bool = False  # a cluster change since the last attempt
    timer: float | None = None  # due time of the earliest queue timer outstanding

    def failed(self, now: float, rv: int) -> None:
        """Another attempt found no node."""
        self.attempts += 1
        self.last_try, self.rv, self.moved = now, rv, False

    def next_try(self, backoff: Backoff) -> float:
        if self.moved:
            return self.last_try + backoff.delay(self.attempts)
        return self.last_try + backoff.flush

    def arm(self, backoff: Backoff) -> float | None:
        """The due time to set a queue timer for, or None when an earlier (or equal) one
        is already outstanding."""
        due = self.next_try(backoff)
        if self.timer is not None and self.timer <= due + _EPSILON:
            return None
        self.timer = due
        return due

    def due(self, rv: int, now: float, backoff: Backoff) -> bool:
        """Whether to try now (the pod came off the queue at `now` with `rv`)."""
        if self.timer is not None and now >= self.timer - _EPSILON:
            self.timer = None  # that timer has fired
        return rv != self.rv or now >= self.next_try(backoff) - _EPSILON
