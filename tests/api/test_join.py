"""Joining with the join token: the node's credential, its limits, refusals, rejoining."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bramble import kubeconfig
from bramble.client import Client
from bramble.kube.errors import Forbidden, Unauthorized
from bramble.node.join import NODE_KUBECONFIG, JoinError, check_answer, fingerprint, join
from tests.conftest import MasterHandle


def join_token(master: MasterHandle) -> str:
    return master.running.credentials.join_token  # type: ignore[union-attr]


async def post_join(master: MasterHandle, body: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.post(
            f"{master.url}/bramble/v1/join", json=body, ssl=master.ssl_context()) as r:
        return r.status, await r.json()


def node_object(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}


async def test_join_gives_a_node_credential_limited_to_its_own_node(
        master: MasterHandle, tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    path = await join(master.url, join_token(master), "pi1", data_dir)

    assert path == data_dir / NODE_KUBECONFIG
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    cfg = kubeconfig.load(path)
    assert cfg.server == master.url
    assert cfg.ca_data is not None and cfg.ca_data.decode().strip() == \
        master.ca_file.read_text().strip()  # the CA is pinned

    async with Client.from_kubeconfig(str(master.kubeconfig)) as admin:
        await admin.request("POST", "/api/v1/nodes", json=node_object("pi2"))
    async with Client(cfg) as node:
        # It authenticates (reads are allowed) and may write its own Node...
        await node.request("GET", "/api/v1/nodes")
        await node.request("POST", "/api/v1/nodes", json=node_object("pi1"))
        patched = await node.request(
            "PATCH", "/api/v1/nodes/pi1/status", content_type="application/merge-patch+json",
            json={"status": {"capacity": {"cpu": "4"}}})
        assert patched["status"]["capacity"] == {"cpu": "4"}
        # ...but not another node's, and the refusal names who it is.
        with pytest.raises(Forbidden) as refused:
            await node.request("PATCH", "/api/v1/nodes/pi2/status",
                               content_type="application/merge-patch+json",
                               json={"status": {"capacity": {"cpu": "4"}}})
        assert 'User "system:node:pi1"' in refused.value.message
        with pytest.raises(Forbidden):
            await node.request("POST", "/api/v1/nodes", json=node_object("pi3"))


async def test_wrong_token_is_401(master: MasterHandle, tmp_path: Path) -> None:
    code, body = await post_join(master, {"token": "not-the-token", "node": "pi1"})
    assert code == 401
    assert (body["kind"], body["reason"]) == ("Status", "Unauthorized")
    with pytest.raises(JoinError, match="refused"):
        await join(master.url, "not-the-token", "pi1", tmp_path / "node")
    assert not (tmp_path / "node" / NODE_KUBECONFIG).exists()


@pytest.mark.parametrize("body", [
    {"token": "x"}, {"node": "pi1"}, {"token": 5, "node": "pi1"}, ["token"], "token"])
async def test_malformed_join_is_refused_without_the_token(master: MasterHandle,
                                                          body: Any) -> None:
    code, _ = await post_join(master, body)
    assert code in (400, 401)


@pytest.mark.parametrize("name", ["Pi_1", "-pi", "a" * 254, ""])
async def test_bad_node_name_is_422(master: MasterHandle, name: str) -> None:
    code, body = await post_join(master, {"token": join_token(master), "node": name})
    assert code == 422
    assert body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "node"


async def test_bad_name_refused_before_asking_the_master(master: MasterHandle,
                                                         tmp_path: Path) -> None:
    with pytest.raises(JoinError, match="not valid"):
        await join(master.url, join_token(master), "Bad_Name", tmp_path / "node")


async def test_rejoin_revokes_the_old_token(master: MasterHandle, tmp_path: Path) -> None:
    first = kubeconfig.load(await join(master.url, join_token(master), "pi1", tmp_path / "a"))
    # The same data dir: the kubeconfig is reused, no new join.
    again = await join(master.url, join_token(master), "pi1", tmp_path / "a")
    assert kubeconfig.load(again).token == first.token
    # A fresh data dir (an SD card re-imaged): a new credential; the old one is dead.
    second = kubeconfig.load(await join(master.url, join_token(master), "pi1", tmp_path / "b"))
    assert second.token != first.token
    async with Client(first) as old:
        with pytest.raises(Unauthorized):
            await old.request("GET", "/api/v1/nodes")
    async with Client(second) as new:
        await new.request("GET", "/api/v1/nodes")
    # Other nodes' and the admin's tokens are untouched.
    async with Client.from_kubeconfig(str(master.kubeconfig)) as admin:
        await admin.request("GET", "/api/v1/nodes")


async def test_expected_ca_fingerprint(master: MasterHandle, tmp_path: Path) -> None:
    ca = master.ca_file.read_text()
    with pytest.raises(JoinError, match="fingerprint"):
        await join(master.url, join_token(master), "pi1", tmp_path / "a", ca_sha256="00" * 32)
    assert not (tmp_path / "a" / NODE_KUBECONFIG).exists()
    path = await join(master.url, join_token(master), "pi1", tmp_path / "b",
                      ca_sha256=fingerprint(ca).upper())
    assert path.exists()


def test_check_answer() -> None:
    with pytest.raises(JoinError):
        check_answer({"token": "t", "ca": "not a certificate", "server": "https://m:6443"})
    with pytest.raises(JoinError):
        check_answer({"token": "", "ca": "x", "server": "https://m"})
    with pytest.raises(JoinError):
        check_answer({"token": "t", "ca": "x", "server": "http://m"})
    with pytest.raises(JoinError):
        check_answer(["token"])
