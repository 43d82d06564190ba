"""`kubectl logs`, `exec` and `port-forward`: the master's side. It authorizes the request,
finds the pod's node and streams to and from that node agent's HTTPS endpoint
(node/server.py).

- `POST /bramble/v1/nodes/{name}/endpoint` (the node's own credential only): the agent's
  address, port, secret "kubelet token" and serving certificate sha256. Kept in memory and
  in DATA/node-endpoints.json (0600: it holds the tokens), newest per node.
- `GET .../pods/{name}/log` (verb get on pods/log): the node's text/plain answer streamed
  through as it comes (`follow` ends when the node ends it or the caller goes away).
- `GET .../pods/{name}/exec` and `.../portforward` as websockets (verb create on
  pods/exec and pods/portforward, as Kubernetes asks of websocket streams since 1.35): the
  caller's socket is accepted with the subprotocol the node agreed to (v5.channel.k8s.io or
  v4 for exec; SPDY/3.1+portforward.k8s.io, SPDY tunnelled in the websocket, for
  port-forward), and messages are relayed both ways unchanged. A request that is not a
  websocket (kubectl's SPDY fallback) gets a Status error: the same error the websocket
  attempt met, or "SPDY upgrades are not supported".

- `POST /bramble/v1/images[?node=NAME]` (admin only; `bramble push`): an image archive
  streamed to every node with a registered agent (or the one named), all at once and
  without touching the master's disk: each chunk goes to every node still receiving, so
  memory stays bounded and the slowest node sets the pace. The answer lists, per node,
  the images loaded or the error; a node failing does not stop the others.

Trust towards nodes: the master presents the node's own kubelet token and pins the node's
self-signed certificate by the fingerprint it registered (aiohttp.Fingerprint), so neither
side needs a CA for this channel and nothing else can answer in the node's place. A node
identity can do neither logs nor exec through the master (the authorizer's node rules name
no pods/log or pods/exec), so a node cannot read another node's pods.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp import WSMsgType, web

from bramble import kubeconfig
from bramble.kube.errors import (
    BadRequest,
    Forbidden,
    InternalError,
    Invalid,
    NotFound,
    ServiceUnavailable,
    StatusError,
    invalid,
    required,
)
from bramble.kube.names import is_dns1123_subdomain
from bramble.streams import while_connected

from . import auth
from .encoding import read_json
from .rest import ObjectAPI, Target

log = logging.getLogger(__name__)

ENDPOINT_PATH = "/bramble/v1/nodes/{name}/endpoint"
IMAGES_PATH = "/bramble/v1/images"
PUSH_CHUNK = 256 * 1024
PUSH_QUEUE = 8  # chunks buffered per node: a slow node slows the push, memory stays flat
ENDPOINTS_FILE = "node-endpoints.json"
SUBRESOURCES = frozenset({"log", "exec", "portforward"})
CHANNEL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
PORTFORWARD_PROTOCOLS = ("SPDY/3.1+portforward.k8s.io",)
LOG_PARAMS = ("follow", "previous", "timestamps", "tailLines", "sinceSeconds", "sinceTime",
              "limitBytes")
EXEC_PARAMS = ("command", "stdin", "stdout", "stderr", "tty")
MAX_FRAME = 1 << 20
MAX_BODY = 64 * 1024
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{32,512}")
_SHA256 = re.compile(r"[0-9a-f]{64}")

Obj = dict[str, Any]


@dataclass(frozen=True)
class NodeEndpoint:
    address: str
    port: int
    token: str = field(repr=False)
    cert_sha256: str

    def url(self, path: str) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"https://{host}:{self.port}{path}"

    def fingerprint(self) -> aiohttp.Fingerprint:
        return aiohttp.Fingerprint(bytes.fromhex(self.cert_sha256))

    def as_json(self) -> Obj:
        return {"address": self.address, "port": self.port, "token": self.token,
                "certSha256": self.cert_sha256}


def parse_endpoint(node: str, body: Any, peer: str | None) -> NodeEndpoint:
    """Validate a registration (pure). The address defaults to the caller's."""
    if not isinstance(body, dict):
        raise BadRequest("the endpoint must be a JSON object")
    errs = []
    port, token = body.get("port"), body.get("token")
    sha, address = body.get("certSha256"), body.get("address") or peer or ""
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        errs.append(invalid("port", port, "must be a port number"))
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        errs.append(required("token", "must be 32-512 URL-safe characters"))
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha.lower()):
        errs.append(invalid("certSha256", sha, "must be a sha256 in hex"))
    try:
        address = str(ipaddress.ip_address(address))
    except ValueError:
        errs.append(invalid("address", address, "must be an IP address"))
    if errs:
        raise Invalid("NodeEndpoint", node, errs)
    return NodeEndpoint(address, port, token, sha.lower())  # type: ignore[arg-type,union-attr]


