"""The async API client: one aiohttp session, TLS pinned to the kubeconfig's CA.

Used by the CLI and (later) by the node agent. API errors come back as the
`bramble.kube.errors.StatusError` subclass the server's Status names, carrying the
server's own message; failures to reach the master at all are `ConnectionFailed`, with
a message a person can act on. Verification is never disabled unless the kubeconfig
says insecure-skip-tls-verify.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from bramble import __version__
from bramble import kubeconfig as kc
from bramble.kube import errors

JSON = "application/json"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

USER_AGENT = f"bramble/{__version__}"
UPLOAD_CHUNK = 256 * 1024


class ClientError(Exception):
    """A failure on the client's side of the API (not a Status from the server)."""


class ConnectionFailed(ClientError):
    """The master could not be reached, or the connection broke."""


def resource_path(group: str, version: str, plural: str, namespace: str | None = None,
                  name: str | None = None, subresource: str | None = None) -> str:
    """/api/v1/namespaces/NS/pods/NAME/status, /apis/apps/v1/deployments, ..."""
    parts = [f"/apis/{group}/{version}" if group else f"/api/{version}"]
    if namespace:
        parts.append(f"namespaces/{quote(namespace, safe='')}")
    parts.append(plural)
    if name:
        parts.append(quote(name, safe=""))
        if subresource:
            parts.append(subresource)
    return "/".join(parts)


_BY_REASON: dict[str, type[errors.StatusError]] = {
    cls.reason: cls for cls in (
        errors.BadRequest, errors.Unauthorized, errors.Forbidden, errors.NotFound,
        errors.MethodNotAllowed, errors.NotAcceptable, errors.AlreadyExists, errors.Conflict,
        errors.Expired, errors.RequestEntityTooLarge, errors.UnsupportedMediaType,
        errors.Invalid, errors.InternalError, errors.ServiceUnavailable)
}
_BY_CODE: dict[int, type[errors.StatusError]] = {
    400: errors.BadRequest, 401: errors.Unauthorized, 403: errors.Forbidden,
    404: errors.NotFound, 405: errors.MethodNotAllowed, 406: errors.NotAcceptable,
    409: errors.Conflict, 410: errors.Expired, 413: errors.RequestEntityTooLarge,
    415: errors.UnsupportedMediaType, 422: errors.Invalid, 500: errors.InternalError,
    503: errors.ServiceUnavailable,
}


class _UnknownStatus(errors.StatusError):
    """A Status whose reason and code bramble has no class for; keeps them as sent."""


def status_error(code: int, body: Any) -> errors.StatusError:
    """The StatusError a response carries: from a Status body if there is one."""
    if isinstance(body, dict) and body.get("kind") == "Status":
        reason = body.get("reason") or ""
        code = body.get("code") or code
        details = body.get("details") or {}
        message = body.get("message") or reason or f"HTTP {code}"
        cls = _BY_REASON.get(reason) or _BY_CODE.get(code)
        if cls is None:
            cls = type("StatusError", (_UnknownStatus,),
                       {"code": code, "reason": reason or "Unknown"})
        err = cls.__new__(cls)
        # Invalid's own constructor builds the message from FieldErrors; keep the server's.
        errors.StatusError.__init__(
            err, message, causes=details.get("causes") or [], kind=details.get("kind") or "",
            group=details.get("group") or "", name=details.get("name") or "",
            retry_after=details.get("retryAfterSeconds"))
        if isinstance(err, errors.Invalid):
            err.errors = []
        if err.code != code:
            err.code = code
        return err
    text = body if isinstance(body, str) else ""
    text = " ".join(text.split())[:200]
    cls = _BY_CODE.get(code) or (errors.InternalError if code >= 500 else errors.BadRequest)
    err = cls(f"the server answered HTTP {code}" + (f": {text}" if text else ""))
    err.code = code
    return err


