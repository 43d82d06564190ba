"""Joining: the HMAC handshake over the join token, pending nodes and approval, removal,
token rotation, and what a rogue node or a rogue master gets (nothing)."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bramble import joinproof, kubeconfig
from bramble.client import Client
from bramble.kube.errors import Conflict, Forbidden, NotFound, Unauthorized
from bramble.master import pki
from bramble.node.join import (
    NODE_KUBECONFIG,
    REQUEST_SECRET,
    JoinError,
    MasterNotProven,
    check_credential,
    fingerprint,
    join,
)
from tests.conftest import MasterHandle, running_master

PENDING = "/bramble/v1/pending-nodes"
TIMEOUT = 30.0  # a guard against hangs, never a speed expectation


def join_token(master: MasterHandle) -> str:
    return master.running.credentials.join_token  # type: ignore[union-attr]


async def post(master: MasterHandle, path: str, body: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.post(
            f"{master.url}{path}", json=body, ssl=master.ssl_context()) as r:
        return r.status, await r.json()


def admin(master: MasterHandle) -> Client:
    return Client.from_kubeconfig(str(master.kubeconfig))


def node_object(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}


async def eventually(check: Any, within: float = TIMEOUT) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


# --- with the join token ---------------------------------------------------------------------

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

    async with admin(master) as a:
        await a.request("POST", "/api/v1/nodes", json=node_object("pi2"))
    async with Client(cfg) as node:
        # It authenticates (reading Nodes is allowed) and may write its own Node...
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


async def test_a_node_with_the_wrong_token_is_refused_and_writes_nothing(
        master: MasterHandle, tmp_path: Path) -> None:
    # The node checks the master's proof first: with another token it cannot verify, so
    # it stops there (and never sends a proof of its own).
    with pytest.raises(MasterNotProven, match="could not prove"):
        await join(master.url, "not-the-token", "pi1", tmp_path / "node")
    assert not (tmp_path / "node" / NODE_KUBECONFIG).exists()


async def test_a_rogue_node_without_the_token_gets_401(master: MasterHandle) -> None:
    nonce = joinproof.new_nonce()
    code, answer = await post(master, joinproof.CHALLENGE_PATH,
                              {"node": "rogue", "nonce": nonce})
    assert code == 200 and set(answer) == {"nonce", "ca", "proof"}
    assert join_token(master) not in str(answer)  # the token never crosses the wire
    transcript = joinproof.Transcript("rogue", nonce, answer["nonce"], fingerprint(answer["ca"]))
    for proof in ("00" * 32, joinproof.prove("guessed-token", transcript, joinproof.NODE),
                  answer["proof"]):  # reflecting the master's own proof back fails too
        code, body = await post(master, joinproof.JOIN_PATH, {
            "node": "rogue", "nonce": nonce, "challenge": answer["nonce"], "proof": proof})
        assert code == 401, body
        assert body["reason"] == "Unauthorized"


async def test_the_token_itself_is_never_accepted_on_the_wire(master: MasterHandle) -> None:
    # The old body (the token in plain text) is refused: only proofs count.
    code, body = await post(master, joinproof.JOIN_PATH,
                            {"token": join_token(master), "node": "pi1"})
    assert code == 401
    assert (body["kind"], body["reason"]) == ("Status", "Unauthorized")


async def test_a_challenge_is_used_once(master: MasterHandle) -> None:
    token = join_token(master)
    nonce = joinproof.new_nonce()
    _, answer = await post(master, joinproof.CHALLENGE_PATH, {"node": "pi1", "nonce": nonce})
    transcript = joinproof.Transcript("pi1", nonce, answer["nonce"], fingerprint(answer["ca"]))
    assert joinproof.verify(token, transcript, joinproof.MASTER, answer["proof"])
    body = {"node": "pi1", "nonce": nonce, "challenge": answer["nonce"],
            "proof": joinproof.prove(token, transcript, joinproof.NODE)}
    code, first = await post(master, joinproof.JOIN_PATH, body)
    assert code == 200 and check_credential(first)
    code, _ = await post(master, joinproof.JOIN_PATH, body)  # a replay
    assert code == 401
    # Nor may a proof for one name be used for another.
    _, answer = await post(master, joinproof.CHALLENGE_PATH, {"node": "pi1", "nonce": nonce})
    transcript = joinproof.Transcript("pi1", nonce, answer["nonce"], fingerprint(answer["ca"]))
    code, _ = await post(master, joinproof.JOIN_PATH, {
        "node": "pi9", "nonce": nonce, "challenge": answer["nonce"],
        "proof": joinproof.prove(token, transcript, joinproof.NODE)})
    assert code == 401


@pytest.mark.parametrize(("path", "body"), [
    (joinproof.CHALLENGE_PATH, {"node": "pi1"}),  # no nonce
    (joinproof.CHALLENGE_PATH, {"node": "pi1", "nonce": "short"}),
    (joinproof.CHALLENGE_PATH, ["node"]),
    (joinproof.CHALLENGE_PATH, "node"),
    (joinproof.JOIN_PATH, {"node": "pi1"}),
    (joinproof.JOIN_PATH, {"token": 5, "node": "pi1"}),
    (joinproof.REQUEST_PATH, {"node": "pi1"}),
    (joinproof.REQUEST_PATH, {"node": "pi1", "key": "zz"}),
    (joinproof.REQUEST_PATH, {"node": "pi1", "secret": 7}),
])
async def test_malformed_join_requests_are_refused(master: MasterHandle, path: str,
                                                   body: Any) -> None:
    code, answer = await post(master, path, body)
    assert code in (400, 401), answer


@pytest.mark.parametrize("name", ["Pi_1", "-pi", "a" * 254, ""])
async def test_bad_node_name_is_422(master: MasterHandle, name: str) -> None:
    code, body = await post(master, joinproof.CHALLENGE_PATH,
                            {"node": name, "nonce": joinproof.new_nonce()})
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
    async with admin(master) as a:  # the admin's token is untouched
        await a.request("GET", "/api/v1/nodes")


async def test_expected_ca_fingerprint(master: MasterHandle, tmp_path: Path) -> None:
    ca = master.ca_file.read_text()
    with pytest.raises(JoinError, match="fingerprint"):
        await join(master.url, join_token(master), "pi1", tmp_path / "a", ca_sha256="00" * 32)
    assert not (tmp_path / "a" / NODE_KUBECONFIG).exists()
    path = await join(master.url, join_token(master), "pi1", tmp_path / "b",
                      ca_sha256=fingerprint(ca).upper())
    assert path.exists()


def test_check_credential() -> None:
    assert check_credential({"token": "t", "ca": "x"}) == "t"
    for answer in ({"token": ""}, ["token"], {"ca": "x"}, None):
        with pytest.raises(JoinError):
            check_credential(answer)


# --- rogue masters -----------------------------------------------------------------------------

async def test_another_clusters_master_cannot_capture_the_node(
        master: MasterHandle, tmp_path: Path) -> None:
    async with running_master(tmp_path / "rogue-master") as rogue:
        with pytest.raises(MasterNotProven):
            await join(rogue.url, join_token(master), "pi1", tmp_path / "node")
        assert not (tmp_path / "node" / NODE_KUBECONFIG).exists()
        async with admin(rogue) as a:  # the rogue learned nothing and admitted nobody
            assert (await a.request("GET", PENDING))["items"] == []


async def test_a_relay_of_the_real_masters_proof_cannot_capture_the_node(
        master: MasterHandle, tmp_path: Path) -> None:
    """A rogue that forwards the challenge to the real master gets a valid proof - for the
    real master's CA. The node then pins that CA, and the rogue, holding no certificate
    from it, fails the TLS handshake: the node's proof and credential never reach it."""
    async with running_master(tmp_path / "rogue-master") as other:
        creds = other.running.credentials  # type: ignore[union-attr]
        reached_join: list[Any] = []

        async def relay_challenge(request: web.Request) -> web.Response:
            async with aiohttp.ClientSession() as s, s.post(
                    f"{master.url}{joinproof.CHALLENGE_PATH}", json=await request.json(),
                    ssl=False) as r:
                return web.json_response(await r.json(), status=r.status)

        async def capture_join(request: web.Request) -> web.Response:
            reached_join.append(await request.json())
            return web.json_response({"token": "captured"})

        app = web.Application()
        app.router.add_post(joinproof.CHALLENGE_PATH, relay_challenge)
        app.router.add_post(joinproof.JOIN_PATH, capture_join)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=pki.server_ssl_context(creds))
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
        try:
            with pytest.raises(MasterNotProven, match="pinned"):
                await join(f"https://127.0.0.1:{port}", join_token(master), "pi1",
                           tmp_path / "node")
        finally:
            await runner.cleanup()
        assert reached_join == []
        assert not (tmp_path / "node" / NODE_KUBECONFIG).exists()


