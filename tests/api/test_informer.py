"""The agent's list-and-watch caches (node/informer.py) against a real master."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bramble.client import Client
from bramble.node.informer import Informer
from tests.conftest import MasterHandle, eventually

SERVICES = "/api/v1/namespaces/default/services"


@pytest.fixture
async def client(master: MasterHandle) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(master.kubeconfig) as c:
        yield c


def service(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"ports": [{"port": 80}], "selector": {"app": name}}}


async def test_follows_the_collection_and_signals_changes(client: Client) -> None:
    await client.request("POST", SERVICES, json=service("early"))
    shared = asyncio.Event()
    informer = Informer(client, "/api/v1/services", notify=shared)
    task = asyncio.create_task(informer.run(), name="informer")
    try:
        await asyncio.wait_for(informer.synced.wait(), 30)
        assert ("default", "early") in informer.objects
        assert shared.is_set()  # the first list counts as a change
        await informer.changed()
        assert not shared.is_set()

        await client.request("POST", SERVICES, json=service("late"))
        await asyncio.wait_for(informer.changed(), 30)
        await eventually(lambda: _has(informer, "late"))
        await client.request("DELETE", f"{SERVICES}/early")
        await eventually(lambda: _gone(informer, "early"))
        # A burst of changes while nobody looks is one signal, and the newest state.
        for name in ("a", "b", "c"):
            await client.request("POST", SERVICES, json=service(name))
        await eventually(lambda: _has(informer, "c"))
        await informer.changed()
        assert {n for _, n in informer.objects} >= {"late", "a", "b", "c"}
        assert not shared.is_set()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _has(informer: Informer, name: str) -> bool:
    return ("default", name) in informer.objects


async def _gone(informer: Informer, name: str) -> bool:
    return ("default", name) not in informer.objects