def _params(params: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        if value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            out.append((key, ("true" if v else "false") if isinstance(v, bool) else str(v)))
    return out


def ssl_context(config: kc.KubeConfig) -> ssl.SSLContext | bool:
    """The TLS settings a kubeconfig asks for (False only when it says insecure)."""
    if not config.server.startswith("https://"):
        return False
    if config.insecure:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    try:
        if config.ca_data:
            return ssl.create_default_context(cadata=config.ca_data.decode("ascii", "replace"))
        return ssl.create_default_context()
    except ssl.SSLError as err:
        raise ClientError(f"the certificate authority in {config.path} is not a valid PEM "
                          f"certificate: {err.reason or err}") from err


class Client:
    """`async with Client(config) as api: await api.request("GET", "/version")`."""

    def __init__(self, config: kc.KubeConfig, *, timeout: float = 30.0,
                 user_agent: str = USER_AGENT, connections: int = 16) -> None:
        self.config = config
        # Open connections at most (aiohttp waits for a free one beyond): a followed log
        # holds one for as long as it runs, so `bramble logs -l -f` asks for more.
        self.connections = connections
        self.server = config.server.rstrip("/")
        self.timeout = timeout
        self._ssl = ssl_context(config)
        self._headers = {"User-Agent": user_agent}
        if config.token:
            self._headers["Authorization"] = f"Bearer {config.token}"
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None,
                        **kwargs: Any) -> Client:
        """Resolve (--kubeconfig, $KUBECONFIG, local admin) and load a kubeconfig."""
        return cls(kc.load(kc.resolve(path), context), **kwargs)

    @property
    def namespace(self) -> str:
        """The kubeconfig context's namespace, else "default"."""
        return self.config.namespace or "default"

    async def __aenter__(self) -> Client:
        self._ensure_session()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=self.connections)
            self._session = aiohttp.ClientSession(
                connector=connector, headers=self._headers, raise_for_status=False,
                auto_decompress=True)
        return self._session

    def _body(self, json: Any, data: bytes | str | None,
              content_type: str | None) -> tuple[bytes | None, dict[str, str]]:
        headers: dict[str, str] = {}
        if json is not None:
            body: bytes | None = orjson.dumps(json)
            headers["Content-Type"] = content_type or JSON
        elif data is not None:
            body = data.encode() if isinstance(data, str) else data
            if content_type:
                headers["Content-Type"] = content_type
        else:
            body = None
        return body, headers

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      json: Any = None, data: bytes | str | None = None,
                      content_type: str | None = None, accept: str = JSON,
                      time_limit: float | None = None) -> Any:
        """Send one request; returns the parsed JSON (text for non-JSON answers, None for
        an empty body). Raises StatusError subclasses and ConnectionFailed."""
        session = self._ensure_session()
        body, headers = self._body(json, data, content_type)
        headers["Accept"] = accept
        limit = aiohttp.ClientTimeout(total=time_limit or self.timeout)
        try:
            async with session.request(method, self.server + path, params=_params(params),
                                       data=body, headers=headers, timeout=limit) as resp:
                raw = await resp.read()
                parsed = _decode(raw, resp.headers.get("Content-Type", ""))
                if resp.status >= 400:
                    raise status_error(resp.status, parsed)
                return parsed
        except TimeoutError as err:  # aiohttp's timeout errors are TimeoutErrors too
            raise ConnectionFailed(
                f"the bramble master at {self.server} did not answer {method} {path} within "
                f"{time_limit or self.timeout:g}s") from err
        except aiohttp.ClientError as err:
            raise self._connection_failed(err) from err

    async def upload(self, path: str, file: Path, *, params: Mapping[str, Any] | None = None,
                     content_type: str = "application/octet-stream",
                     time_limit: float | None = None) -> Any:
        """POST a file as the body, streamed in chunks read off the event loop (an image
        archive can be larger than a Pi's free memory). Returns the parsed answer."""
        session = self._ensure_session()

        async def chunks() -> AsyncIterator[bytes]:
            handle = await asyncio.to_thread(open, file, "rb")
            try:
                while data := await asyncio.to_thread(handle.read, UPLOAD_CHUNK):
                    yield data
            finally:
                await asyncio.to_thread(handle.close)

        limit = aiohttp.ClientTimeout(total=time_limit, sock_connect=self.timeout)
        try:
            async with session.post(self.server + path, params=_params(params), data=chunks(),
                                    headers={"Content-Type": content_type, "Accept": JSON},
                                    timeout=limit) as resp:
                raw = await resp.read()
                parsed = _decode(raw, resp.headers.get("Content-Type", ""))
                if resp.status >= 400:
                    raise status_error(resp.status, parsed)
                return parsed
        except TimeoutError as err:
            raise ConnectionFailed(f"the bramble master at {self.server} did not answer "
                                   f"POST {path} in time") from err
        except aiohttp.ClientError as err:
            raise self._connection_failed(err) from err

    async def stream(self, path: str, params: Mapping[str, Any] | None = None, *,
                     accept: str = "*/*") -> AsyncIterator[bytes]:
        """GET a streamed body (a followed log, a watch) chunk by chunk, as it comes, with
        no read timeout - a quiet stream is a healthy one; errors before the body are
        raised as StatusErrors. The server ending mid-chunk (shutting down) ends it."""
        session = self._ensure_session()
        limit = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=None)
        try:
            async with session.get(self.server + path, params=_params(params),
                                   headers={"Accept": accept}, timeout=limit) as resp:
                if resp.status >= 400:
                    raw = await resp.read()
                    raise status_error(resp.status,
                                       _decode(raw, resp.headers.get("Content-Type", "")))
                async for chunk in resp.content.iter_any():
                    yield chunk
        except aiohttp.ClientPayloadError:
            return
        except TimeoutError as err:
            raise ConnectionFailed(f"the bramble master at {self.server} did not answer "
                                   f"within {self.timeout:g}s") from err
        except aiohttp.ClientError as err:
            raise self._connection_failed(err) from err

    async def websocket(self, path: str, params: Mapping[str, Any] | None,
                        protocols: tuple[str, ...]) -> aiohttp.ClientWebSocketResponse:
        """Open a websocket (exec); the caller closes it. A refused upgrade is raised as
        the StatusError the server answered with."""
        session = self._ensure_session()
        try:
            return await session.ws_connect(self.server + path, params=_params(params),
                                            protocols=protocols, max_msg_size=1 << 20,
                                            timeout=aiohttp.ClientWSTimeout(ws_close=5))
        except aiohttp.WSServerHandshakeError as err:
            raise status_error(err.status, {"kind": "Status", "code": err.status,
                                            "message": err.message}) from err
        except aiohttp.ClientError as err:
            raise self._connection_failed(err) from err

    async def watch(self, path: str, params: Mapping[str, Any] | None = None, *,
                    accept: str = JSON) -> AsyncIterator[tuple[str, Any]]:
        """Yield (type, object) from a watch stream until the server ends it. An ERROR
        event is raised as its StatusError (Expired means: list again). Close the
        iterator (contextlib.aclosing) to stop early."""
        query = dict(params or {})
        query["watch"] = "true"
        buffer = b""
        chunks = self.stream(path, query, accept=accept)
        async with contextlib.aclosing(chunks):
            # Lines are split here, not with readline(): one large object (a node with
            # many images) can exceed aiohttp's line limit. Every event ends with a
            # newline; a partial line left by a server stopping mid-event is dropped.
            async for chunk in chunks:
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    event = _watch_event(line)
                    if event is not None:
                        yield event

    def _connection_failed(self, err: aiohttp.ClientError) -> ConnectionFailed:
        where = f"cannot reach the bramble master at {self.server}"
        if isinstance(err, aiohttp.ClientConnectorCertificateError):
            return ConnectionFailed(
                f"{where}: its certificate is not trusted ({err.certificate_error}) — does "
                f"{self.config.path} belong to this master? A master whose data dir was "
                f"re-created has a new CA; copy its new admin.kubeconfig")
        if isinstance(err, aiohttp.ClientSSLError):
            return ConnectionFailed(f"{where}: TLS failed ({err}) — is it a bramble master, "
                                    f"and does the address use https://?")
        if isinstance(err, aiohttp.ClientConnectorDNSError):
            return ConnectionFailed(f"{where}: the name {err.host} cannot be resolved — check "
                                    f"the server address in {self.config.path}")
        if isinstance(err, aiohttp.ClientConnectorError):
            code = getattr(err.os_error, "errno", None)
            if code == errno.ECONNREFUSED:
                why = "connection refused — is `bramble master` running?"
            elif code in (errno.EHOSTUNREACH, errno.ENETUNREACH):
                why = "no route to host — is the master's machine on and on this network?"
            elif code == errno.ETIMEDOUT:
                why = "the connection timed out — is the master's machine on?"
            else:
                why = str(err.os_error.strerror or err.os_error)
            return ConnectionFailed(f"{where}: {why}")
        if isinstance(err, aiohttp.ServerDisconnectedError):
            return ConnectionFailed(f"the bramble master at {self.server} closed the "
                                    f"connection before answering (is it restarting?)")
        return ConnectionFailed(f"{where}: {err}")


