"""The node agent's HTTPS endpoint: what the master streams `kubectl logs`, `kubectl exec` and
`kubectl port-forward` through (the kubelet's port 10250, reduced to those three).

    GET /containerLogs/{namespace}/{pod}/{container}?follow&tailLines&timestamps&
        sinceSeconds&sinceTime&limitBytes&previous&podUID      -> text/plain, streamed
    GET /exec/{namespace}/{pod}/{container}?command=..&command=..&stdin&stdout&stderr&tty&
        podUID                                                  -> websocket, v5/v4.channel.k8s.io
    GET /portForward/{namespace}/{pod}?podUID                   -> websocket,
                                                SPDY/3.1+portforward.k8s.io (node/portforward.py)
    POST /images   (body: an image archive, `podman save` format) -> {"images": [names]}
                   (`bramble push`: side-loading images without a registry)

Trust: only the master may call it. At first start the node makes (under DATA/server/, 0700)
a random 32-byte "kubelet token" (`token`, 0600) and a self-signed serving certificate
(`server.crt`, `server.key` 0600; made by a child process so `cryptography` never stays in
the agent). After joining, the agent sends the token, the certificate's sha256 and its
address and port to the master with its node credential (`register`, POST
/bramble/v1/nodes/NAME/endpoint); the master keeps them private and calls back with that
token as a bearer token, pinning the certificate by its fingerprint. Every request here
without the token gets 401 - including ones carrying a cluster credential.

Exec frames (v4/v5.channel.k8s.io): binary messages whose first byte is the channel: 0 stdin,
1 stdout, 2 stderr, 3 the final Status (JSON), 4 resize ({"Width", "Height"}), 255 close
(v5: `255 0` closes stdin). The Status ends the session: Success, or Failure with reason
NonZeroExitCode and cause ExitCode, from which kubectl takes its own exit code. Errors found
after the upgrade (bad options, no such container) also arrive as a Failure Status, so
kubectl prints them.

Invariants: the pure parts (options, container choice, Status bodies) are plain functions;
a follow or an exec whose caller went away is noticed (its transport closes) within
bramble.streams.CHECK_INTERVAL and stops its Podman stream; `close()` ends open streams within its bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import ssl
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from bramble import kubeconfig
from bramble.client import Client, ConnectionFailed
from bramble.kube.errors import (
    BadRequest,
    InternalError,
    NotFound,
    ServiceUnavailable,
    StatusError,
    Unauthorized,
)
from bramble.streams import gone, while_connected

from . import netns, portforward
from .pods import generations, parse_time
from .runtime.podman import STDERR, STDOUT, ContainerRuntimeError, ExecSession, PodmanRuntime
from .runtime.types import (
    LABEL_MANAGED,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
    ObservedContainer,
    ObservedPod,
)

log = logging.getLogger(__name__)

DEFAULT_PORT = 10250
ENDPOINT_PATH = "/bramble/v1/nodes/{name}/endpoint"
CHANNEL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, ERROR, RESIZE, CLOSE = 0, 3, 4, 255
MAX_FRAME = 1 << 20
CERT_VALIDITY = timedelta(days=3650)  # pinned by fingerprint: its dates are never checked

_TOKEN, _CERT, _KEY = "token", "server.crt", "server.key"


class NodeServerError(Exception):
    """The node server cannot start; the message says why and what to do."""


# --- the serving identity -----------------------------------------------------------------

@dataclass(frozen=True)
class ServingIdentity:
    token: str = field(repr=False)
    cert_file: Path
    key_file: Path
    cert_sha256: str  # of the certificate's DER bytes, hex


def _read_token(folder: Path) -> tuple[str, bool]:
    """The kubelet token (made now if missing) and whether the certificate must be made."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        folder.chmod(0o700)
    path = folder / _TOKEN
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = ""
    if len(token) < 32:
        token = secrets.token_urlsafe(32)
        kubeconfig.atomic_write(path, (token + "\n").encode())
    need_cert = not ((folder / _CERT).exists() and (folder / _KEY).exists())
    return token, need_cert


def _fingerprint(cert_file: Path) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert_file.read_text())).hexdigest()


