"""Node IPAM against a real master: nodes get distinct pod subnets of the cluster CIDR,
deleted nodes release theirs, a full range makes a node wait, and a node credential may
not pick its own subnet."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bramble import kubeconfig
from bramble.client import MERGE_PATCH, Client
from bramble.kube.errors import Forbidden, NotFound
from bramble.master.controllers import ControllerSettings
from bramble.node.join import join
from tests.conftest import MasterHandle, eventually, running_master

Obj = dict[str, Any]
NODES = "/api/v1/nodes"
# Room for two /24 subnets only, so that exhaustion and release are quick to reach.
SMALL = ControllerSettings(cluster_cidr="10.42.0.0/23")


@pytest.fixture
async def small_master(tmp_path: Path) -> AsyncIterator[MasterHandle]:
    async with running_master(tmp_path / "master", controllers=SMALL) as handle:
        yield handle


@pytest.fixture
async def admin(small_master: MasterHandle) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(str(small_master.kubeconfig)) as c:
        yield c



async def add_node(client: Client, name: str) -> None:
    await client.request("POST", NODES, json={"apiVersion": "v1", "kind": "Node",
                                              "metadata": {"name": name}})


def cidr_of(client: Client, name: str) -> Callable[[], Awaitable[str | None]]:
    async def check() -> str | None:
        try:
            node = await client.request("GET", f"{NODES}/{name}")
        except NotFound:
            return None
        spec = node.get("spec") or {}
        if spec.get("podCIDR"):
            assert spec.get("podCIDRs") == [spec["podCIDR"]]
        return spec.get("podCIDR")
    return check


def cidr_events(client: Client, name: str) -> Callable[[], Awaitable[list[Obj]]]:
    async def check() -> list[Obj]:
        listed = await client.request("GET", "/api/v1/namespaces/default/events", params={
            "fieldSelector": f"involvedObject.name={name},reason=CIDRNotAvailable"})
        return listed["items"]
    return check


async def test_nodes_get_distinct_cidrs_and_deleted_ones_release_theirs(
        admin: Client) -> None:
    await add_node(admin, "pi1")
    await add_node(admin, "pi2")
    first = {await eventually(cidr_of(admin, "pi1")), await eventually(cidr_of(admin, "pi2"))}
    assert first == {"10.42.0.0/24", "10.42.1.0/24"}

    # The /23 is full: pi3 waits, and says why.
    await add_node(admin, "pi3")
    found = await eventually(cidr_events(admin, "pi3"))
    assert [(e["type"], e["message"]) for e in found] == [
        ("Normal", "Node pi3 status is now: CIDRNotAvailable")]
    assert await cidr_of(admin, "pi3")() is None

    # pi1 goes: pi3 gets its subnet; pi2 keeps its own.
    freed = await cidr_of(admin, "pi1")()
    kept = await cidr_of(admin, "pi2")()
    await admin.request("DELETE", f"{NODES}/pi1")
    assert await eventually(cidr_of(admin, "pi3")) == freed
    assert await cidr_of(admin, "pi2")() == kept


async def test_a_cidr_set_by_an_admin_is_kept_and_never_handed_out_again(
        admin: Client) -> None:
    await admin.request("POST", NODES, json={
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "manual"},
        "spec": {"podCIDR": "10.42.0.0/24", "podCIDRs": ["10.42.0.0/24"]}})
    await add_node(admin, "auto")
    assert await eventually(cidr_of(admin, "auto")) == "10.42.1.0/24"
    assert await cidr_of(admin, "manual")() == "10.42.0.0/24"


async def test_default_cluster_cidr_in_every_master(master: MasterHandle) -> None:
    async with Client.from_kubeconfig(str(master.kubeconfig)) as client:
        await add_node(client, "pi1")
        assert await eventually(cidr_of(client, "pi1")) == "10.42.0.0/24"


async def test_a_node_credential_cannot_pick_its_subnet(
        small_master: MasterHandle, admin: Client, tmp_path: Path) -> None:
    token = small_master.running.credentials.join_token  # type: ignore[union-attr]
    config = kubeconfig.load(await join(small_master.url, token, "pi1", tmp_path / "pi1"))
    async with Client(config) as pi1:
        # Registering with a subnet of its choosing (another node's, say) is refused...
        with pytest.raises(Forbidden):
            await pi1.request("POST", NODES, json={
                "apiVersion": "v1", "kind": "Node", "metadata": {"name": "pi1"},
                "spec": {"podCIDR": "10.42.1.0/24", "podCIDRs": ["10.42.1.0/24"]}})
        # ...registering without one works, and the master assigns it.
        await add_node(pi1, "pi1")
        assigned = await eventually(cidr_of(pi1, "pi1"))
        # The node may update its Node (labels) keeping the subnet as it is.
        await pi1.request("PATCH", f"{NODES}/pi1", json={
            "metadata": {"labels": {"bramble.dev/test": "yes"}}}, content_type=MERGE_PATCH)
        # Dropping it (to be given another) is refused.
        with pytest.raises(Forbidden):
            await pi1.request("PATCH", f"{NODES}/pi1", json={
                "spec": {"podCIDR": None, "podCIDRs": None}}, content_type=MERGE_PATCH)
        assert await cidr_of(admin, "pi1")() == assigned