def default_container(pod: Obj, requested: str) -> str:
    """The container a request means (pure): the one named, or the pod's only one."""
    spec = pod.get("spec") or {}
    names = [c.get("name", "") for key in ("containers", "initContainers",
                                            "ephemeralContainers")
             for c in spec.get(key) or []]
    name = (pod.get("metadata") or {}).get("name", "")
    if requested:
        if requested not in names:
            raise BadRequest(f"container {requested} is not valid for pod {name}")
        return requested
    main = [c.get("name", "") for c in spec.get("containers") or []]
    if len(main) == 1:
        return main[0]
    raise BadRequest(f"a container name must be specified for pod {name}, choose one of: "
                     f"[{' '.join(main)}]")


class Endpoints:
    """Node name -> NodeEndpoint, in memory and (with a path) in a private file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._items: dict[str, NodeEndpoint] = {}
        self._lock = asyncio.Lock()

    def get(self, node: str) -> NodeEndpoint | None:
        return self._items.get(node)

    async def load(self) -> None:
        if self.path is not None:
            self._items = await asyncio.to_thread(_read_endpoints, self.path)

    async def put(self, node: str, endpoint: NodeEndpoint) -> None:
        async with self._lock:
            self._items[node] = endpoint
            await self._save()

    async def drop(self, node: str) -> bool:
        """Forget a removed node's endpoint (its token must not linger on disk)."""
        async with self._lock:
            if self._items.pop(node, None) is None:
                return False
            await self._save()
            return True

    async def _save(self) -> None:
        if self.path is not None:
            raw = orjson.dumps({n: e.as_json() for n, e in sorted(self._items.items())},
                               option=orjson.OPT_INDENT_2)
            await asyncio.to_thread(kubeconfig.atomic_write, self.path, raw)


def _read_endpoints(path: Path) -> dict[str, NodeEndpoint]:
    try:
        raw = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, orjson.JSONDecodeError) as err:
        log.warning("ignoring unreadable node endpoints", extra={"path": str(path),
                                                                 "error": str(err)})
        return {}
    items = {}
    for node, body in (raw.items() if isinstance(raw, dict) else ()):
        try:
            items[node] = parse_endpoint(node, body, None)
        except StatusError:
            log.warning("ignoring a bad node endpoint", extra={"node": node})
    return items


def _until_empty(read: Callable[[], Awaitable[bytes]]) -> Callable[[], Awaitable[bytes | None]]:
    """aiohttp's readany() says "end" with b""; while_connected expects None."""
    async def read_or_none() -> bytes | None:
        return (await read()) or None
    return read_or_none