# --- pending nodes and approval ------------------------------------------------------------------

async def pending_items(a: Client) -> list[dict[str, Any]]:
    return (await a.request("GET", PENDING))["items"]


async def test_a_node_without_the_token_waits_for_approval(
        master: MasterHandle, tmp_path: Path) -> None:
    printed: list[str] = []
    data_dir = tmp_path / "node"
    task = asyncio.create_task(join(master.url, "", "pi4", data_dir, poll=0.05,
                                    on_pending=printed.append), name="pending-join")
    try:
        async with admin(master) as a:
            items = await eventually(lambda: pending_items(a))
            assert [(i["name"], i["approved"]) for i in items] == [("pi4", False)]
            # What the master lists is what the node printed: a person compares them.
            assert printed and items[0]["fingerprint"] == printed[0]
            assert not task.done()
            assert not (data_dir / NODE_KUBECONFIG).exists()
            # The secret behind the request stays on the node (0600), not at the master.
            secret = data_dir / REQUEST_SECRET
            assert stat.S_IMODE(secret.stat().st_mode) == 0o600
            assert secret.read_text().strip() not in (master.data_dir /
                                                      "pending-nodes.json").read_text()

            approved = await a.request("POST", f"{PENDING}/pi4/approve", json={})
            assert approved["fingerprint"] == printed[0]
            path = await asyncio.wait_for(task, TIMEOUT)
            assert await pending_items(a) == []  # a credential is handed out once
        cfg = kubeconfig.load(path)
        assert cfg.ca_data is not None and fingerprint(cfg.ca_data.decode()) == \
            master.running.credentials.ca_fingerprint()  # type: ignore[union-attr]
        assert not (data_dir / REQUEST_SECRET).exists()
        async with Client(cfg) as node:
            await node.request("POST", "/api/v1/nodes", json=node_object("pi4"))
            with pytest.raises(Forbidden):
                await node.request("POST", "/api/v1/nodes", json=node_object("pi5"))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_key_alone_never_collects_the_credential(master: MasterHandle) -> None:
    secret = joinproof.new_secret()
    key = joinproof.key_of(secret)
    code, answer = await post(master, joinproof.REQUEST_PATH, {"node": "pi4", "key": key})
    assert code == 202 and answer["state"] == "Pending"
    async with admin(master) as a:
        await a.request("POST", f"{PENDING}/pi4/approve")
    # Someone who saw the (unverified) first request knows the key, not the secret.
    code, answer = await post(master, joinproof.REQUEST_PATH, {"node": "pi4", "key": key})
    assert code == 202 and "token" not in answer
    code, answer = await post(master, joinproof.REQUEST_PATH,
                              {"node": "pi4", "secret": joinproof.new_secret()})
    assert code == 202 and "token" not in answer
    code, answer = await post(master, joinproof.REQUEST_PATH, {"node": "pi4", "secret": secret})
    assert code == 200 and answer["token"]


