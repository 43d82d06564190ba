"""Event expiry: Events go `ttl` seconds after they last happened (the apiserver's
--event-ttl, 1 h by default).

Without it every "Scheduled", "Pulled" and "Started" would stay on the master's SD card
forever: a cluster rolling a few deployments a day would carry thousands of stale Events
in every `kubectl describe` and in every restart's load. A repeat of an Event (its count
moving) moves its expiry with it. Each Event waits on a deadline on the work queue; there
is no periodic sweep.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from bramble.kube.errors import NotFound
from bramble.kube.printers import parse_time

from ..api.rest import ObjectAPI, Target
from .base import Controller, Watch, own_key

log = logging.getLogger(__name__)

Obj = dict[str, Any]
EVENTS = "events"


def last_seen(event: Obj) -> float | None:
    """When the Event last happened (unix seconds): lastTimestamp, else eventTime, else
    firstTimestamp, else its creation; None when it carries no time at all."""
    meta = event.get("metadata") or {}
    for value in (event.get("lastTimestamp"), event.get("eventTime"),
                  event.get("firstTimestamp"), meta.get("creationTimestamp")):
        when = parse_time(value)
        if when is not None:
            return when.timestamp()
    return None


def seconds_left(event: Obj, ttl: float, now: float) -> float:
    """How long the Event still lives (<= 0: it is due). One without any time is due now:
    nothing could ever make it expire otherwise."""
    seen = last_seen(event)
    return 0.0 if seen is None else seen + ttl - now


class EventTTLController(Controller):
    name = "event-ttl"

    def __init__(self, api: ObjectAPI, ttl: float = 3600.0,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(api)
        self.ttl = ttl
        self.clock = clock
        self.events = self.target("", "v1", "events")
        self.watches = [Watch(EVENTS, own_key)]

    def initial_keys(self) -> Iterable[Hashable]:
        return [(e.namespace, e.name) for e in self.store.list(EVENTS)]

    async def reconcile(self, key: Hashable) -> float | None:
        namespace, name = key  # type: ignore[misc]
        entry = self.store.get(EVENTS, namespace, name)
        if entry is None:
            return None
        left = seconds_left(entry.obj(), self.ttl, self.clock())
        if left > 0:
            return left
        try:
            await self.api.delete(Target(self.events.rt, namespace, name), {}, self.identity)
        except NotFound:
            pass
        return None
