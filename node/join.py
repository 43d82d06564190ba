"""Joining a cluster: trade proof of the join token (or a person's approval) for this node's
own credential, and pin the master's CA.

With the join token (`--token`, or baked into an SD-card image), nobody types anything: the
node and the master prove to each other that they hold the token, without sending it
(bramble/joinproof.py has the protocol). The first request goes over TLS that is not yet
verified - the node has no CA to check the master with - so it carries nothing secret; the
master's answer must prove the token over the node's fresh nonce and the CA it sends. From
then on every request is pinned to that CA, and the credential only ever crosses a pinned
connection. A rogue master (anyone answering mDNS, or a man in the middle) fails the proof
and is skipped; a rogue node fails the master's check and gets 401.

Without a token the node asks to join as pending: it keeps a random secret in its data dir
(`join-request.secret`, so a restart keeps the same request) and sends its hash; it prints
the request's fingerprint, computed over the CA it received; a person compares it with
`bramble nodes` on the master and runs `bramble nodes approve NAME`. The node's polls are
pinned to that CA and carry the secret, which is what the master hands the credential for.

`join(url, ...)` joins through one master URL (`bramble node --master URL`);
`join_discovered(discovery, ...)` tries the masters mDNS finds (node/discovery.py) until one
proves itself. The credential is written as `node.kubeconfig` (server: the URL that worked,
CA: the pinned one); every later request of the agent goes through it.

Invariants: the data dir is 0700 and the kubeconfig and request secret 0600; an existing
kubeconfig is reused as is (restarting a node never re-joins, so never revokes its
credential); nothing is written unless the join fully succeeded, except the pending
request's secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import logging
import ssl
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp

from bramble import joinproof, kubeconfig, mdns
from bramble.client import Client, ClientError, ConnectionFailed
from bramble.kube.errors import StatusError
from bramble.kube.names import is_dns1123_subdomain

from . import host as hostmod
from .discovery import NodeDiscovery, lan_choice

log = logging.getLogger(__name__)

NODE_KUBECONFIG = "node.kubeconfig"
REQUEST_SECRET = "join-request.secret"
CHALLENGE_PATH = joinproof.CHALLENGE_PATH
JOIN_PATH = joinproof.JOIN_PATH
REQUEST_PATH = joinproof.REQUEST_PATH
POLL_SECONDS = 3.0
# How often a node that has found no provable master says so (it keeps looking).
REPORT_SECONDS = 30.0


# Told the pending request's fingerprint (to print it, or advertise the node as pending).
OnPending = Callable[[str], Awaitable[None] | None]


class JoinError(Exception):
    """The join did not succeed; the message says why and what to do."""


class MasterNotProven(JoinError):
    """The answering master did not prove it holds the join token (or sent a CA other
    than the one expected): not this cluster's master, or this node's token is wrong."""


def fingerprint(ca_pem: str) -> str:
    """sha256 of a PEM certificate's DER bytes, hex (as `pki.ca_fingerprint` prints it)."""
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(ca_pem)).hexdigest()


def _ca_of(answer: Any, url: str) -> tuple[str, str]:
    ca = answer.get("ca") if isinstance(answer, dict) else None
    if not (isinstance(ca, str) and ca.strip()):
        raise MasterNotProven(f"the master at {url} sent no CA certificate")
    try:
        return ca, fingerprint(ca)
    except (ValueError, ssl.SSLError) as err:
        raise MasterNotProven(f"the CA the master at {url} sent is not a PEM certificate: "
                              f"{err}") from err


def check_challenge(answer: Any, url: str, token: str, node: str, node_nonce: str,
                    expected_ca_sha256: str | None = None) -> tuple[joinproof.Transcript, str]:
    """(transcript, CA PEM) when the master's challenge answer proves the token (pure)."""
    ca, ca_sha256 = _ca_of(answer, url)
    if expected_ca_sha256 is not None and not hmac.compare_digest(
            ca_sha256, joinproof.normalize_sha256(expected_ca_sha256)):
        raise MasterNotProven(f"the master at {url} has a CA with fingerprint {ca_sha256}, not "
                              f"the expected {expected_ca_sha256}: this is not the master you "
                              f"meant")
    master_nonce = answer.get("nonce")
    if not joinproof.is_hex64(master_nonce):
        raise MasterNotProven(f"the master at {url} sent no valid challenge nonce")
    transcript = joinproof.Transcript(node, node_nonce, master_nonce, ca_sha256)
    if not joinproof.verify(token, transcript, joinproof.MASTER, answer.get("proof")):
        raise MasterNotProven(
            f"the master at {url} could not prove it holds this cluster's join token: it is "
            f"another cluster's master or an impostor, or this node's token is wrong")
    return transcript, ca


def check_credential(answer: Any) -> str:
    """The node's bearer token from the master's final answer (pure)."""
    token = answer.get("token") if isinstance(answer, dict) else None
    if not (isinstance(token, str) and token):
        raise JoinError("the master's join answer holds no credential")
    return token