async def test_two_requests_for_one_name_need_the_fingerprint(
        master: MasterHandle, tmp_path: Path) -> None:
    printed: dict[str, list[str]] = {"real": [], "impostor": []}
    tasks = {who: asyncio.create_task(join(master.url, "", "pi4", tmp_path / who, poll=0.05,
                                           on_pending=printed[who].append), name=who)
             for who in printed}
    try:
        async with admin(master) as a:
            await eventually(lambda: _count(a, 2))
            with pytest.raises(Conflict, match="--fingerprint"):
                await a.request("POST", f"{PENDING}/pi4/approve")
            with pytest.raises(NotFound, match="fingerprint"):
                await a.request("POST", f"{PENDING}/pi4/approve",
                                json={"fingerprint": "AAAA-AAAA-AAAA"})
            # As typed by a person: lower case, no dashes.
            typed = printed["real"][0].replace("-", "").lower()
            await a.request("POST", f"{PENDING}/pi4/approve", json={"fingerprint": typed})
            await asyncio.wait_for(tasks["real"], TIMEOUT)
            assert not tasks["impostor"].done()
            assert [i["fingerprint"] for i in await pending_items(a)] == printed["impostor"]
            # Removing the name drops the impostor's request as well.
            removed = await a.request("DELETE", "/bramble/v1/nodes/pi4")
            assert removed["requestsDropped"] == 1 and removed["credentialsRevoked"] == 1
            assert await pending_items(a) == []
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)


async def _count(a: Client, n: int) -> bool:
    return len(await pending_items(a)) == n


async def test_an_approval_survives_a_master_restart(tmp_path: Path) -> None:
    secret = joinproof.new_secret()
    async with running_master(tmp_path / "m") as m:
        code, _ = await post(m, joinproof.REQUEST_PATH,
                             {"node": "pi4", "key": joinproof.key_of(secret)})
        assert code == 202
        async with admin(m) as a:
            await a.request("POST", f"{PENDING}/pi4/approve")
    async with running_master(tmp_path / "m") as m:
        code, answer = await post(m, joinproof.REQUEST_PATH, {"node": "pi4", "secret": secret})
        assert code == 200
        async with Client(kubeconfig.KubeConfig(path=tmp_path, context="x", server=m.url,
                                                ca_data=m.ca_file.read_bytes(),
                                                token=answer["token"])) as node:
            await node.request("GET", "/api/v1/nodes")


