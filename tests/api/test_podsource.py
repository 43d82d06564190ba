"""The node's view of its pods follows the API: list, watch, deletions, re-lists."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bramble.client import Client
from bramble.node.podsource import PodSource
from tests.conftest import MasterHandle


@pytest.fixture
async def client(master: MasterHandle) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(master.kubeconfig) as c:
        yield c


def pod(name: str, node: str | None) -> dict:
    spec = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


async def test_follows_pods_bound_to_this_node(client: Client) -> None:
    pods = "/api/v1/namespaces/default/pods"
    await client.request("POST", pods, json=pod("early", "pi1"))
    await client.request("POST", pods, json=pod("elsewhere", "pi2"))
    changes: list[tuple[str, str | None]] = []
    names: dict[str, str] = {}

    def on_change(uid: str, p: dict | None) -> None:
        if p is not None:
            names[uid] = p["metadata"]["name"]
        changes.append((names.get(uid, "?"), None if p is None else p["metadata"]["name"]))

    source = PodSource(client, "pi1", on_change)
    task = asyncio.create_task(source.run())
    await asyncio.wait_for(source.synced.wait(), 5)
    await client.request("POST", pods, json=pod("late", "pi1"))
    await client.request("POST", pods, json=pod("unbound", None))
    await client.request("DELETE", f"{pods}/early", json={"gracePeriodSeconds": 0})
    for _ in range(100):
        if ("early", None) in changes and ("late", "late") in changes:
            break
        await asyncio.sleep(0.02)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert ("early", "early") in changes and ("late", "late") in changes
    assert ("early", None) in changes
    assert not any(name in ("elsewhere", "unbound") for name, _ in changes)
    assert sorted(p["metadata"]["name"] for p in source.pods.values()) == ["late"]