def _first_contact(url: str, data_dir: Path) -> kubeconfig.KubeConfig:
    return kubeconfig.KubeConfig(path=data_dir / NODE_KUBECONFIG, context="join",
                                 server=url, insecure=True)


def _pinned(url: str, data_dir: Path, ca: str) -> kubeconfig.KubeConfig:
    return kubeconfig.KubeConfig(path=data_dir / NODE_KUBECONFIG, context="join",
                                 server=url, ca_data=ca.encode())


async def _post(client: Client, path: str, body: dict[str, Any], url: str, name: str,
                pinned: bool) -> Any:
    try:
        return await client.request("POST", path, json=body)
    except StatusError as err:
        raise JoinError(f"the master at {url} refused to let node {name!r} join: "
                        f"{err.message}") from err
    except ClientError as err:
        if pinned and isinstance(err.__cause__, aiohttp.ClientSSLError):
            # The TLS handshake failed against the CA the master itself sent: it does not
            # hold that CA's key (say, it relays another master's proof).
            raise MasterNotProven(f"the master at {url} does not hold up over TLS pinned to "
                                  f"the CA it sent: {err}") from err
        raise


async def _with_token(url: str, token: str, name: str, data_dir: Path,
                      expected_ca_sha256: str | None, request_timeout: float) -> tuple[str, str]:
    node_nonce = joinproof.new_nonce()
    async with Client(_first_contact(url, data_dir), timeout=request_timeout) as unverified:
        answer = await _post(unverified, CHALLENGE_PATH, {"node": name, "nonce": node_nonce},
                             url, name, pinned=False)
    transcript, ca = check_challenge(answer, url, token, name, node_nonce, expected_ca_sha256)
    proof = joinproof.prove(token, transcript, joinproof.NODE)
    async with Client(_pinned(url, data_dir, ca), timeout=request_timeout) as verified:
        answer = await _post(verified, JOIN_PATH, {
            "node": name, "nonce": node_nonce, "challenge": transcript.master_nonce,
            "proof": proof}, url, name, pinned=True)
    return check_credential(answer), ca


def _request_secret(data_dir: Path) -> str:
    path = data_dir / REQUEST_SECRET
    try:
        secret = path.read_text().strip()
        if joinproof.is_hex64(secret):
            return secret
    except FileNotFoundError:
        pass
    secret = joinproof.new_secret()
    kubeconfig.atomic_write(path, (secret + "\n").encode())
    return secret


async def _pending(url: str, name: str, data_dir: Path, expected_ca_sha256: str | None,
                   request_timeout: float, poll: float,
                   on_pending: OnPending | None) -> tuple[str, str]:
    secret = await asyncio.to_thread(_request_secret, data_dir)
    key = joinproof.key_of(secret)
    async with Client(_first_contact(url, data_dir), timeout=request_timeout) as unverified:
        answer = await _post(unverified, REQUEST_PATH, {"node": name, "key": key}, url, name,
                             pinned=False)
    ca, ca_sha256 = _ca_of(answer, url)
    if expected_ca_sha256 is not None and not hmac.compare_digest(
            ca_sha256, joinproof.normalize_sha256(expected_ca_sha256)):
        raise MasterNotProven(f"the master at {url} has a CA with fingerprint {ca_sha256}, not "
                              f"the expected {expected_ca_sha256}")
    code = joinproof.pending_fingerprint(name, key, ca_sha256)
    log.warning("waiting for a person to approve this node at the master: check that "
                "`bramble nodes` there shows the same fingerprint, then run "
                f"`bramble nodes approve {name}`",
                extra={"node": name, "fingerprint": code, "master": url})
    if on_pending is not None:
        result = on_pending(code)
        if inspect.isawaitable(result):
            await result
    async with Client(_pinned(url, data_dir, ca), timeout=request_timeout) as verified:
        while True:
            answer = await _post(verified, REQUEST_PATH, {"node": name, "secret": secret},
                                 url, name, pinned=True)
            if isinstance(answer, dict) and answer.get("token"):
                await asyncio.to_thread((data_dir / REQUEST_SECRET).unlink, missing_ok=True)
                return check_credential(answer), ca
            await asyncio.sleep(poll)


async def join(master_url: str, join_token: str, name: str, data_dir: Path | str, *,
               ca_sha256: str | None = None, request_timeout: float = 30.0,
               poll: float = POLL_SECONDS, on_pending: OnPending | None = None) -> Path:
    """The path of this node's kubeconfig, joining through `master_url` first if there is
    none: with the join token when given, else as a pending node (waits for approval).

    Raises MasterNotProven for a master that is not the cluster's, JoinError when the
    master refuses, and ConnectionFailed when it cannot be reached (worth retrying)."""
    data_dir = Path(data_dir)
    path = data_dir / NODE_KUBECONFIG
    if await asyncio.to_thread(_prepare, data_dir, path):
        return path
    _check_name(name)
    url = master_url.rstrip("/")
    if join_token:
        credential, ca = await _with_token(url, join_token, name, data_dir, ca_sha256,
                                           request_timeout)
    else:
        credential, ca = await _pending(url, name, data_dir, ca_sha256, request_timeout,
                                        poll, on_pending)
    config = kubeconfig.build(url, ca, credential, user=f"system:node:{name}")
    await asyncio.to_thread(kubeconfig.write, path, config)
    log.info("joined the cluster", extra={"node": name, "server": url,
                                          "ca_sha256": fingerprint(ca)})
    return path