class NodeProxy:
    """Registrations and the streaming handlers; owns the client session to the nodes."""

    def __init__(self, api: ObjectAPI, endpoints: Endpoints,
                 identity_key: web.RequestKey[auth.Identity]) -> None:
        self.api = api
        self.endpoints = endpoints
        self.identity_key = identity_key
        self._session: aiohttp.ClientSession | None = None
        self._stopping = asyncio.Event()  # set on shutdown: open streams end at once

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """cleanup_ctx: load the endpoints, open the session; close it at the end."""
        await self.endpoints.load()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(
            total=None, connect=10, sock_connect=10))
        yield
        await self.close()

    async def close(self, app: web.Application | None = None) -> None:
        """End every stream and close the connections to the nodes (on_shutdown too)."""
        self._stopping.set()
        await asyncio.sleep(0)  # let the streams see it before their connections go
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            raise ServiceUnavailable("the master is shutting down")
        return self._session

    # registration

    async def register(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        identity = request[self.identity_key]
        if identity.node_name != name:
            raise Forbidden(f'User "{identity.user}" cannot register the endpoint of node '
                            f'"{name}": a node may register only its own', kind="nodes",
                            name=name)
        if is_dns1123_subdomain(name):
            raise BadRequest(f"invalid node name {name!r}")
        body = await read_json(request, MAX_BODY, "the request body is larger than 64 KiB")
        endpoint = parse_endpoint(name, body, request.remote)
        await self.endpoints.put(name, endpoint)
        log.info("node endpoint registered", extra={"node": name, "address": endpoint.address,
                                                    "port": endpoint.port})
        return web.Response(status=204)

    # bramble push

    async def push_image(self, request: web.Request) -> web.Response:
        identity = request[self.identity_key]
        auth.authorize(identity, auth.Attributes("create", "bramble", "images"))
        only = request.query.get("node", "")
        nodes = {e.name for e in self.api.store.list("nodes")}
        if only:
            if only not in nodes:
                raise NotFound(f'node "{only}" not found')
            if self.endpoints.get(only) is None:
                raise ServiceUnavailable(f'node "{only}" has not registered its agent endpoint '
                                         f"(is its agent running?)")
            targets = [only]
        else:
            targets = sorted(n for n in nodes if self.endpoints.get(n) is not None)
            if not targets:
                raise ServiceUnavailable("no node has registered its agent endpoint yet")
        client = self._client()
        queues: dict[str, asyncio.Queue[bytes | None]] = {
            n: asyncio.Queue(PUSH_QUEUE) for n in targets}
        senders = {n: asyncio.create_task(self._push_to(client, n, queues[n]),
                                          name=f"push-image-{n}") for n in targets}
        try:
            async for chunk in request.content.iter_chunked(PUSH_CHUNK):
                for node, queue in queues.items():
                    await _offer(queue, chunk, senders[node])
            for node, queue in queues.items():
                await _offer(queue, None, senders[node])
            results = dict(zip(targets, await asyncio.gather(*senders.values()), strict=True))
        finally:
            for task in senders.values():
                task.cancel()
            await asyncio.gather(*senders.values(), return_exceptions=True)
        return web.Response(body=orjson.dumps({"kind": "ImagePushResult", "nodes": results}),
                            content_type="application/json")

    async def _push_to(self, client: aiohttp.ClientSession, node: str,
                       queue: asyncio.Queue[bytes | None]) -> Obj:
        endpoint = self.endpoints.get(node)
        assert endpoint is not None

        async def body() -> AsyncIterator[bytes]:
            while (chunk := await queue.get()) is not None:
                yield chunk

        try:
            async with client.post(endpoint.url("/images"), data=body(), ssl=endpoint.fingerprint(),
                                   headers={"Authorization": f"Bearer {endpoint.token}",
                                            "Content-Type": "application/x-tar"}) as resp:
                raw = await resp.content.read(MAX_BODY)
                if resp.status != 200:
                    return {"error": _node_error(node, resp.status, raw).message}
                images = orjson.loads(raw).get("images") or []
                log.info("image pushed", extra={"node": node, "images": ",".join(images)})
                return {"images": images}
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as err:
            return {"error": _unreachable(node, err).message if not isinstance(
                err, orjson.JSONDecodeError) else f"node {node!r} answered no JSON"}

    # pods/log and pods/exec

    async def handle(self, request: web.Request, t: Target,
                     identity: auth.Identity) -> web.StreamResponse:
        sub = t.subresource
        streaming = sub in ("exec", "portforward")
        verb = "create" if streaming else "get"
        auth.authorize(identity, auth.Attributes(verb, t.rt.group, t.rt.plural, sub,
                                                 t.namespace, t.name))
        if streaming and request.method not in ("GET", "POST"):
            raise BadRequest(f"{sub} supports GET (websocket) only")
        if not streaming and request.method != "GET":
            raise BadRequest("log supports GET only")
        pod = self.api.get(t).obj()
        node = (pod.get("spec") or {}).get("nodeName") or ""
        if not node:
            raise BadRequest(f'pod "{t.name}" does not have a host assigned')
        endpoint = self.endpoints.get(node)
        if endpoint is None:
            raise ServiceUnavailable(f'node "{node}" has not registered its agent endpoint '
                                     f"(is its agent running?)")
        uid = (pod.get("metadata") or {}).get("uid", "")
        if sub == "portforward":
            # The ports travel inside the SPDY streams; the node checks each one.
            path = "/".join(quote(p, safe="") for p in (t.namespace, t.name))
            return await self._websocket(request, node, endpoint,
                                         endpoint.url(f"/portForward/{path}"),
                                         [("podUID", uid)], PORTFORWARD_PROTOCOLS)
        container = default_container(pod, request.query.get("container", ""))
        path = "/".join(quote(p, safe="") for p in (t.namespace, t.name, container))
        names = EXEC_PARAMS if sub == "exec" else LOG_PARAMS
        params = [(k, v) for k, v in request.query.items() if k in names]
        params.append(("podUID", uid))
        if sub == "exec":
            return await self._websocket(request, node, endpoint,
                                         endpoint.url(f"/exec/{path}"), params,
                                         CHANNEL_PROTOCOLS)
        return await self._logs(request, node, endpoint, endpoint.url(f"/containerLogs/{path}"),
                                params)

    async def _logs(self, request: web.Request, node: str, endpoint: NodeEndpoint, url: str,
                    params: list[tuple[str, str]]) -> web.StreamResponse:
        headers = {"Authorization": f"Bearer {endpoint.token}"}
        try:
            async with self._client().get(url, params=params, headers=headers,
                                          ssl=endpoint.fingerprint()) as upstream:
                if upstream.status != 200:
                    raise _node_error(node, upstream.status,
                                      await upstream.content.read(MAX_BODY))
                resp = web.StreamResponse(headers={
                    "Content-Type": upstream.headers.get("Content-Type", "text/plain"),
                    "Cache-Control": "no-cache"})
                resp.enable_chunked_encoding()
                await resp.prepare(request)
                try:
                    async for chunk in while_connected(
                            _until_empty(upstream.content.readany), request, self._stopping,
                            name="proxy-log"):
                        await resp.write(chunk)
                except (aiohttp.ClientError, TimeoutError) as err:
                    # The node went away mid-stream (or the master is stopping): end here.
                    log.info("log stream from node ended", extra={"node": node,
                                                                   "error": str(err)})
                    return resp
                except ConnectionResetError:
                    return resp  # the caller went away
                await resp.write_eof()
                return resp
        except (aiohttp.ClientError, TimeoutError) as err:
            raise _unreachable(node, err) from None

    async def _websocket(self, request: web.Request, node: str, endpoint: NodeEndpoint,
                         url: str, params: list[tuple[str, str]],
                         protocols: tuple[str, ...]) -> web.StreamResponse:
        """Exec and port-forward: accept the caller's websocket with the subprotocol the
        node agreed to, then relay messages both ways unchanged (the master never parses
        the exec channels or the SPDY frames inside)."""
        ws = web.WebSocketResponse(protocols=protocols, max_msg_size=MAX_FRAME)
        ready = ws.can_prepare(request)
        if not ready.ok:
            raise BadRequest("bramble serves exec and port-forward over websockets only "
                             f"({', '.join(protocols)}); SPDY upgrades are not supported")
        if ready.protocol is None:
            raise BadRequest(f"this stream speaks only {', '.join(protocols)}")
        is_exec = protocols == CHANNEL_PROTOCOLS
        headers = {"Authorization": f"Bearer {endpoint.token}"}
        try:
            upstream = await self._client().ws_connect(
                url, params=params, headers=headers, ssl=endpoint.fingerprint(),
                protocols=(ready.protocol,), max_msg_size=MAX_FRAME, autoping=True)
        except aiohttp.WSServerHandshakeError as err:
            raise _node_error(node, err.status, b"") from None
        except (aiohttp.ClientError, TimeoutError) as err:
            raise _unreachable(node, err) from None
        try:
            if upstream.protocol != ready.protocol:
                raise InternalError(f'node "{node}" answered with subprotocol '
                                    f"{upstream.protocol!r}, not {ready.protocol!r}")
            await ws.prepare(request)
            if not await _relay(ws, upstream, self._stopping) and is_exec:
                with contextlib.suppress(ConnectionResetError):
                    await ws.send_bytes(b"\x03" + orjson.dumps(ServiceUnavailable(
                        "the master is shutting down").status()))
        finally:
            await upstream.close()
            await ws.close()
        return ws


async def _relay(caller: web.WebSocketResponse, node: aiohttp.ClientWebSocketResponse,
                 stopping: asyncio.Event) -> bool:
    """Frames both ways, unchanged, until either side closes (True) or the master stops
    (False)."""
    async def pump(src: Any, dst: Any) -> None:
        async for msg in src:
            if msg.type == WSMsgType.BINARY:
                await dst.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await dst.send_str(msg.data)

    up = asyncio.create_task(pump(caller, node), name="stream-relay-to-node")
    down = asyncio.create_task(pump(node, caller), name="stream-relay-to-caller")
    stop = asyncio.create_task(stopping.wait(), name="stream-relay-stop")
    try:
        await asyncio.wait({up, down, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (up, down, stop):
            task.cancel()
        results = await asyncio.gather(up, down, stop, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception) and not isinstance(
                result, ConnectionResetError | aiohttp.ClientError | asyncio.CancelledError):
            log.warning("exec relay failed", extra={"error": repr(result)})
    return not stopping.is_set()


async def _offer(queue: asyncio.Queue[bytes | None], item: bytes | None,
                 sender: asyncio.Task[Obj]) -> None:
    """Queue `item` for a node's sender, unless that sender has already finished (its
    node failed): a full queue nobody reads must not stall the push to the others."""
    if sender.done():
        return
    put = asyncio.ensure_future(queue.put(item))
    await asyncio.wait({put, sender}, return_when=asyncio.FIRST_COMPLETED)
    if not put.done():
        put.cancel()


def _node_error(node: str, status: int, body: bytes) -> StatusError:
    """The node's refusal as the caller should see it. A Status the node sent for the
    request (400 not started, 404) passes through; the node refusing the MASTER (401/403)
    is the master's problem, not the caller's credential's."""
    parsed = None
    with contextlib.suppress(orjson.JSONDecodeError):
        parsed = orjson.loads(body) if body else None
    if isinstance(parsed, dict) and parsed.get("kind") == "Status" and status in (400, 404):
        return (BadRequest if status == 400 else NotFound)(str(parsed.get("message") or ""))
    if status in (401, 403):
        return InternalError(f'node "{node}" refused the master\'s credential ({status}); '
                             f"its agent registers again when it restarts")
    return InternalError(f'node "{node}" answered {status}: '
                         f"{body[:500].decode(errors='replace')}")


def _unreachable(node: str, err: BaseException) -> ServiceUnavailable:
    if isinstance(err, aiohttp.ServerFingerprintMismatch):
        log.warning("node certificate does not match its registration", extra={"node": node})
        return ServiceUnavailable(f'node "{node}" presented a certificate other than the one '
                                  f"it registered")
    if isinstance(err, aiohttp.ClientConnectorError):
        # Its own text names the connection key, including the pinned fingerprint's repr.
        err = err.os_error
    return ServiceUnavailable(f'cannot reach the agent of node "{node}": '
                              f"{err or type(err).__name__}")


PROXY_KEY = web.AppKey("node-proxy", NodeProxy)


def add_routes(app: web.Application, api: ObjectAPI,
               identity_key: web.RequestKey[auth.Identity], data_dir: Path | None) -> NodeProxy:
    """The endpoint registration route, the proxy on `app[PROXY_KEY]` and its lifecycle.
    Without `data_dir`, registrations live in memory only."""
    proxy = NodeProxy(api, Endpoints(data_dir / ENDPOINTS_FILE if data_dir else None),
                      identity_key)
    app[PROXY_KEY] = proxy
    app.cleanup_ctx.append(proxy.lifecycle)
    app.on_shutdown.append(proxy.close)
    app.router.add_post(ENDPOINT_PATH, proxy.register)
    app.router.add_post(IMAGES_PATH, proxy.push_image)
    return proxy
