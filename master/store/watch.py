"""Watch fan-out from memory with a bounded history.

Every committed change becomes one `Change` in a ring buffer (the history) and is offered
to the watchers of its resource. A watcher that starts from an older resourceVersion is
replayed from the history; one older than the history gets "410 Expired" and must list
again, as in Kubernetes. Watchers are cheap: a deque and an asyncio.Event each; the
object's JSON bytes are shared, never copied or re-encoded per watcher.

A watcher with a filter sees a change of an object that leaves the filter as DELETED and
one that enters it as ADDED (what the Kubernetes watch cache does for selectors).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from bramble.kube.errors import Expired

from .entry import Entry

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"

# A filter sees the object's labels and selectable fields.
Predicate = Callable[[dict[str, str], dict[str, str]], bool]


@dataclass(frozen=True, slots=True)
class Change:
    """One committed change. For DELETED, `entry` is the object as last seen, at the
    deletion's resourceVersion; `prev` is the version before (what selectors compare)."""

    type: str
    entry: Entry
    prev: Entry | None = None


class Watcher:
    """One client's subscription. Changes queue up until the client takes them."""

    def __init__(self, hub: WatchHub, resource: str, namespace: str | None,
                 predicate: Predicate | None, limit: int) -> None:
        self._hub = hub
        self.resource = resource
        self.namespace = namespace
        self.predicate = predicate
        self._limit = limit
        self._queue: deque[tuple[str, Change]] = deque()
        self._ready = asyncio.Event()
        self.closed_reason: str | None = None

    def offer(self, change: Change) -> None:
        if self.closed_reason is not None:
            return
        entry = change.entry
        if self.namespace is not None and entry.namespace != self.namespace:
            return
        kind = change.type
        if self.predicate is not None:
            now = self.predicate(entry.labels, entry.fields)
            if change.type == MODIFIED and change.prev is not None:
                before = self.predicate(change.prev.labels, change.prev.fields)
                if before and not now:
                    kind = DELETED
                elif now and not before:
                    kind = ADDED
                elif not now:
                    return
            elif not now:
                return
        if len(self._queue) >= self._limit:
            # A client this far behind would make the master hold unbounded memory; end its
            # stream so it lists again, as the apiserver does with slow watchers.
            self.close("watcher fell too far behind")
            return
        self._queue.append((kind, change))
        self._ready.set()

    async def next_batch(self, max_wait: float | None) -> list[tuple[str, Change]]:
        """Take all queued changes, waiting up to `max_wait` seconds for the first one.

        Returns an empty batch when nothing came: the stream loop uses the pause to send
        bookmarks and to notice a client that went away.
        """
        if not self._queue and self.closed_reason is None:
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), max_wait)
            except TimeoutError:
                return []
        batch = list(self._queue)
        self._queue.clear()
        return batch

    def close(self, reason: str = "closed") -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
            self._hub.unsubscribe(self)
            self._ready.set()


class WatchHub:
    def __init__(self, history: int = 10_000, queue_limit: int = 20_000) -> None:
        self._history: deque[Change] = deque(maxlen=history)
        # Changes with rv <= floor may have left the history.
        self.floor = 0
        self._queue_limit = queue_limit
        self._watchers: dict[str, set[Watcher]] = {}

    @property
    def watcher_count(self) -> int:
        return sum(len(w) for w in self._watchers.values())

    def publish(self, change: Change) -> None:
        if len(self._history) == self._history.maxlen:
            self.floor = self._history[0].entry.rv
        self._history.append(change)
        for watcher in tuple(self._watchers.get(change.entry.resource, ())):
            watcher.offer(change)

    def subscribe(self, resource: str, namespace: str | None, predicate: Predicate | None,
                  since: int | None) -> Watcher:
        """A watcher for changes after `since` (None: from now on).

        Must be called with no await between it and reading the state it continues from.
        """
        if since is not None and since < self.floor:
            raise Expired(f"too old resource version: {since} ({self.floor + 1})")
        watcher = Watcher(self, resource, namespace, predicate, self._queue_limit)
        # Registered before the replay, so a watcher that overflows during it (and closes)
        # also unregisters itself.
        self._watchers.setdefault(resource, set()).add(watcher)
        if since is not None:
            for change in self._history:
                if change.entry.rv > since and change.entry.resource == resource:
                    watcher.offer(change)
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        self._watchers.get(watcher.resource, set()).discard(watcher)

    def close_all(self, reason: str) -> None:
        for watchers in list(self._watchers.values()):
            for watcher in list(watchers):
                watcher.close(reason)