async def join_discovered(discovery: Any, join_token: str, name: str, data_dir: Path | str,
                          *, cluster: str = "", request_timeout: float = 10.0,
                          poll: float = POLL_SECONDS, report_every: float = REPORT_SECONDS,
                          on_pending: OnPending | None = None) -> Path:
    """Join through the masters `discovery` (a node.discovery.NodeDiscovery) finds, until
    one proves itself. Masters that fail are skipped until their record changes; without
    a token, several clusters on the LAN are an error (the node cannot tell which one a
    person meant: --cluster ID or --master URL says it)."""
    data_dir = Path(data_dir)
    path = data_dir / NODE_KUBECONFIG
    if await asyncio.to_thread(_prepare, data_dir, path):
        return path
    _check_name(name)
    refused: set[tuple[str, str]] = set()
    while True:
        unreachable = False
        candidates = [m for m in discovery.masters(cluster)
                      if (m.instance, m.ca_sha256) not in refused]
        clusters = sorted({m.cluster for m in candidates})
        if not join_token and len(clusters) > 1:
            raise JoinError(f"several bramble clusters are on this LAN ({', '.join(clusters)})"
                            f" and this node has no join token to tell them apart: start it "
                            f"with --cluster ID or --master URL")
        for master in candidates:
            for url in master.urls():
                try:
                    return await join(url, join_token, name, data_dir,
                                      ca_sha256=master.ca_sha256,
                                      request_timeout=request_timeout, poll=poll,
                                      on_pending=on_pending)
                except ConnectionFailed as err:
                    log.info("cannot reach a master address; trying the next",
                             extra={"url": url, "error": str(err)})
                    unreachable = True
                    continue
                except JoinError as err:
                    log.warning("ignoring a master on the LAN", extra={
                        "instance": master.instance, "url": url, "error": str(err)})
                    refused.add((master.instance, master.ca_sha256))
                    break
        if not candidates:
            log.info("looking for the bramble master on the LAN",
                     extra={"node": name, "cluster": cluster or "any"})
        # An unreachable master (still starting, a route not yet up) is tried again soon.
        await discovery.wait_changed(poll if unreachable else report_every)


def _check_name(name: str) -> None:
    errors = is_dns1123_subdomain(name)
    if errors:
        raise JoinError(f"the node name {name!r} is not valid: {'; '.join(errors)}")


def _prepare(data_dir: Path, path: Path) -> bool:
    """Make the data dir private; True when a kubeconfig is already there."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if data_dir.stat().st_mode & 0o077:
        data_dir.chmod(0o700)
    return path.exists()


async def connect(master: str, token: str, name: str, data_dir: Path, stack: AsyncExitStack,
                  *, cluster: str = "", port: int = 0, lan: bool = True) -> Path:
    """The agent's start: this node's kubeconfig, joining first if needed, with the node
    advertised on the LAN for the agent's life (closed by `stack`).

    With `master` (or an existing kubeconfig) the node joins through that URL and is
    advertised only on the interface it reaches the master from (nowhere for loopback);
    without, it advertises on every LAN interface and joins the master mDNS finds."""
    path = data_dir / NODE_KUBECONFIG
    existing = await asyncio.to_thread(path.exists)
    url = master
    if not url and existing:
        url = (await asyncio.to_thread(kubeconfig.load, path)).server
    if not url and not lan:
        raise JoinError("without mDNS (--no-mdns) the node cannot find the master: give "
                        "--master URL")
    discovery: NodeDiscovery | None = None
    if lan:
        host = url.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]") if url else ""
        source = await asyncio.to_thread(hostmod.source_address, host) if host else None
        choice = await asyncio.to_thread(lan_choice, source) if (source or not url) else None
        if choice:
            discovery = NodeDiscovery(name, choice, port=port, browse=not url)
            try:
                await discovery.start()
            except mdns.DiscoveryError as err:  # mDNS is optional when a URL is known
                if not url:
                    raise JoinError(f"cannot look for the master on the LAN: {err}; give "
                                    f"--master URL") from err
                log.warning("cannot advertise the node on the LAN",
                            extra={"error": str(err)})
                discovery = None
            else:
                stack.push_async_callback(discovery.aclose)
        elif not url:
            raise JoinError("no LAN interface to look for the master on (only loopback or "
                            "the pod bridge is up): give --master URL")

    async def pending(code: str) -> None:
        if discovery is not None:
            await discovery.set_state("pending")

    if existing:
        kube = path
    elif url:
        kube = await join(url, token, name, data_dir, on_pending=pending)
    else:
        assert discovery is not None
        kube = await join_discovered(discovery, token, name, data_dir, cluster=cluster,
                                     on_pending=pending)
    if discovery is not None:
        await discovery.set_state("joined")
    return kube
