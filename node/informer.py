"""A list-and-watch cache of one API collection (Nodes, Services, Endpoints) for the agent.

The agent's network parts decide from complete sets - the routes from all Nodes, the
proxy and the DNS from all Services and Endpoints - so the cache hands out the whole
current set and a "something changed" signal, not individual events. Consumers wait on
`changes()`, which coalesces bursts: while a consumer applies one state, any number of
events just mark it dirty, and it applies the newest state once more afterwards.

List once, then watch from the list's resourceVersion; on "410 Expired" or a dropped
stream list again (after a capped back-off), so a missed event only delays, never loses,
a change. `synced` is set after the first complete list.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from bramble.client import Client, list_and_watch

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects


def key_of(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class Informer:
    def __init__(self, client: Client, path: str, *, params: dict[str, str] | None = None,
                 notify: asyncio.Event | None = None, retry_max: float = 10.0) -> None:
        self.client = client
        self.path = path
        self.params = dict(params or {})
        self.objects: dict[Key, Obj] = {}
        self.synced = asyncio.Event()
        # Set on every change; informers feeding one consumer may share it (`notify`).
        self._dirty = notify if notify is not None else asyncio.Event()
        self._retry_max = retry_max

    def values(self) -> list[Obj]:
        return list(self.objects.values())

    async def changed(self) -> None:
        """Returns once something changed since the last call (the first list counts)."""
        await self._dirty.wait()
        self._dirty.clear()

    async def changes(self) -> AsyncIterator[None]:
        """Yields once after the first list, then once per burst of changes."""
        while True:
            await self.changed()
            yield None

    async def _list(self) -> str:
        body = await self.client.request("GET", self.path, params=self.params)
        fresh = {key_of(obj): obj for obj in body.get("items") or []}
        if fresh != self.objects or not self.synced.is_set():
            self.objects = fresh
            self._dirty.set()
        self.synced.set()
        return str((body.get("metadata") or {}).get("resourceVersion", ""))

    def _event(self, kind: str, obj: Obj) -> None:
        if kind == "DELETED":
            self.objects.pop(key_of(obj), None)
        else:
            self.objects[key_of(obj)] = obj
        self._dirty.set()

    async def run(self) -> None:
        await list_and_watch(self.client, self.path, self.params, self._list, self._event,
                             retry_max=self._retry_max)
