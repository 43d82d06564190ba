"""The master's HTTP API as an aiohttp application.

This module is the thin I/O shell: it parses paths and query parameters, authenticates and
authorizes, negotiates the representation and streams watches. What happens to objects is
decided in rest.py (and the pure modules it calls).

URL shapes (Kubernetes'):
    /api/v1[/namespaces/{ns}]/{plural}[/{name}[/{subresource}]]
    /apis/{group}/{version}[/namespaces/{ns}]/{plural}[/{name}[/{subresource}]]
Paths are parsed by hand rather than by route patterns because `namespaces/{name}/status`
and `namespaces/{ns}/pods` have the same shape and only the registry can tell them apart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from bramble.kube.errors import (
    BadRequest,
    InternalError,
    MethodNotAllowed,
    NotFound,
    RequestEntityTooLarge,
    StatusError,
    Unauthorized,
)

from ..metrics import Registry as MetricsRegistry
from ..web import WebSettings, gauges, is_web_path
from ..web import routes as web_routes
from . import auth, encoding, nodeapi, proxy, strategy
from .discovery import Discovery, version_info, wants_aggregated
from .openapi import OpenAPI
from .resources import Registry
from .rest import ObjectAPI, Target, WriteOptions, delete_propagation

log = logging.getLogger(__name__)

MAX_BODY = 3 * 1024 * 1024  # the apiserver's limit for a request body

UNAUTHENTICATED_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})


@dataclass
class Settings:
    bookmark_interval: float = 60.0
    # A watch without timeoutSeconds ends after this long, as the apiserver's
    # min-request-timeout does, so clients re-list now and then and stale ones go away.
    default_watch_timeout: float = 1800.0


API_KEY = web.AppKey("api", ObjectAPI)
AUTHN_KEY = web.AppKey("authenticator", auth.Authenticator)
METRICS_KEY = web.AppKey("metrics", MetricsRegistry)
SETTINGS_KEY = web.AppKey("settings", Settings)
IDENTITY = web.RequestKey("identity", auth.Identity)
VERB = web.RequestKey("verb", str)
RESOURCE = web.RequestKey("resource", str)


class ApiMetrics:
    def __init__(self, registry: MetricsRegistry, api: ObjectAPI) -> None:
        self.requests = registry.counter(
            "apiserver_request_total", "API requests by verb, resource and HTTP code.",
            ("verb", "resource", "code"))
        self.latency = registry.histogram(
            "apiserver_request_duration_seconds", "API request latency by verb and resource.",
            ("verb", "resource"))
        self.watches = registry.gauge(
            "apiserver_registered_watchers", "Open watch streams.",
            collect=lambda: [((), api.store.hub.watcher_count)])
        self.objects = registry.gauge(
            "apiserver_storage_objects", "Stored objects by resource.", ("resource",),
            collect=lambda: [((rt.qualified,), api.store.count(rt.qualified))
                             for rt in api.registry.all])


@dataclass(frozen=True)
class Parsed:
    target: Target | None  # None: a discovery path
    group: str
    version: str
    is_core: bool


def parse_path(registry: Registry, path: str) -> Parsed:
    parts = [p for p in path.split("/") if p]
    if not parts or parts[0] not in ("api", "apis"):
        raise NotFound("the server could not find the requested resource")
    if parts[0] == "api":
        if len(parts) == 1:
            return Parsed(None, "", "", True)
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) <= 3:
            return Parsed(None, parts[1] if len(parts) > 1 else "",
                          parts[2] if len(parts) > 2 else "", False)
        group, version, rest = parts[1], parts[2], parts[3:]
    if not rest:
        return Parsed(None, group, version, group == "")
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        rt = registry.by_path(group, version, rest[2])
        if rt is not None and rt.namespaced:
            namespace, rest = rest[1], rest[2:]
    rt = registry.by_path(group, version, rest[0])
    if rt is None or len(rest) > 3:
        raise NotFound("the server could not find the requested resource")
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if sub and sub not in rt.subresources:
        raise NotFound("the server could not find the requested resource")
    return Parsed(Target(rt, namespace, name, sub), group, version, group == "")


def _verb(method: str, t: Target, query: Any) -> str:
    if method == "GET":
        if not t.name:
            return "watch" if query.get("watch") in ("true", "1") else "list"
        return "get"
    return {"POST": "create", "PUT": "update", "PATCH": "patch",
            "DELETE": "delete" if t.name else "deletecollection"}.get(method, method.lower())


# Bodies larger than this are written in chunks of this size, each awaited until the
# socket takes it. Written at once, a 1 MB LIST grows the connection's TLS output buffer
# to 1 MB, and OpenSSL keeps that buffer for the life of the keep-alive connection: with
# a dozen clients that is most of a Pi master's memory.
CHUNK = 64 * 1024


class _ChunkedBody(web.Response):
    async def write_eof(self, data: bytes = b"") -> None:  # type: ignore[override]
        body = self._body
        assert isinstance(body, bytes)
        self._body = None
        view = memoryview(body)
        for start in range(0, len(view), CHUNK):
            await self.write(view[start:start + CHUNK])
        await super().write_eof(data)


def _respond(value: Any, out: encoding.Output, status: int = 200,
             warnings: list[str] | None = None) -> web.Response:
    body, ctype = encoding.encode(value, out)
    cls = _ChunkedBody if len(body) > 4 * CHUNK else web.Response
    resp = cls(body=body, status=status, content_type=ctype)
    for w in warnings or []:
        resp.headers.add("Warning", f'299 - "{w}"')
    return resp


def _status_response(err: StatusError) -> web.Response:
    resp = web.Response(body=orjson.dumps(err.status()), status=err.code,
                        content_type="application/json")
    if err.retry_after is not None:
        resp.headers["Retry-After"] = str(err.retry_after)
    return resp


def _write_options(query: Any) -> WriteOptions:
    dry = query.getall("dryRun", [])
    if any(d != "All" for d in dry):
        raise BadRequest(f'dryRun: Unsupported value: "{dry[0]}": supported values: "All"')
    validation = query.get("fieldValidation", "Warn")
    if validation not in ("Strict", "Warn", "Ignore"):
        raise BadRequest(f"fieldValidation: Unsupported value: {validation!r}: supported "
                         'values: "Ignore", "Warn", "Strict"')
    return WriteOptions(dry_run=bool(dry), field_manager=query.get("fieldManager", ""),
                        field_validation=validation, force=query.get("force") == "true")


def _int_param(query: Any, name: str) -> int | None:
    value = query.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"{name}: invalid value {value!r}: must be an integer") from None


async def _read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise RequestEntityTooLarge("the request body is larger than 3 MiB")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise RequestEntityTooLarge("the request body is larger than 3 MiB") from None


class Handlers:
    def __init__(self, api: ObjectAPI, discovery: Discovery, openapi: OpenAPI,
                 settings: Settings) -> None:
        self.api = api
        self.discovery = discovery
        self.openapi = openapi
        self.settings = settings

    # -- discovery ------------------------------------------------------------------

    async def version(self, request: web.Request) -> web.Response:
        return web.Response(body=self.discovery.version, content_type="application/json")

    def _root(self, request: web.Request, aggregated: bytes, plain: bytes) -> web.Response:
        """/api or /apis: the aggregated document when the client asks for it (saves
        kubectl a request per group), else the plain list."""
        agg = wants_aggregated(request.headers.get("Accept"))
        if agg:
            return web.Response(body=aggregated, headers={"Content-Type": agg})
        return web.Response(body=plain, content_type="application/json")

    def _discovery_path(self, p: Parsed) -> web.Response:
        if p.version:
            body = self.discovery.resource_lists.get((p.group, p.version))
        elif p.group:
            body = self.discovery.groups.get(p.group)
        else:
            body = None
        if body is None:
            raise NotFound("the server could not find the requested resource")
        return web.Response(body=body, content_type="application/json")

    async def openapi_index(self, request: web.Request) -> web.Response:
        return web.Response(body=self.openapi.index, content_type="application/json")

    async def openapi_doc(self, request: web.Request) -> web.Response:
        doc = self.openapi.documents.get(request.match_info["gv"])
        if doc is None:
            raise NotFound("the server could not find the requested resource")
        return web.Response(body=doc, content_type="application/json",
                            headers={"Cache-Control": "public, immutable"})

    # -- resources ------------------------------------------------------------------

    async def resource(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/api":
            return self._root(request, self.discovery.aggregated_core,
                              self.discovery.core_versions)
        if path == "/apis":
            return self._root(request, self.discovery.aggregated_groups,
                              self.discovery.group_list)
        parsed = parse_path(self.api.registry, path)
        if parsed.target is None:
            return self._discovery_path(parsed)
        t = parsed.target
        query = request.query
        verb = _verb(request.method, t, query)
        request[VERB], request[RESOURCE] = verb, t.resource
        identity: auth.Identity = request[IDENTITY]
        if t.subresource in proxy.SUBRESOURCES:
            # Logs and exec stream from the pod's node (proxy.py authorizes them itself);
            # like watches, they stay out of the latency histogram.
            request[VERB] = "connect"
            return await request.app[proxy.PROXY_KEY].handle(request, t, identity)
        auth.authorize(identity, auth.Attributes(verb, t.rt.group, t.rt.plural, t.subresource,
                                                 t.namespace, t.name,
                                                 query.get("fieldSelector", "")),
                       auth.StoreGraph(self.api.store))
        if verb not in t.rt.verbs and not t.subresource:
            raise MethodNotAllowed(f"{verb} is not supported on {t.resource}")
        out = encoding.negotiate(request.headers.get("Accept"))
        include = query.get("includeObject", "Metadata")
        method = request.method

        if t.subresource:
            return await self._subresource(request, t, out)
        if method == "GET" and verb == "get":
            return _respond(self._view(t, self.api.get(t).raw, out, include), out)
        if method == "GET" and verb == "watch":
            return await self._watch(request, t, out)
        if method == "GET":
            return self._list(t, query, out)
        if method == "POST" and not t.name:
            body = encoding.decode_body(await _read_body(request), request.headers.get("Content-Type"))
            obj, warnings = await self.api.create(t, body, _write_options(query), identity)
            return _respond(obj, out, 201, warnings)
        if method == "PUT" and t.name:
            body = encoding.decode_body(await _read_body(request),
                                        request.headers.get("Content-Type"))
            obj, warnings = await self.api.update(t, body, _write_options(query), identity)
            return _respond(obj, out, warnings=warnings)
        if method == "PATCH" and t.name:
            code, obj = await self.api.patch(t, await _read_body(request),
                                             request.headers.get("Content-Type", ""),
                                             _write_options(query), identity)
            return _respond(obj, out, code)
        if method == "DELETE":
            options = await self._delete_options(request)
            dry = bool(query.getall("dryRun", []) or options.get("dryRun"))
            warnings = strategy.delete_warnings(t.rt, delete_propagation(options))
            if t.name:
                code, obj = await self.api.delete(t, options, identity, dry)
                return _respond(obj, out, code, warnings)
            deleted = await self.api.delete_collection(
                t, options, identity, label_selector=query.get("labelSelector"),
                field_selector=query.get("fieldSelector"), dry_run=dry)
            return _respond({"kind": f"{t.rt.kind}List", "apiVersion": t.rt.api_version,
                             "metadata": {"resourceVersion": str(self.api.store.rv)},
                             "items": deleted}, out, warnings=warnings)
        raise MethodNotAllowed(f"{request.method} is not supported on this path")

    # Stored objects in the view the request asked for: in the version it names (conversion.py),
    # or as Table rows and metadata, which are drawn from the stored version.

    def _view(self, t: Target, raw: bytes, out: encoding.Output,
              include: str = "Metadata") -> Any:
        if out.view == encoding.AS_OBJECT:
            return self.api.served_raw(t, raw)
        return encoding.view_one(self.api.registry.storage_of(t.rt), raw, out, include)

    def _watch_line(self, kind: str, t: Target, raw: bytes, out: encoding.Output,
                    include: str) -> bytes:
        if out.view == encoding.AS_OBJECT:
            return encoding.watch_line(kind, t.rt, self.api.served_raw(t, raw), out, include)
        return encoding.watch_line(kind, self.api.registry.storage_of(t.rt), raw, out, include)

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        raw = await _read_body(request)
        options: dict[str, Any] = {}
        if raw.strip():
            options = encoding.decode_body(raw, request.headers.get("Content-Type") or "application/json")
            if not isinstance(options, dict):
                raise BadRequest("the body of a DELETE must be DeleteOptions")
        q = request.query
        if "propagationPolicy" in q:
            options["propagationPolicy"] = q["propagationPolicy"]
        grace = _int_param(q, "gracePeriodSeconds")
        if grace is not None:
            options["gracePeriodSeconds"] = grace
        return options

    def _list(self, t: Target, query: Any, out: encoding.Output) -> web.Response:
        limit = _int_param(query, "limit") or 0
        entries, rv, token, remaining = self.api.list(
            t, label_selector=query.get("labelSelector"),
            field_selector=query.get("fieldSelector"), limit=limit,
            continue_token=query.get("continue", ""))
        if out.view == encoding.AS_OBJECT:
            raws = [self.api.served_raw(t, e.raw) for e in entries]
            return _respond(encoding.list_body(t.rt, raws, rv, token, remaining), out)
        objs = [e.obj() for e in entries]
        if out.view == encoding.AS_TABLE:
            value = encoding.table(self.api.registry.storage_of(t.rt), objs, rv,
                                   include=query.get("includeObject", "Metadata"),
                                   continue_token=token)
        else:
            value = encoding.metadata_list(objs, rv, token)
        return _respond(value, out)

    async def _subresource(self, request: web.Request, t: Target,
                           out: encoding.Output) -> web.Response:
        identity: auth.Identity = request[IDENTITY]
        query = request.query
        method = request.method
        if t.subresource == "binding":
            if method != "POST":
                raise MethodNotAllowed("binding supports only create (POST)")
            body = encoding.decode_body(await _read_body(request), request.headers.get("Content-Type"))
            return _respond(await self.api.bind(t, body, identity), out, 201)
        if t.subresource == "scale":
            if method == "GET":
                return _respond(self.api.scale_of(t, self.api.get(t)), out)
            opts = _write_options(query)
            raw = await _read_body(request)
            if method == "PUT":
                scale = await self.api.update_scale(
                    t, encoding.decode_body(raw, request.headers.get("Content-Type")), identity, opts)
            elif method == "PATCH":
                scale = await self.api.patch_scale(t, raw, request.headers.get(
                    "Content-Type", ""), identity, opts)
            else:
                raise MethodNotAllowed("scale supports get, update and patch")
            return _respond(scale, out)
        # status
        if method == "GET":
            return _respond(self._view(t, self.api.get(t).raw, out), out)
        if method == "PUT":
            body = encoding.decode_body(await _read_body(request),
                                        request.headers.get("Content-Type"))
            obj, warnings = await self.api.update(t, body, _write_options(query), identity)
            return _respond(obj, out, warnings=warnings)
        if method == "PATCH":
            code, obj = await self.api.patch(t, await _read_body(request),
                                             request.headers.get("Content-Type", ""),
                                             _write_options(query), identity)
            return _respond(obj, out, code)
        raise MethodNotAllowed("status supports get, update and patch")

    async def _watch(self, request: web.Request, t: Target,
                     out: encoding.Output) -> web.StreamResponse:
        query = request.query
        timeout = _int_param(query, "timeoutSeconds")
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        include = query.get("includeObject", "Metadata")
        predicate = self.api.filters(t, query.get("labelSelector"), query.get("fieldSelector"))
        rv_param = query.get("resourceVersion", "")
        store = self.api.store
        # WatchList (kubectl >= 1.35 waits this way): the current objects as ADDED, then a
        # bookmark annotated k8s.io/initial-events-end, then changes.
        send_initial = query.get("sendInitialEvents") in ("true", "1")
        if send_initial and not bookmarks:
            raise BadRequest("sendInitialEvents requires allowWatchBookmarks=true")
        if rv_param in ("", "0") or send_initial:
            # "Get state and start at most recent": the current objects as ADDED, then
            # changes. Listing and subscribing without an await between them is atomic.
            initial = [e for e in store.list(t.resource, t.namespace or None)
                       if predicate is None or predicate(e.labels, e.fields)]
            if t.name:
                initial = [e for e in initial if e.name == t.name]
            watcher = store.watch(t.resource, t.namespace or None, predicate, None)
        else:
            try:
                since = int(rv_param)
            except ValueError:
                raise BadRequest(f'invalid resource version "{rv_param}"') from None
            initial = []
            watcher = store.watch(t.resource, t.namespace or None, predicate, since)
        try:
            resp = web.StreamResponse(headers={"Content-Type": "application/json",
                                               "Cache-Control": "no-cache"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            if initial:
                await resp.write(b"".join(self._watch_line("ADDED", t, e.raw, out, include)
                                          for e in initial))
            if send_initial:
                await resp.write(encoding.bookmark_line(t.rt, store.rv,
                                                        initial_events_end=True))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + (timeout if timeout is not None
                                      else self.settings.default_watch_timeout)
            next_bookmark = loop.time() + self.settings.bookmark_interval
            while True:
                now = loop.time()
                if now >= deadline:
                    break
                wait = min(deadline, next_bookmark if bookmarks else deadline) - now
                batch = await watcher.next_batch(min(wait, 5.0))
                if batch:
                    lines = [self._watch_line(kind, t, ch.entry.raw, out, include)
                             for kind, ch in batch if not t.name or ch.entry.name == t.name]
                    if lines:
                        await resp.write(b"".join(lines))
                if watcher.closed_reason is not None:
                    break
                if bookmarks and loop.time() >= next_bookmark:
                    await resp.write(encoding.bookmark_line(t.rt, store.rv))
                    next_bookmark = loop.time() + self.settings.bookmark_interval
                transport = request.transport
                if transport is None or transport.is_closing():
                    break
            await resp.write_eof()
            return resp
        except ConnectionResetError:
            # The client went away (kubectl stopped, a node restarted): a normal end of a
            # watch, not an error worth a traceback in the journal.
            return resp
        finally:
            watcher.close()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_middlewares(authn: auth.Authenticator, metrics: ApiMetrics | None,
                     public_paths: frozenset[str] = UNAUTHENTICATED_PATHS):
    @web.middleware
    async def status_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        code = 500
        try:
            response = await handler(request)
            code = response.status
            return response
        except StatusError as err:
            code = err.code
            return _status_response(err)
        except web.HTTPRequestEntityTooLarge:
            code = 413
            return _status_response(RequestEntityTooLarge("the request body is larger than "
                                                          "3 MiB"))
        except web.HTTPException as err:
            code = err.status
            if err.status == 404:
                return _status_response(NotFound("the server could not find the requested "
                                                 "resource"))
            if err.status == 405:
                return _status_response(MethodNotAllowed(err.reason))
            raise
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as err:  # a bug: say so in a Status, log the traceback
            log.exception("internal error", extra={"path": request.path})
            return _status_response(InternalError(f"internal error: {type(err).__name__}"))
        finally:
            if metrics is not None and VERB in request:
                verb, resource = request[VERB], request[RESOURCE]
                metrics.requests.inc(verb, resource, str(code))
                if verb not in ("watch", "connect"):
                    metrics.latency.observe(time.perf_counter() - started, verb, resource)

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        # The status page's paths authenticate with its own session (master/web).
        if request.path in public_paths or is_web_path(request.path):
            return await handler(request)
        identity = authn.authenticate(request.headers.get("Authorization"))
        if identity is None:
            raise Unauthorized("Unauthorized")
        request[IDENTITY] = identity
        return await handler(request)

    return [status_errors, authenticate]


def build_app(api: ObjectAPI, authn: auth.Authenticator, metrics: MetricsRegistry,
              settings: Settings | None = None,
              join: nodeapi.JoinSettings | None = None,
              web_settings: WebSettings | None = None) -> web.Application:
    settings = settings or Settings()
    api_metrics = ApiMetrics(metrics, api)
    public = UNAUTHENTICATED_PATHS | nodeapi.PUBLIC_PATHS
    app = web.Application(client_max_size=MAX_BODY,
                          middlewares=make_middlewares(authn, api_metrics, public))
    app[API_KEY] = api
    app[AUTHN_KEY] = authn
    app[METRICS_KEY] = metrics
    app[SETTINGS_KEY] = settings
    handlers = Handlers(api, Discovery(api.registry), OpenAPI(api.registry), settings)

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def render_metrics(request: web.Request) -> web.Response:
        return web.Response(text=metrics.render(), content_type="text/plain",
                            charset="utf-8", headers={"X-Content-Type-Options": "nosniff"})

    app.router.add_get("/healthz", health)
    app.router.add_get("/livez", health)
    app.router.add_get("/readyz", health)
    app.router.add_get("/version", handlers.version)
    app.router.add_get("/metrics", render_metrics)
    app.router.add_get("/openapi/v3", handlers.openapi_index)
    app.router.add_get("/openapi/v3/{gv:.+}", handlers.openapi_doc)
    # Node join, usage reports and metrics.k8s.io (nodeapi.py): before the /apis catch-all.
    nodeapi.add_routes(app, api, authn, IDENTITY, handlers.discovery, join)
    # pods/log and pods/exec through the node agents, and their endpoints (proxy.py).
    proxy.add_routes(app, api, IDENTITY, join.data_dir if join else None)
    # The status page (master/web) after both: it uses their usage cache, membership and
    # node proxy. Its cluster gauges join /metrics.
    web_routes.add_routes(app, api, authn, IDENTITY, app[nodeapi.USAGE_KEY],
                          web_settings or WebSettings(), version_info()["gitVersion"])
    gauges.register(metrics, api.store, app[nodeapi.USAGE_KEY])
    app.router.add_route("*", "/api", handlers.resource)
    app.router.add_route("*", "/apis", handlers.resource)
    app.router.add_route("*", "/api/{tail:.*}", handlers.resource)
    app.router.add_route("*", "/apis/{tail:.*}", handlers.resource)
    return app
