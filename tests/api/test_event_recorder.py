"""The node's event recorder: folded repeats, bounded writes, what describe shows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bramble.client import Client
from bramble.node.events import NORMAL, WARNING, EventRecorder
from tests.conftest import MasterHandle


@pytest.fixture
async def client(master: MasterHandle) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(master.kubeconfig) as c:
        yield c


async def _events(client: Client, uid: str) -> list[dict]:
    body = await client.request("GET", "/api/v1/namespaces/default/events",
                                params={"fieldSelector": f"involvedObject.uid={uid}"})
    return body["items"]


async def _drain(recorder: EventRecorder) -> None:
    for _ in range(100):
        if recorder._q().empty():  # noqa: SLF001 - the test waits for the writer
            await asyncio.sleep(0.05)
            return
        await asyncio.sleep(0.02)


async def test_repeats_fold_into_one_event_with_a_count(client: Client) -> None:
    pod = await client.request("POST", "/api/v1/namespaces/default/pods", json={
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ev"},
        "spec": {"nodeName": "pi1", "containers": [{"name": "c", "image": "busybox"}]}})
    recorder = EventRecorder(client, "pi1", min_interval=0)
    task = asyncio.create_task(recorder.run())
    recorder.record(pod, NORMAL, "Started", "Started container c", field_path="spec.containers{c}")
    for _ in range(3):
        recorder.record(pod, WARNING, "BackOff", "Back-off restarting failed container c")
    await _drain(recorder)
    task.cancel()
    events = {e["reason"]: e for e in await _events(client, pod["metadata"]["uid"])}
    assert set(events) == {"Started", "BackOff"}
    assert events["BackOff"]["count"] == 3 and events["BackOff"]["type"] == "Warning"
    assert events["Started"]["involvedObject"]["fieldPath"] == "spec.containers{c}"
    assert events["Started"]["source"] == {"component": "kubelet", "host": "pi1"}


async def test_repeats_within_the_interval_cost_no_write(client: Client,
                                                         master: MasterHandle) -> None:
    pod = await client.request("POST", "/api/v1/namespaces/default/pods", json={
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ev2"},
        "spec": {"nodeName": "pi1", "containers": [{"name": "c", "image": "busybox"}]}})
    recorder = EventRecorder(client, "pi1", min_interval=3600)
    task = asyncio.create_task(recorder.run())
    recorder.record(pod, WARNING, "BackOff", "again")
    await _drain(recorder)
    rv = master.running.store.rv  # type: ignore[union-attr]
    for _ in range(20):
        recorder.record(pod, WARNING, "BackOff", "again")
    await _drain(recorder)
    task.cancel()
    assert master.running.store.rv == rv  # type: ignore[union-attr]
    [event] = await _events(client, pod["metadata"]["uid"])
    assert event["count"] == 1