def _decode(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    # Only what says it is JSON is parsed: a log line may well look like JSON.
    if "json" in content_type or (not content_type and raw[:1] in (b"{", b"[")):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return raw.decode("utf-8", "replace")


def _watch_event(line: bytes) -> tuple[str, Any] | None:
    line = line.strip()
    if not line:
        return None
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError as err:
        raise ClientError(f"the watch stream sent something that is not JSON: "
                          f"{line[:80]!r}") from err
    type_, obj = event.get("type", ""), event.get("object")
    if type_ == "ERROR":
        raise status_error((obj or {}).get("code") or 500, obj)
    return type_, obj


log = logging.getLogger(__name__)


def _log_watch_error(path: str, err: Exception, retry_in: float) -> None:
    log.warning("watch interrupted; listing again",
                extra={"path": path, "error": str(err), "retry_in": retry_in})


async def list_and_watch(client: Client, path: str, params: Mapping[str, str],
                         list_: Callable[[], Awaitable[str]],
                         on_event: Callable[[str, Any], None], *, retry_max: float = 10.0,
                         on_error: Callable[[str, Exception, float], None] = _log_watch_error,
                         ) -> None:
    """List (`list_` returns the list's resourceVersion), then hand every watch event but
    bookmarks to `on_event(type, object)`; on "410 Expired" list again at once, on a
    dropped stream or an unreachable master after a capped back-off (`on_error(path,
    error, retry_in)` is told; a log line by default). Runs until cancelled. The agent's
    informers and `bramble logs -l -f` both follow their collections this way."""
    delay = 0.5
    while True:
        try:
            rv = await list_()
            delay = 0.5
            stream = client.watch(path, {**params, "resourceVersion": rv,
                                         "allowWatchBookmarks": "true"})
            async with contextlib.aclosing(stream):
                async for kind, obj in stream:
                    if kind != "BOOKMARK":
                        on_event(kind, obj)
        except errors.Expired:
            continue
        except (ClientError, errors.StatusError, OSError) as err:
            on_error(path, err, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, retry_max)
