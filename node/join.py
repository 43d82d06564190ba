"""Joining a cluster with its join token: trade the token for this node's own credential.

`join()` POSTs {"token", "node"} to the master's /bramble/v1/join and writes the answer
(the node's bearer token, the cluster CA, the server URL) as `node.kubeconfig` in the
node's data dir. Every later request goes through that kubeconfig, so TLS is pinned to
the returned CA from then on.

Trust on first use, for now: at first contact the node has no CA to check the master
with, so that one request is made without certificate verification. Someone who can
intercept it learns the join token and can hand the node a CA of their own. Two things
narrow this until the mDNS join (HMAC proof of the token, later) replaces it:
- pass `ca_sha256` (the master prints its CA fingerprint) and the returned CA must match;
- before anything is written, the node makes a verified request with the returned CA,
  so a master that answered with a CA it holds no certificate from is refused.

Invariants: the data dir is 0700 and the kubeconfig 0600 (it holds a credential); an
existing kubeconfig is reused as is (no new join, so restarting a node never revokes its
credential); nothing is written unless the join fully succeeded.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import ssl
from pathlib import Path
from typing import Any

from bramble import kubeconfig
from bramble.client import Client, ClientError
from bramble.kube.errors import StatusError
from bramble.kube.names import is_dns1123_subdomain

log = logging.getLogger(__name__)

NODE_KUBECONFIG = "node.kubeconfig"
JOIN_PATH = "/bramble/v1/join"


class JoinError(Exception):
    """The join did not succeed; the message says why and what to do."""


def fingerprint(ca_pem: str) -> str:
    """sha256 of a PEM certificate's DER bytes, hex (as `pki.ca_fingerprint` prints it)."""
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(ca_pem)).hexdigest()


def check_answer(answer: Any, expected_ca_sha256: str | None = None) -> tuple[str, str, str]:
    """(token, ca_pem, server) from the master's answer, or JoinError (pure)."""
    if not isinstance(answer, dict):
        raise JoinError("the master's join answer is not a JSON object")
    token, ca, server = answer.get("token"), answer.get("ca"), answer.get("server")
    if not (isinstance(token, str) and token and isinstance(ca, str) and ca.strip()
            and isinstance(server, str) and server.startswith("https://")):
        raise JoinError("the master's join answer lacks a token, a CA or an https server URL")
    try:
        actual = fingerprint(ca)
    except (ValueError, ssl.SSLError) as err:
        raise JoinError(f"the CA the master sent is not a PEM certificate: {err}") from err
    if expected_ca_sha256 is not None and not hmac.compare_digest(
            actual, expected_ca_sha256.lower().replace(":", "")):
        raise JoinError(f"the master's CA has fingerprint {actual}, not the expected "
                        f"{expected_ca_sha256}: this is not the master you meant")
    return token, ca, server.rstrip("/")


async def join(master_url: str, join_token: str, name: str, data_dir: Path | str, *,
               ca_sha256: str | None = None, request_timeout: float = 30.0) -> Path:
    """The path of this node's kubeconfig, joining the cluster first if there is none.

    Raises JoinError when the master refuses (wrong token, bad name) or answers nonsense,
    and ConnectionFailed when it cannot be reached (worth retrying later)."""
    data_dir = Path(data_dir)
    path = data_dir / NODE_KUBECONFIG
    if await asyncio.to_thread(_prepare, data_dir, path):
        return path
    errors = is_dns1123_subdomain(name)
    if errors:
        raise JoinError(f"the node name {name!r} is not valid: {'; '.join(errors)}")

    first_contact = kubeconfig.KubeConfig(path=path, context="join",
                                          server=master_url.rstrip("/"), insecure=True)
    async with Client(first_contact, timeout=request_timeout) as unverified:
        try:
            answer = await unverified.request("POST", JOIN_PATH,
                                              json={"token": join_token, "node": name})
        except StatusError as err:
            raise JoinError(f"the master at {master_url} refused to let node {name!r} join: "
                            f"{err.message}") from err
    token, ca, server = check_answer(answer, ca_sha256)

    pinned = kubeconfig.KubeConfig(path=path, context="bramble", server=server,
                                   ca_data=ca.encode(), token=token)
    async with Client(pinned, timeout=request_timeout) as verified:
        try:
            await verified.request("GET", "/version")
        except (ClientError, StatusError) as err:
            raise JoinError(f"the master's answer does not hold up over TLS pinned to the CA "
                            f"it sent: {err}") from err
    config = kubeconfig.build(server, ca, token, user=f"system:node:{name}")
    await asyncio.to_thread(kubeconfig.write, path, config)
    log.info("joined the cluster", extra={"node": name, "server": server,
                                          "ca_sha256": fingerprint(ca)})
    return path


def _prepare(data_dir: Path, path: Path) -> bool:
    """Make the data dir private; True when a kubeconfig is already there."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if data_dir.stat().st_mode & 0o077:
        data_dir.chmod(0o700)
    return path.exists()
