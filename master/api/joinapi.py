"""The master's side of cluster membership: joining, pending nodes, removal, token rotation.

Public (no bearer token; bramble/joinproof.py describes the handshake):
- `POST /bramble/v1/join/challenge` {node, nonce} -> {nonce, ca, proof}: the master proves
  it holds the join token over the node's nonce, its own fresh nonce and its CA.
- `POST /bramble/v1/join` {node, nonce, challenge, proof} -> {token, ca}: the node proves
  it too; the answer is the node's own credential (user system:node:NAME, group
  system:nodes). Joining again replaces (revokes) that node's older credential.
- `POST /bramble/v1/join/request` {node, key} or {node, secret} -> 202 {state: Pending, ca}
  or, once a person approved it and the node shows the secret behind the key, 200
  {token, ca}: a node without the token asks to join.

Admin only (the authorizer decides; resources in the "bramble" group):
- `GET /bramble/v1/pending-nodes`, `POST /bramble/v1/pending-nodes/{name}/approve`
  {fingerprint?} (`bramble nodes`, `bramble nodes approve NAME`);
- `GET /bramble/v1/discovered-nodes`: node agents seen on the LAN (master/discovery.py);
- `DELETE /bramble/v1/nodes/{name}` (`bramble nodes remove NAME`): revokes the node's
  credential, forgets its pending requests, deletes its Node and Lease;
- `POST /bramble/v1/join-token/rotate` (`bramble token rotate`): a new join token.

Invariants: challenges live in memory, are used once and expire after a minute; at most
MAX_CHALLENGES are outstanding (the oldest go). Pending requests are kept in
`pending-nodes.json` (0600) so an approval survives a restart; a request not polled for
an hour goes unless approved, an approved one not collected within a day goes; at most
MAX_PENDING exist. The token table is rewritten under one lock (read-modify-write) and
the running authenticator reloaded after every change, so a revoked credential stops
working at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from bramble import joinproof, kubeconfig
from bramble.kube.errors import (
    BadRequest,
    Conflict,
    Invalid,
    NotFound,
    StatusError,
    Unauthorized,
    invalid,
)
from bramble.kube.names import is_dns1123_subdomain

from .. import pki
from . import auth
from .encoding import read_json
from .proxy import PROXY_KEY
from .rest import ObjectAPI, Target

log = logging.getLogger(__name__)

CHALLENGE_PATH = joinproof.CHALLENGE_PATH
JOIN_PATH = joinproof.JOIN_PATH
REQUEST_PATH = joinproof.REQUEST_PATH
PUBLIC_PATHS = frozenset({CHALLENGE_PATH, JOIN_PATH, REQUEST_PATH})

PENDING_PATH = "/bramble/v1/pending-nodes"
APPROVE_PATH = "/bramble/v1/pending-nodes/{name}/approve"
DISCOVERED_PATH = "/bramble/v1/discovered-nodes"
MEMBER_PATH = "/bramble/v1/nodes/{name}"
ROTATE_PATH = "/bramble/v1/join-token/rotate"

PENDING_FILE = "pending-nodes.json"
CHALLENGE_TTL = 60.0
MAX_CHALLENGES = 256
PENDING_IDLE = 3600.0  # an unapproved request not polled for this long goes
APPROVED_TTL = 86400.0  # an approval not collected within this long goes
MAX_PENDING = 64
MAX_BODY = 64 * 1024  # join bodies are a few hundred bytes

Obj = dict[str, Any]


class TooManyRequests(StatusError):
    code, reason = 429, "TooManyRequests"


def _rfc3339(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- pending requests (pure state; the file is read and written by Membership) -----------

@dataclass
class PendingRequest:
    node: str
    key: str  # sha256(secret), hex
    fingerprint: str
    peer: str
    requested: str  # RFC 3339
    approved: bool = False
    touched: float = field(default=0.0, compare=False)  # monotonic; not persisted

    def as_json(self) -> Obj:
        return {"name": self.node, "fingerprint": self.fingerprint, "peer": self.peer,
                "requested": self.requested, "approved": self.approved}


class PendingBook:
    """Pending join requests by (node, key). Several keys may ask for one name (a
    re-imaged Pi, or an impostor): a person then picks one by fingerprint."""

    def __init__(self, ca_sha256: str, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.ca_sha256 = ca_sha256
        self.clock = clock
        self.wall = wall
        self._items: dict[tuple[str, str], PendingRequest] = {}

    def load(self, raw: Any) -> None:
        now = self.clock()
        for entry in raw if isinstance(raw, list) else []:
            try:
                req = PendingRequest(node=entry["node"], key=entry["key"],
                                     fingerprint=joinproof.pending_fingerprint(
                                         entry["node"], entry["key"], self.ca_sha256),
                                     peer=str(entry.get("peer", "")),
                                     requested=str(entry.get("requested", "")),
                                     approved=bool(entry.get("approved")), touched=now)
            except (KeyError, TypeError):
                continue
            if joinproof.is_hex64(req.key) and not is_dns1123_subdomain(req.node):
                self._items[(req.node, req.key)] = req

    def dump(self) -> bytes:
        rows = [{k: v for k, v in asdict(r).items() if k not in ("touched", "fingerprint")}
                for r in self.items()]
        return orjson.dumps(rows, option=orjson.OPT_INDENT_2)

    def items(self) -> list[PendingRequest]:
        return sorted(self._items.values(), key=lambda r: (r.node, r.requested, r.key))

    def expire(self) -> bool:
        """Drop stale requests; True when something went."""
        now = self.clock()
        stale = [k for k, r in self._items.items()
                 if now - r.touched > (APPROVED_TTL if r.approved else PENDING_IDLE)]
        for k in stale:
            del self._items[k]
        return bool(stale)

    def request(self, node: str, key: str, peer: str) -> tuple[PendingRequest, bool]:
        """Record or refresh a request; (request, whether the book changed)."""
        existing = self._items.get((node, key))
        if existing is not None:
            existing.touched = self.clock()
            return existing, False
        if len(self._items) >= MAX_PENDING:
            raise TooManyRequests(f"{MAX_PENDING} nodes already wait for approval: approve "
                                  f"or remove some (`bramble nodes`)", retry_after=60)
        req = PendingRequest(node=node, key=key, peer=peer,
                             fingerprint=joinproof.pending_fingerprint(node, key,
                                                                       self.ca_sha256),
                             requested=_rfc3339(self.wall()), touched=self.clock())
        self._items[(node, key)] = req
        return req, True

    def approve(self, node: str, fingerprint: str = "") -> PendingRequest:
        """Approve the request of `node` (the one with `fingerprint`, when given; it is
        required when several requests share the name)."""
        candidates = [r for r in self._items.values() if r.node == node]
        if fingerprint:
            candidates = [r for r in candidates
                          if joinproof.same_fingerprint(r.fingerprint, fingerprint)]
            if not candidates:
                raise NotFound(f'no join request of node "{node}" has fingerprint '
                               f"{fingerprint}: compare it with what the node printed")
        if not candidates:
            raise NotFound(f'node "{node}" has not asked to join', kind="pendingnodes",
                           group="bramble", name=node)
        if len(candidates) > 1:
            listed = ", ".join(r.fingerprint for r in candidates)
            raise Conflict(f'{len(candidates)} join requests are named "{node}" '
                           f"(fingerprints {listed}): approve the one the node printed with "
                           f"--fingerprint", kind="pendingnodes", group="bramble", name=node)
        req = candidates[0]
        req.approved = True
        req.touched = self.clock()
        return req

    def take(self, node: str, key: str) -> PendingRequest | None:
        """The approved request of (node, key), removed (a credential is issued once)."""
        req = self._items.get((node, key))
        if req is None or not req.approved:
            return None
        del self._items[(node, key)]
        return req

    def drop(self, node: str) -> int:
        gone = [k for k in self._items if k[0] == node]
        for k in gone:
            del self._items[k]
        return len(gone)


# --- the handlers ----------------------------------------------------------------------------

@dataclass
class _Challenge:
    node: str
    node_nonce: str
    expires: float


async def _read_json(request: web.Request) -> Any:
    body = await read_json(request, MAX_BODY, "the request body is too large for a join request")
    if not isinstance(body, dict):
        raise BadRequest("a join request is a JSON object")
    return body


def _node_name(body: Obj) -> str:
    node = body.get("node")
    problems = is_dns1123_subdomain(node) if isinstance(node, str) else ["must be a string"]
    if problems:
        raise Invalid("Node", node if isinstance(node, str) else "",
                      [invalid("node", node, "; ".join(problems))])
    return node  # type: ignore[return-value]


def _hex64(body: Obj, key: str) -> str:
    value = body.get(key)
    if not joinproof.is_hex64(value):
        raise BadRequest(f"{key} must be 64 hex digits")
    return value  # type: ignore[return-value]


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(value), status=status,
                        content_type="application/json")


def _token_table(data_dir: Path) -> dict[str, auth.Identity]:
    return {digest: auth.Identity(i.user, tuple(i.groups))
            for digest, i in pki.load_token_table(data_dir).items()}


def _read_pending(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return []
    except (OSError, orjson.JSONDecodeError) as err:
        log.warning("ignoring an unreadable pending-nodes file", extra={
            "path": str(path), "error": str(err)})
        return []


class Membership:
    """Who may be a node: the join token, challenges, pending requests, revocation."""

    def __init__(self, api: ObjectAPI, authn: auth.Authenticator,
                 identity_key: web.RequestKey[auth.Identity], data_dir: Path, ca_pem: str,
                 join_token: str, seen: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.authn = authn
        self.identity_key = identity_key
        self.data_dir = data_dir
        self.ca_pem = ca_pem
        self.ca_sha256 = pki.ca_fingerprint(ca_pem)
        self._join_token = join_token
        self.seen = seen  # master.discovery.SeenNodes, when mDNS runs
        self.clock = clock
        self.pending = PendingBook(self.ca_sha256, clock)
        self._challenges: dict[str, _Challenge] = {}
        self._loaded = False
        # The token table and the pending file are read-modify-write: one change at a time.
        self._lock = asyncio.Lock()

    # -- state --------------------------------------------------------------------------

    async def _ensure_loaded(self) -> None:
        if not self._loaded:
            self.pending.load(await asyncio.to_thread(_read_pending,
                                                      self.data_dir / PENDING_FILE))
            self._loaded = True

    async def _save_pending(self) -> None:
        data = self.pending.dump()
        await asyncio.to_thread(kubeconfig.atomic_write, self.data_dir / PENDING_FILE, data)

    async def _issue(self, node: str) -> str:
        identity = pki.Identity(f"{auth.NODE_PREFIX}{node}", (auth.NODES_GROUP,))
        # issue_token replaces any older token of this node: rejoining revokes it.
        credential = await asyncio.to_thread(pki.issue_token, self.data_dir, identity)
        self.authn.replace(await asyncio.to_thread(_token_table, self.data_dir))
        return credential

    def _identity(self, request: web.Request) -> auth.Identity:
        return request[self.identity_key]

    def _admin(self, request: web.Request, verb: str, resource: str, name: str = "") -> None:
        auth.authorize(self._identity(request),
                       auth.Attributes(verb, "bramble", resource, "", "", name))

    # -- joining with the token ------------------------------------------------------------

    async def challenge(self, request: web.Request) -> web.Response:
        body = await _read_json(request)
        node = _node_name(body)
        node_nonce = _hex64(body, "nonce")
        now = self.clock()
        for k in [k for k, c in self._challenges.items() if c.expires <= now]:
            del self._challenges[k]
        while len(self._challenges) >= MAX_CHALLENGES:
            del self._challenges[next(iter(self._challenges))]  # the oldest
        master_nonce = joinproof.new_nonce()
        self._challenges[master_nonce] = _Challenge(node, node_nonce, now + CHALLENGE_TTL)
        transcript = joinproof.Transcript(node, node_nonce, master_nonce, self.ca_sha256)
        return _json({"nonce": master_nonce, "ca": self.ca_pem,
                      "proof": joinproof.prove(self._join_token, transcript,
                                               joinproof.MASTER)})

    async def join(self, request: web.Request) -> web.Response:
        body = await _read_json(request)
        challenge = self._challenges.pop(str(body.get("challenge", "")), None)
        if challenge is None or challenge.expires <= self.clock():
            # An old-style {"token": ...} body lands here too: the token is never sent.
            log.warning("join refused: no valid challenge", extra={"peer": request.remote})
            raise Unauthorized("the join challenge is unknown or expired: ask for a new one "
                               f"at {CHALLENGE_PATH}")
        node = _node_name(body)
        transcript = joinproof.Transcript(node, str(body.get("nonce", "")),
                                          str(body.get("challenge")), self.ca_sha256)
        if (challenge.node != node or challenge.node_nonce != transcript.node_nonce
                or not joinproof.verify(self._join_token, transcript, joinproof.NODE,
                                        body.get("proof"))):
            log.warning("join refused: wrong proof of the join token",
                        extra={"node": node, "peer": request.remote})
            raise Unauthorized("the join proof is wrong: this node does not hold the "
                               "cluster's join token")
        async with self._lock:
            credential = await self._issue(node)
        log.info("node joined", extra={"node": node, "peer": request.remote})
        return _json({"token": credential, "ca": self.ca_pem})

    # -- joining by approval -----------------------------------------------------------------

    async def request_join(self, request: web.Request) -> web.Response:
        body = await _read_json(request)
        node = _node_name(body)
        secret = body.get("secret")
        if secret is not None:
            if not joinproof.is_hex64(secret):
                raise BadRequest("secret must be 64 hex digits")
            key = joinproof.key_of(secret)
        else:
            key = _hex64(body, "key")
        async with self._lock:
            await self._ensure_loaded()
            changed = self.pending.expire()
            if secret is not None:
                approved = self.pending.take(node, key)
                if approved is not None:
                    await self._save_pending()
                    credential = await self._issue(node)
                    log.info("approved node joined", extra={
                        "node": node, "fingerprint": approved.fingerprint,
                        "peer": request.remote})
                    return _json({"token": credential, "ca": self.ca_pem})
            req, added = self.pending.request(node, key, request.remote or "")
            if added or changed:
                await self._save_pending()
        if added:
            log.warning("a node asks to join: approve it with `bramble nodes approve` if its "
                        "fingerprint matches", extra={"node": node, "peer": request.remote,
                                                      "fingerprint": req.fingerprint})
        return _json({"state": "Pending", "ca": self.ca_pem}, status=202)

    # -- admin -----------------------------------------------------------------------------------

    async def list_pending(self, request: web.Request) -> web.Response:
        self._admin(request, "list", "pendingnodes")
        async with self._lock:
            await self._ensure_loaded()
            if self.pending.expire():
                await self._save_pending()
            items = [r.as_json() for r in self.pending.items()]
        return _json({"kind": "PendingNodeList", "apiVersion": "bramble/v1", "items": items})

    async def approve(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self._admin(request, "update", "pendingnodes", name)
        body: Obj = {}
        if request.can_read_body:
            body = await _read_json(request)
        fingerprint = body.get("fingerprint") or ""
        if not isinstance(fingerprint, str):
            raise BadRequest("fingerprint must be a string")
        req = await self.approve_node(name, fingerprint, self._identity(request).user)
        return _json(req.as_json())

    async def pending_requests(self) -> list[PendingRequest]:
        """The requests not approved yet (the status page lists them)."""
        async with self._lock:
            await self._ensure_loaded()
            return [r for r in self.pending.items() if not r.approved]

    async def approve_node(self, name: str, fingerprint: str, by: str) -> PendingRequest:
        """Admit a pending node (`bramble nodes approve`, the status page)."""
        async with self._lock:
            await self._ensure_loaded()
            self.pending.expire()
            req = self.pending.approve(name, fingerprint)
            await self._save_pending()
        log.info("node approved", extra={"node": name, "fingerprint": req.fingerprint,
                                         "by": by})
        return req

    async def discovered(self, request: web.Request) -> web.Response:
        self._admin(request, "list", "discoverednodes")
        items = [s.as_json() for s in self.seen.items()] if self.seen is not None else []
        return _json({"kind": "DiscoveredNodeList", "apiVersion": "bramble/v1",
                      "mdns": self.seen is not None, "items": items})

    async def remove(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        identity = self._identity(request)
        self._admin(request, "delete", "nodes", name)
        async with self._lock:
            await self._ensure_loaded()
            revoked = await asyncio.to_thread(pki.revoke_tokens, self.data_dir,
                                              f"{auth.NODE_PREFIX}{name}")
            if revoked:
                self.authn.replace(await asyncio.to_thread(_token_table, self.data_dir))
            dropped = self.pending.drop(name)
            if dropped:
                await self._save_pending()
        # Its agent endpoint (address, and the token the master calls it with) goes too.
        node_proxy = request.app.get(PROXY_KEY)
        if node_proxy is not None:
            await node_proxy.endpoints.drop(name)
        deleted = await self._delete("", "v1", "nodes", "", name, identity)
        await self._delete("coordination.k8s.io", "v1", "leases", auth.NODE_LEASE_NAMESPACE,
                           name, identity)
        if not (revoked or dropped or deleted):
            raise NotFound(f'node "{name}" is not a member of this cluster', kind="nodes",
                           name=name)
        log.info("node removed", extra={"node": name, "credentials_revoked": revoked,
                                        "requests_dropped": dropped, "by": identity.user})
        return _json({"name": name, "credentialsRevoked": revoked,
                      "requestsDropped": dropped, "nodeDeleted": deleted})

    async def _delete(self, group: str, version: str, plural: str, namespace: str,
                      name: str, identity: auth.Identity) -> bool:
        rt = self.api.registry.by_path(group, version, plural)
        if rt is None:
            return False
        try:
            await self.api.delete(Target(rt, namespace, name), {}, identity)
        except NotFound:
            return False
        return True

    async def rotate(self, request: web.Request) -> web.Response:
        identity = self._identity(request)
        self._admin(request, "update", "jointokens")
        async with self._lock:
            token = await asyncio.to_thread(pki.rotate_join_token, self.data_dir)
            self._join_token = token
            self._challenges.clear()  # proofs made with the old token are worthless now
            self.authn.replace(await asyncio.to_thread(_token_table, self.data_dir))
        log.warning("join token rotated", extra={"by": identity.user})
        return _json({"token": token, "file": str(self.data_dir / "join-token")})


MEMBERSHIP_KEY = web.AppKey("membership", Membership)


def add_routes(app: web.Application, membership: Membership) -> None:
    app[MEMBERSHIP_KEY] = membership
    app.router.add_post(CHALLENGE_PATH, membership.challenge)
    app.router.add_post(JOIN_PATH, membership.join)
    app.router.add_post(REQUEST_PATH, membership.request_join)
    app.router.add_get(PENDING_PATH, membership.list_pending)
    app.router.add_post(APPROVE_PATH, membership.approve)
    app.router.add_get(DISCOVERED_PATH, membership.discovered)
    app.router.add_delete(MEMBER_PATH, membership.remove)
    app.router.add_post(ROTATE_PATH, membership.rotate)