async def ensure_identity(folder: Path, node_name: str) -> ServingIdentity:
    """Token and certificate under `folder`, made when missing and reused after."""
    token, need_cert = await asyncio.to_thread(_read_token, folder)
    if need_cert:
        # A child process: `cryptography` costs ~14 MB that the agent would keep forever.
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bramble.node.server", str(folder), node_name,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        if proc.returncode != 0:
            raise NodeServerError(f"making the node's serving certificate failed: "
                               f"{err.decode(errors='replace').strip()}")
    cert = folder / _CERT
    return ServingIdentity(token, cert, folder / _KEY, await asyncio.to_thread(_fingerprint, cert))


def make_certificate(folder: Path, node_name: str) -> None:
    """A self-signed ECDSA P-256 serving certificate (run in a child process)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"bramble-node:{node_name}"[:64])])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + CERT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    # Key first: a crash in between leaves no certificate, so the pair is made again.
    kubeconfig.atomic_write(folder / _KEY, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    kubeconfig.atomic_write(folder / _CERT, cert.public_bytes(serialization.Encoding.PEM))


# --- pure parts -----------------------------------------------------------------------------

def _flag(query: Mapping[str, str], name: str) -> bool:
    value = query.get(name, "")
    if value in ("", "false", "0", "False"):
        return False
    if value in ("true", "1", "True"):
        return True
    raise BadRequest(f"{name}: invalid value {value!r}: must be true or false")


def _int(query: Mapping[str, str], name: str, minimum: int) -> int | None:
    value = query.get(name)
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"{name}: invalid value {value!r}: must be an integer") from None
    if number < minimum:
        raise BadRequest(f"{name}: invalid value {number}: must be at least {minimum}")
    return number


@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    since: float | None = None  # unix seconds
    limit_bytes: int | None = None


def log_options(query: Mapping[str, str], now: float) -> LogOptions:
    """PodLogOptions from the query (validated as the apiserver does)."""
    since_seconds = _int(query, "sinceSeconds", 1)
    since_time = query.get("sinceTime") or None
    if since_seconds is not None and since_time is not None:
        raise BadRequest("at most one of sinceTime or sinceSeconds may be specified")
    since: float | None = None
    if since_seconds is not None:
        since = now - since_seconds
    elif since_time is not None:
        try:
            since = parse_time(since_time)
        except ValueError:
            raise BadRequest(f"sinceTime: invalid value {since_time!r}: must be RFC 3339") \
                from None
    return LogOptions(follow=_flag(query, "follow"), previous=_flag(query, "previous"),
                      timestamps=_flag(query, "timestamps"),
                      tail_lines=_int(query, "tailLines", 0), since=since,
                      limit_bytes=_int(query, "limitBytes", 1))


@dataclass(frozen=True)
class ExecOptions:
    command: tuple[str, ...]
    stdin: bool = False
    stdout: bool = False
    stderr: bool = False
    tty: bool = False


def exec_options(query: Any) -> ExecOptions:
    """PodExecOptions from the query (`command` repeats)."""
    command = tuple(query.getall("command", []))
    if not command:
        raise BadRequest("you must specify at least one command for the container")
    opts = ExecOptions(command, stdin=_flag(query, "stdin"), stdout=_flag(query, "stdout"),
                       stderr=_flag(query, "stderr"), tty=_flag(query, "tty"))
    if not (opts.stdin or opts.stdout or opts.stderr):
        raise BadRequest("you must specify at least one of stdin, stdout, stderr")
    return opts


def exit_status(command: Sequence[str], code: int) -> dict[str, Any]:
    """The Status an exec ends with (channel 3): kubectl exits with `code` from it."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command "
                       f"[{' '.join(command)}], exit code {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def pick_container(pods: Mapping[str, ObservedPod], pod: str, container: str, *,
                   previous: bool = False) -> ObservedContainer:
    """The current generation of `container` (or, with `previous`, the one before it) among
    the observed pods; BadRequest with the kubelet's words when there is none."""
    gens = generations([c for p in pods.values() for c in p.containers]).get(container, [])
    if previous:
        if len(gens) < 2:
            raise BadRequest(f'previous terminated container "{container}" in pod "{pod}" '
                             f"not found")
        return gens[1]
    if not gens or (gens[0].state == "created" and not gens[0].started_at):
        raise BadRequest(f'container "{container}" in pod "{pod}" is waiting to start: '
                         f"ContainerCreating")
    return gens[0]


# --- the server ---------------------------------------------------------------------------

