"""Events expire after the TTL from their last occurrence, through the real master."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bramble.client import Client
from bramble.kube.errors import NotFound
from bramble.master.controllers import ControllerSettings
from tests.conftest import eventually, running_master

EVENTS = "/api/v1/namespaces/default/events"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    settings = ControllerSettings(event_ttl=1.0)
    async with running_master(tmp_path / "master", controllers=settings) as master, \
            Client.from_kubeconfig(str(master.kubeconfig)) as c:
        yield c


def event(name: str, last: datetime) -> dict:
    stamp = last.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "p"},
            "reason": "Tested", "message": "m", "type": "Normal", "count": 1,
            "firstTimestamp": stamp, "lastTimestamp": stamp}


async def gone(client: Client, name: str) -> bool:
    try:
        await client.request("GET", f"{EVENTS}/{name}")
    except NotFound:
        return True
    return False


async def test_events_go_after_the_ttl_and_a_repeat_moves_the_expiry(client: Client) -> None:
    # One that happened long ago, and one whose (last) occurrence is far ahead.
    await client.request("POST", EVENTS, json=event("future", datetime(2100, 1, 1, tzinfo=UTC)))
    await client.request("POST", EVENTS, json=event("old", datetime(2020, 1, 1, tzinfo=UTC)))
    await eventually(lambda: gone(client, "old"))
    assert not await gone(client, "future")  # the controller ran, and kept it

    # A repeat moves lastTimestamp: here into the past, so it is due at once.
    await client.request("PATCH", f"{EVENTS}/future", json={
        "count": 2, "lastTimestamp": "2020-01-01T00:00:00Z"},
        content_type="application/merge-patch+json")
    await eventually(lambda: gone(client, "future"))
