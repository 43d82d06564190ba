"""CrashLoopBackOff: when a container that keeps exiting may be started again.

Role: the kubelet's crash-loop back-off (a flowcontrol.Backoff keyed per container, checked in
doBackOff), as plain state with explicit times. The agent records each exit as it sees it
(`record_exit`, or `record_pod` for a whole ObservedPod); `compute_pod_actions` only asks
`next_allowed` and `delay`.

The timing is the kubelet's: after the first exit the container restarts at once; after
each further exit it waits 10 s, then 20 s, 40 s, ... capped at 300 s. A container that ran
for 10 minutes before it exited starts the sequence over (restart at once, then 10 s).

Invariants:
- Pure: no clock reads; times are Unix seconds passed in.
- Recording the same exit twice changes nothing (the agent may call it on every sync).
"""

from __future__ import annotations

from dataclasses import dataclass

from bramble.node.pods import generations, parse_time
from bramble.node.runtime.types import ObservedPod

INITIAL = 10.0  # seconds
MAX = 300.0
RESET_AFTER = 600.0  # a run this long clears the back-off
# An entry untouched for this long is dropped by gc() (the kubelet's 2 x max).
EXPIRE_AFTER = 2 * MAX

Key = tuple[str, str]  # (pod uid, container name)


@dataclass
class _Entry:
    exits: int  # consecutive short runs, the last one included
    finished_at: float  # of the exit last recorded


def delay_after(exits: int) -> float:
    """The wait before restarting after `exits` consecutive short runs: 0, 10, 20, ... 300."""
    if exits <= 1:
        return 0.0
    return min(INITIAL * 2 ** (exits - 2), MAX)


class Backoff:
    """Back-off state for every container of the node, keyed by (pod uid, container name)."""

    def __init__(self) -> None:
        self._entries: dict[Key, _Entry] = {}

    def record_exit(self, key: Key, started_at: float | None, finished_at: float) -> float:
        """Note that the container exited at `finished_at`, having started at `started_at`
        (None: never started). Returns the delay now in force for its restart."""
        entry = self._entries.get(key)
        if entry is not None and finished_at <= entry.finished_at:
            return delay_after(entry.exits)  # already recorded
        ran = 0.0 if started_at is None else finished_at - started_at
        if entry is None or ran >= RESET_AFTER:
            entry = _Entry(exits=1, finished_at=finished_at)
        else:
            entry = _Entry(exits=entry.exits + 1, finished_at=finished_at)
        self._entries[key] = entry
        return delay_after(entry.exits)

    def record_pod(self, observed: ObservedPod) -> None:
        """Record the exit of each container's newest generation that has exited."""
        for name, gens in generations(observed.containers).items():
            container = gens[0]
            finished = parse_time(container.finished_at)
            if container.state == "exited" and finished is not None:
                self.record_exit((observed.uid, name),
                                 parse_time(container.started_at), finished)

    def next_allowed(self, key: Key, now: float) -> float:
        """The earliest time, not before `now`, at which the container may start again."""
        entry = self._entries.get(key)
        if entry is None:
            return now
        return max(now, entry.finished_at + delay_after(entry.exits))

    def delay(self, key: Key) -> float:
        """The back-off in force for the container (0 when it may restart at once)."""
        entry = self._entries.get(key)
        return 0.0 if entry is None else delay_after(entry.exits)

    def forget(self, key: Key) -> None:
        self._entries.pop(key, None)

    def forget_pod(self, uid: str) -> None:
        for key in [k for k in self._entries if k[0] == uid]:
            del self._entries[key]

    def gc(self, now: float) -> None:
        """Drop entries whose last exit is older than EXPIRE_AFTER (kubelet's Backoff.GC)."""
        for key in [k for k, e in self._entries.items() if now - e.finished_at > EXPIRE_AFTER]:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)


def go_duration(seconds: float) -> str:
    """A duration as Go's time.Duration prints it: "10s", "1m20s", "5m0s", "1h0m0s"."""
    whole = int(seconds)
    if whole == seconds and whole == 0:
        return "0s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    frac = seconds - whole
    sec_text = f"{secs + frac:g}s" if frac else f"{secs}s"
    if hours:
        return f"{hours}h{minutes}m{sec_text}"
    if minutes:
        return f"{minutes}m{sec_text}"
    return sec_text