def _status_response(err: StatusError) -> web.Response:
    return web.Response(body=orjson.dumps(err.status()), status=err.code,
                        content_type="application/json")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class NodeServer:
    """The agent's HTTPS endpoint over one runtime. `start()` serves, `run()` (a root task)
    registers it with the master and then waits; `close()` stops serving (idempotent)."""

    def __init__(self, runtime: PodmanRuntime, folder: Path, node_name: str, *,
                 bind: str = "0.0.0.0", port: int = DEFAULT_PORT, advertise: str = "",
                 shutdown_timeout: float = 2.0) -> None:
        self.runtime = runtime
        self.folder = folder
        self.node_name = node_name
        self.bind = bind
        self.port = port
        self.advertise = advertise
        self.registered = asyncio.Event()
        self._shutdown_timeout = shutdown_timeout
        self._identity: ServingIdentity | None = None
        self._runner: web.AppRunner | None = None
        # Open websockets, and whether each is an exec (ended with a Status frame).
        self._sockets: dict[web.WebSocketResponse, bool] = {}
        self._stopping = asyncio.Event()  # set on shutdown: open streams end at once

    @property
    def identity(self) -> ServingIdentity:
        assert self._identity is not None, "start() first"
        return self._identity

    async def start(self) -> None:
        self._identity = await ensure_identity(self.folder, self.node_name)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        await asyncio.to_thread(ctx.load_cert_chain, self.identity.cert_file,
                                self.identity.key_file)
        app = web.Application(middlewares=[self._errors, self._authenticate])
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self.container_logs)
        app.router.add_get("/exec/{namespace}/{pod}/{container}", self.exec)
        app.router.add_get("/portForward/{namespace}/{pod}", self.port_forward)
        app.router.add_post("/images", self.load_image)
        app.on_shutdown.append(self._close_sockets)
        runner = web.AppRunner(app, access_log=None, handle_signals=False,
                               shutdown_timeout=self._shutdown_timeout)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, self.bind, self.port, ssl_context=ctx, reuse_address=True)
        try:
            await site.start()
        except OSError as err:
            await self.close()
            raise NodeServerError(
                f"the node server cannot listen on {self.bind}:{self.port} ({err.strerror}): "
                f"is another kubelet or bramble node running here? Choose another port "
                f"(NodeConfig.server_port)") from err
        except BaseException:
            await self.close()
            raise
        server = site._server  # noqa: SLF001 - aiohttp exposes no public accessor
        if self.port == 0 and server is not None:
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        log.info("node server listening", extra={"bind": self.bind, "port": self.port,
                                                 "cert_sha256": self.identity.cert_sha256})

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> NodeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def registration(self) -> dict[str, Any]:
        """What the master needs to call this server (the token is secret: only for it)."""
        body: dict[str, Any] = {"port": self.port, "token": self.identity.token,
                                "certSha256": self.identity.cert_sha256}
        if self.advertise:
            body["address"] = self.advertise
        return body

    async def register(self, client: Client) -> None:
        await client.request("POST", ENDPOINT_PATH.format(name=self.node_name),
                             json=self.registration())
        self.registered.set()
        log.info("node server registered with the master", extra={"port": self.port})

    async def run(self, client: Client) -> None:
        """Register with the master (retrying while it is unreachable), then stay."""
        delay = 0.5
        while True:
            try:
                await self.register(client)
                break
            except NotFound:
                # A master that predates node endpoints: pods run, logs/exec do not.
                log.warning("the master does not take node endpoints: no logs or exec")
                break
            except (ConnectionFailed, InternalError, ServiceUnavailable) as err:
                log.info("registering the node server failed; retrying",
                         extra={"error": str(err), "retry_in": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
        await asyncio.Event().wait()  # a root task that returned would stop the agent

    # middlewares

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except StatusError as err:
            return _status_response(err)
        except web.HTTPException as err:
            if err.status == 404:
                return _status_response(NotFound("the server could not find the requested "
                                                 "resource"))
            raise
        except ContainerRuntimeError as err:
            log.warning("runtime error serving %s", request.path, extra={"error": str(err)})
            return _status_response(InternalError(str(err)))

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                presented.strip().encode(), self.identity.token.encode()):
            raise Unauthorized("Unauthorized")
        return await handler(request)

    async def _close_sockets(self, app: web.Application) -> None:
        self._stopping.set()
        stopping = ServiceUnavailable("the node agent is stopping").status()
        for ws, is_exec in list(self._sockets.items()):
            if is_exec:
                await _send_status(ws, stopping)  # kubectl fails instead of reporting success
            await ws.close(code=1001, message=b"node agent stopping")

    # handlers

    async def _observe(self, request: web.Request) -> dict[str, ObservedPod]:
        info = request.match_info
        labels = {LABEL_MANAGED: "true", LABEL_POD_NAMESPACE: info["namespace"],
                  LABEL_POD_NAME: info["pod"]}
        if request.query.get("podUID"):
            labels[LABEL_POD_UID] = request.query["podUID"]
        return await self.runtime.observe(labels)

    async def _find(self, request: web.Request, *, previous: bool = False) -> ObservedContainer:
        info = request.match_info
        pods = await self._observe(request)
        return pick_container(pods, info["pod"], info["container"], previous=previous)

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        opts = log_options(request.query, time.time())
        container = await self._find(request, previous=opts.previous)
        resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8",
                                           "Cache-Control": "no-cache"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        left = opts.limit_bytes
        chunks = self.runtime.logs(container.id, follow=opts.follow, tail=opts.tail_lines,
                                   since=opts.since, timestamps=opts.timestamps)
        try:
            async with contextlib.aclosing(chunks):
                async for chunk in while_connected(lambda: anext(chunks, None), request,
                                                   self._stopping, name="node-log"):
                    if left is not None:
                        chunk = chunk[:left]
                        left -= len(chunk)
                    await resp.write(chunk)
                    if left == 0:
                        break
            if not gone(request):
                await resp.write_eof()
        except (ConnectionResetError, ContainerRuntimeError) as err:
            # Headers are gone already: end the stream; the caller sees what was sent.
            log.info("log stream ended early", extra={"container": container.id[:12],
                                                      "error": str(err)})
        return resp

    async def exec(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=CHANNEL_PROTOCOLS, max_msg_size=MAX_FRAME)
        ready = ws.can_prepare(request)
        if not ready.ok:
            raise BadRequest("exec needs a websocket upgrade")
        if ready.protocol is None:
            raise BadRequest(f"exec speaks only {', '.join(CHANNEL_PROTOCOLS)}")
        await ws.prepare(request)
        self._sockets[ws] = True
        try:
            try:
                opts = exec_options(request.query)
                container = await self._find(request)
                if container.state != "running":
                    raise BadRequest(f'container "{container.name}" in pod '
                                     f'"{request.match_info["pod"]}" is not running')
                session = await self.runtime.exec(container.id, opts.command,
                                                  stdin=opts.stdin, tty=opts.tty)
            except StatusError as err:
                await _send_status(ws, err.status())
                return ws
            except ContainerRuntimeError as err:
                await _send_status(ws, InternalError(str(err)).status())
                return ws
            async with session:
                try:
                    status = await _relay_exec(ws, session, opts)
                except ContainerRuntimeError as err:  # e.g. no exit code from Podman
                    status = InternalError(str(err)).status()
            if status is not None:
                await _send_status(ws, status)
        finally:
            self._sockets.pop(ws, None)
            await ws.close()
        return ws


    async def load_image(self, request: web.Request) -> web.Response:
        """Spool the archive to the data dir (Podman loads from a file; an image does not
        fit a Pi's memory), load it, and always remove the spooled copy."""
        spool = self.folder.parent / "images-incoming"
        await asyncio.to_thread(spool.mkdir, mode=0o700, parents=True, exist_ok=True)
        path = spool / f"{secrets.token_hex(8)}.tar"
        try:
            size = await _spool(request, path)
            if size == 0:
                raise BadRequest("the request has no image archive in its body")
            try:
                images = await self.runtime.load_image(path)
            except ContainerRuntimeError as err:
                raise BadRequest(f"loading the image failed: {err}".replace(
                    str(path), "the archive")) from None
            log.info("image loaded", extra={"images": ",".join(images), "bytes": size})
            return web.Response(body=orjson.dumps({"images": images}),
                                content_type="application/json")
        finally:
            await asyncio.to_thread(path.unlink, missing_ok=True)

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        pod = request.match_info["pod"]
        sandboxes = [p.sandbox for p in (await self._observe(request)).values()
                     if p.sandbox is not None and p.sandbox.state == "running"]
        if not sandboxes:
            raise BadRequest(f'pod "{pod}" is not running on this node')
        sandbox_id = sandboxes[0].id
        uid = request.query.get("podUID", "")
        ws = web.WebSocketResponse(protocols=(portforward.PROTOCOL,), max_msg_size=MAX_FRAME)
        ready = ws.can_prepare(request)
        if not ready.ok or ready.protocol is None:
            raise BadRequest(f"port-forward speaks only {portforward.PROTOCOL} over a websocket")

        async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            try:
                path = await self.runtime.sandbox_netns(sandbox_id)
            except ContainerRuntimeError as err:
                raise ConnectionRefusedError(f"pod sandbox gone: {err}") from err
            return await netns.open_connection(path, port)

        async def messages() -> AsyncIterator[bytes]:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    yield msg.data

        await ws.prepare(request)
        self._sockets[ws] = False
        session = portforward.PortForwardSession(ws.send_bytes, connect, pod, uid)
        try:
            async with contextlib.aclosing(messages()) as incoming:
                await session.run(incoming)
        finally:
            self._sockets.pop(ws, None)
            await ws.close()
        return ws


async def _spool(request: web.Request, path: Path, chunk: int = 1 << 20) -> int:
    """Write the request body to `path` (0600), off the event loop; returns its size."""
    def create() -> Any:
        return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")

    file = await asyncio.to_thread(create)
    size = 0
    try:
        buffer = bytearray()
        async for data in request.content.iter_chunked(64 * 1024):
            buffer += data
            if len(buffer) >= chunk:
                await asyncio.to_thread(file.write, bytes(buffer))
                size += len(buffer)
                buffer.clear()
        if buffer:
            await asyncio.to_thread(file.write, bytes(buffer))
            size += len(buffer)
    finally:
        await asyncio.to_thread(file.close)
    return size


async def _send_status(ws: web.WebSocketResponse, status: dict[str, Any]) -> None:
    with contextlib.suppress(ConnectionResetError):
        await ws.send_bytes(bytes([ERROR]) + orjson.dumps(status))


async def _relay_exec(ws: web.WebSocketResponse, session: ExecSession,
                      opts: ExecOptions) -> dict[str, Any] | None:
    """Shuttle frames until the command exits (its Status returned) or the caller goes
    away (None)."""
    async def output() -> int:
        while (chunk := await session.read()) is not None:
            channel, data = chunk
            if (channel == STDOUT and opts.stdout) or (channel == STDERR and opts.stderr):
                await ws.send_bytes(bytes([channel]) + data)
        return await session.wait()

    async def incoming() -> None:
        stdin_open = opts.stdin
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            channel, data = msg.data[0], msg.data[1:]
            try:
                if channel == STDIN and stdin_open and data:
                    await session.write(data)
                elif channel == CLOSE and data[:1] == bytes([STDIN]) and stdin_open:
                    stdin_open = False
                    await session.close_stdin()
                elif channel == RESIZE:
                    size = orjson.loads(data)
                    await session.resize(int(size.get("Height", 0)), int(size.get("Width", 0)))
            except (OSError, ContainerRuntimeError, orjson.JSONDecodeError, ValueError,
                    AttributeError) as err:
                # The process closed its stdin or exited, or a bad resize: not fatal.
                log.debug("exec input dropped", extra={"exec": session.id[:12],
                                                       "error": str(err)})
                if channel == STDIN:
                    stdin_open = False

    out = asyncio.create_task(output(), name=f"exec-output-{session.id[:12]}")
    inp = asyncio.create_task(incoming(), name=f"exec-input-{session.id[:12]}")
    try:
        await asyncio.wait({out, inp}, return_when=asyncio.FIRST_COMPLETED)
        if not out.done():
            return None  # the caller closed the websocket
        return exit_status(opts.command, out.result())
    except ConnectionResetError:
        return None
    finally:
        for task in (out, inp):
            task.cancel()
        await asyncio.gather(out, inp, return_exceptions=True)


def _main(argv: list[str]) -> int:
    """`python -m bramble.node.server FOLDER NODE_NAME`: make the serving certificate."""
    folder, node_name = argv
    make_certificate(Path(folder), node_name)
    os.chmod(folder, 0o700)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
