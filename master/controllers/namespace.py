"""The namespace controller: empties a terminating namespace, then lets it go.

Deleting a namespace marks it Terminating (its `kubernetes` spec finalizer holds it). This
controller deletes every object in it - with the usual semantics, so pods on a node are
stopped gracefully and finalizers are honoured - and, once nothing is left, drops the
finalizer so the namespace itself is removed. It wakes on store changes, never polls.
"""

from __future__ import annotations

import asyncio
import logging

from bramble.kube.errors import StatusError

from ..api.auth import ADMIN_GROUP, Identity
from ..api.rest import ObjectAPI, Target
from ..store import Entry

log = logging.getLogger(__name__)

CONTROLLER = Identity("system:controller:namespace", (ADMIN_GROUP,))


def terminating(entries: list[Entry]) -> list[str]:
    """Names of namespaces being deleted."""
    return [e.name for e in entries if e.obj().get("metadata", {}).get("deletionTimestamp")]


def cleanup_plan(contents: list[Entry]) -> list[Entry]:
    """What still needs a delete request: objects not already being deleted."""
    return [e for e in contents if not e.obj().get("metadata", {}).get("deletionTimestamp")]


class NamespaceController:
    def __init__(self, api: ObjectAPI) -> None:
        self.api = api
        self._namespaced = [rt for rt in api.registry.all if rt.namespaced]

    def _contents(self, namespace: str) -> list[tuple[Target, Entry]]:
        found = []
        for rt in self._namespaced:
            for entry in self.api.store.list(rt.qualified, namespace):
                found.append((Target(rt, namespace, entry.name), entry))
        return found

    async def sync(self, namespace: str) -> None:
        contents = self._contents(namespace)
        pending = {id(e) for e in cleanup_plan([e for _, e in contents])}
        for target, entry in contents:
            if id(entry) not in pending:
                continue
            try:
                await self.api.delete(target, {"propagationPolicy": "Background"}, CONTROLLER)
            except StatusError as err:
                if err.code != 404:
                    log.warning("namespace cleanup: delete failed",
                                extra={"namespace": namespace, "object": entry.name,
                                       "error": err.message})
        if not self._contents(namespace):
            await self.api.finalize_namespace(namespace)
            log.info("namespace removed", extra={"namespace": namespace})

    async def run(self) -> None:
        store = self.api.store
        changed = asyncio.Event()
        watchers = [store.watch(rt.qualified, None, None, None)
                    for rt in [*self._namespaced, self.api.registry.by_path(
                        "", "v1", "namespaces")] if rt is not None]

        async def relay(w) -> None:
            while w.closed_reason is None:
                if await w.next_batch(None):
                    changed.set()

        relays = [asyncio.create_task(relay(w), name=f"namespace-controller-{w.resource}")
                  for w in watchers]
        try:
            while True:
                for name in terminating(store.list("namespaces")):
                    await self.sync(name)
                await changed.wait()
                changed.clear()
        finally:
            for task in relays:
                task.cancel()
            for w in watchers:
                w.close()