async def test_approving_an_unknown_node_is_404(master: MasterHandle) -> None:
    async with admin(master) as a:
        with pytest.raises(NotFound, match="has not asked to join"):
            await a.request("POST", f"{PENDING}/ghost/approve")


# --- removal, rotation, and who may do it ------------------------------------------------------

async def test_remove_revokes_the_credential_and_deletes_the_node(
        master: MasterHandle, tmp_path: Path) -> None:
    cfg = kubeconfig.load(await join(master.url, join_token(master), "pi1", tmp_path / "n"))
    async with Client(cfg) as node:
        await node.request("POST", "/api/v1/nodes", json=node_object("pi1"))
        await node.request("POST", "/bramble/v1/nodes/pi1/endpoint", json={
            "address": "127.0.0.1", "port": 10250, "token": "t" * 40, "certSha256": "ab" * 32})
        endpoints = master.data_dir / "node-endpoints.json"
        assert "pi1" in json.loads(endpoints.read_text())
        async with admin(master) as a:
            removed = await a.request("DELETE", "/bramble/v1/nodes/pi1")
            assert json.loads(endpoints.read_text()) == {}  # its agent token is gone too
            assert removed == {"name": "pi1", "credentialsRevoked": 1, "requestsDropped": 0,
                               "nodeDeleted": True}
            with pytest.raises(NotFound):
                await a.request("GET", "/api/v1/nodes/pi1")
            with pytest.raises(NotFound, match="not a member"):
                await a.request("DELETE", "/bramble/v1/nodes/pi1")
        with pytest.raises(Unauthorized):  # at once, without a restart
            await node.request("GET", "/api/v1/nodes")


async def test_token_rotation(master: MasterHandle, tmp_path: Path) -> None:
    old = join_token(master)
    joined = kubeconfig.load(await join(master.url, old, "pi1", tmp_path / "a"))
    async with admin(master) as a:
        rotated = await a.request("POST", "/bramble/v1/join-token/rotate")
    new = rotated["token"]
    assert new != old
    assert (master.data_dir / "join-token").read_text().strip() == new
    with pytest.raises(MasterNotProven):
        await join(master.url, old, "pi2", tmp_path / "b")
    await join(master.url, new, "pi2", tmp_path / "c")
    async with Client(joined) as node:  # nodes that joined keep their credentials
        await node.request("GET", "/api/v1/nodes")
    # The join token is no bearer credential of any use, old or new.
    for token in (old, new):
        cfg = kubeconfig.KubeConfig(path=tmp_path, context="x", server=master.url,
                                    ca_data=master.ca_file.read_bytes(), token=token)
        async with Client(cfg) as c:
            with pytest.raises((Unauthorized, Forbidden)):
                await c.request("GET", "/api/v1/nodes")


async def test_only_the_admin_manages_membership(master: MasterHandle, tmp_path: Path) -> None:
    cfg = kubeconfig.load(await join(master.url, join_token(master), "pi1", tmp_path / "n"))
    async with Client(cfg) as node:
        for method, path in (("GET", PENDING), ("POST", f"{PENDING}/pi2/approve"),
                             ("GET", "/bramble/v1/discovered-nodes"),
                             ("DELETE", "/bramble/v1/nodes/pi2"),
                             ("DELETE", "/bramble/v1/nodes/pi1"),
                             ("POST", "/bramble/v1/join-token/rotate")):
            with pytest.raises(Forbidden):
                await node.request(method, path)
    async with aiohttp.ClientSession() as s, s.get(f"{master.url}{PENDING}",
                                                   ssl=master.ssl_context()) as r:
        assert r.status == 401
    async with admin(master) as a:
        seen = await a.request("GET", "/bramble/v1/discovered-nodes")
        assert seen["items"] == [] and seen["mdns"] is False  # mDNS is off in tests


async def test_an_agent_waiting_for_approval_stops_when_asked(
        master: MasterHandle, tmp_path: Path) -> None:
    from bramble.node.agent import NodeConfig, serve

    shutdown = asyncio.Event()
    agent = asyncio.create_task(serve(NodeConfig(data_dir=tmp_path / "n", master=master.url,
                                                 name="pi6"), shutdown), name="agent")
    try:
        async with admin(master) as a:
            items = await eventually(lambda: pending_items(a))
            assert [i["name"] for i in items] == ["pi6"]
        shutdown.set()  # SIGTERM while the agent waits for a person
        await asyncio.wait_for(agent, TIMEOUT)
        assert not (tmp_path / "n" / NODE_KUBECONFIG).exists()
    finally:
        agent.cancel()
        await asyncio.gather(agent, return_exceptions=True)
