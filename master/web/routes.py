"""The status page's HTTP routes (helpers/web-contract.md), on the API server's app.

The API's bearer-token middleware lets `/`, `/static/`, `/manifest.webmanifest` and
`/web/v1/` through (master/web/__init__.py: is_web_path); every handler here decides
itself: the page and its static files are public, the view needs a session (or the
read-only public mode), actions and logout need a session, the CSRF token and a
same-origin Origin. `POST /bramble/v1/dashboard/links` is an ordinary API route behind
the bearer token (admins only).

Handlers stay thin: auth and parsing here, decisions in session.py, view.py and
actions.py. Errors are Kubernetes Status bodies (app.py's status_errors middleware).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import mimetypes
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from bramble.kube.errors import (
    FieldError,
    Forbidden,
    Invalid,
    NotFound,
    Unauthorized,
    invalid,
    required,
)
from bramble.kube.names import is_dns1123_label, is_dns1123_subdomain
from bramble.mdns import url_host

from ..api import auth, joinapi, proxy
from ..api.encoding import read_json
from ..api.nodeapi import UsageCache
from ..api.rest import ObjectAPI, Target, rfc3339
from . import WebSettings, session
from .actions import Actions, Approver
from .live import LiveView
from .view import with_session

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
LINKS_PATH = "/bramble/v1/dashboard/links"
PING = 15.0
MAX_BODY = 16 * 1024
_STATIC_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml",
          ".html": "text/html", ".webmanifest": "application/manifest+json",
          ".json": "application/json", ".png": "image/png", ".ico": "image/x-icon"}
# The page loads only its own files; inline style attributes (usage bars) are allowed,
# inline scripts are not.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
                               "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                               "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True)
class _File:
    body: bytes
    etag: str
    content_type: str
    stamp: tuple[int, int]  # (mtime_ns, size): re-read when it changes


class StaticFiles:
    """Whatever W2's page put in static/, read when it changed, served with an ETag."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cache: dict[str, _File] = {}

    def _load(self, name: str) -> _File | None:
        path = self.folder / name
        try:
            st = path.stat()
            if not path.is_file():
                return None
            cached = self._cache.get(name)
            stamp = (st.st_mtime_ns, st.st_size)
            if cached is not None and cached.stamp == stamp:
                return cached
            body = path.read_bytes()
        except OSError:
            self._cache.pop(name, None)
            return None
        suffix = path.suffix.lower()
        ctype = _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
        loaded = _File(body, f'"{hashlib.sha256(body).hexdigest()[:32]}"', ctype, stamp)
        self._cache[name] = loaded
        return loaded

    async def response(self, request: web.Request, name: str) -> web.Response:
        if not _STATIC_NAME.fullmatch(name) or ".." in name:
            raise NotFound("the server could not find the requested resource")
        found = await asyncio.to_thread(self._load, name)
        if found is None:
            raise NotFound("the server could not find the requested resource")
        common = {"ETag": found.etag, "Cache-Control": "no-cache",
                  "X-Content-Type-Options": "nosniff"}
        if found.content_type == "text/html":
            common.update(_PAGE_HEADERS)  # the page under any name gets its CSP
        if found.etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=common)
        charset = "utf-8" if found.content_type.startswith("text/") or found.content_type in (
            "application/json", "application/manifest+json", "image/svg+xml") else None
        return web.Response(body=found.body, content_type=found.content_type,
                            charset=charset, headers=common)


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(value), status=status,
                        content_type="application/json", headers={"Cache-Control": "no-store"})


def _set_cookie(resp: web.StreamResponse, sid: str) -> None:
    resp.set_cookie(session.COOKIE, sid, httponly=True, secure=True, samesite="Strict",
                    path="/", max_age=int(session.IDLE))


def _link_host(host: str, addresses: tuple[str, ...]) -> str:
    """The host:port a one-time link names: the one the caller used, unless that is
    loopback (the phone cannot reach it) and the master knows a LAN address."""
    name, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    name = name or host
    bare = name.strip("[]")
    try:
        loopback = ipaddress.ip_address(bare).is_loopback
    except ValueError:
        loopback = bare == "localhost"
    if not loopback or not addresses:
        return host
    lan = url_host(addresses[0])
    return f"{lan}:{port}" if port else lan


class WebRoutes:
    def __init__(self, api: ObjectAPI, authn: auth.Authenticator,
                 identity_key: web.RequestKey[auth.Identity], usage: UsageCache,
                 membership: Any, settings: WebSettings, version: str,
                 static_dir: Path = STATIC_DIR) -> None:
        self.api = api
        self.authn = authn
        self.identity_key = identity_key
        self.settings = settings
        self.sessions = session.Sessions()
        self.links = session.OneTimeLinks()
        self.limiter = session.LoginLimiter()
        approver = Approver(membership) if membership is not None else None
        self.actions = Actions(api, approver)
        self.live = LiveView(api.store, usage, approver,
                             {"name": settings.cluster_name, "version": version})
        self.static = StaticFiles(static_dir)

    # -- who is asking -------------------------------------------------------------------

    def _session(self, request: web.Request, *, touch: bool = True) -> session.Session | None:
        return self.sessions.get(request.cookies.get(session.COOKIE), touch=touch)

    def _require(self, request: web.Request) -> session.Session:
        found = self._session(request)
        if found is None:
            raise Unauthorized("log in first: the session is missing or has expired")
        return found

    def _require_post(self, request: web.Request) -> session.Session:
        """A session, its CSRF token in the header, and our own Origin (if any)."""
        found = self._require(request)
        if not session.origin_allowed(request.headers.get("Origin"), request.host):
            raise Forbidden("the request came from another site (Origin does not match)")
        if not session.same(request.headers.get(session.CSRF_HEADER), found.csrf):
            raise Forbidden(f"the {session.CSRF_HEADER} header is missing or wrong: reload "
                            f"the page")
        return found

    def _viewer(self, request: web.Request) -> tuple[str, bool]:
        """(csrf, read-only) of whoever may see the view; Unauthorized otherwise."""
        found = self._session(request)
        if found is not None:
            return found.csrf, False
        if self.settings.read_only_public:
            return "", True
        raise Unauthorized("log in first: the session is missing or has expired")

    # -- the page ------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.Response:
        return await self.static.response(request, "index.html")

    async def static_file(self, request: web.Request) -> web.Response:
        return await self.static.response(request, request.match_info["file"])

    async def manifest(self, request: web.Request) -> web.Response:
        return await self.static.response(request, "manifest.webmanifest")

    # -- logging in and out --------------------------------------------------------------

    async def login(self, request: web.Request) -> web.Response:
        client = request.remote or ""
        wait = self.limiter.retry_after(client)
        if wait:
            raise joinapi.TooManyRequests("too many failed logins: try again in a minute",
                                          retry_after=wait)
        if not session.origin_allowed(request.headers.get("Origin"), request.host):
            raise Forbidden("the request came from another site (Origin does not match)")
        body = await read_json(request, MAX_BODY, "the login body is too large")
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token.strip():
            raise Invalid("Login", "", [required("token", "the admin token")])
        identity = self.authn.authenticate(f"Bearer {token.strip()}")
        if identity is None or not identity.is_admin:
            self.limiter.failed(client)
            log.warning("status page login refused", extra={"peer": client})
            raise Unauthorized("that is not the cluster's admin token")
        self.limiter.succeeded(client)
        sid, _ = self.sessions.create(identity)
        log.info("status page login", extra={"peer": client, "user": identity.user})
        resp = web.Response(status=204, headers={"Cache-Control": "no-store"})
        _set_cookie(resp, sid)
        return resp

    async def login_link(self, request: web.Request) -> web.Response:
        headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        identity = self.links.redeem(request.match_info["code"])
        if identity is None:
            return web.Response(status=303, headers={**headers, "Location": "/?login=expired"})
        sid, _ = self.sessions.create(identity)
        log.info("status page login with a one-time link", extra={"peer": request.remote})
        resp = web.Response(status=303, headers={**headers, "Location": "/"})
        _set_cookie(resp, sid)
        return resp

    async def logout(self, request: web.Request) -> web.Response:
        self._require_post(request)
        self.sessions.drop(request.cookies.get(session.COOKIE))
        resp = web.Response(status=204, headers={"Cache-Control": "no-store"})
        resp.del_cookie(session.COOKIE, path="/", secure=True, httponly=True,
                        samesite="Strict")
        return resp

    async def session_info(self, request: web.Request) -> web.Response:
        found = self._session(request)
        if found is None:
            return _json({"authenticated": False,
                          "readOnly": self.settings.read_only_public})
        return _json({"authenticated": True, "csrf": found.csrf, "readOnly": False})

    async def new_link(self, request: web.Request) -> web.Response:
        identity = request[self.identity_key]
        if not identity.is_admin:
            raise Forbidden(f'User "{identity.user}" cannot create dashboard login links: '
                            f"only cluster admins may", kind="dashboardlinks",
                            group="bramble")
        code = self.links.issue(identity)
        expires = datetime.now(UTC) + timedelta(seconds=self.links.ttl)
        host = _link_host(request.host, self.settings.addresses)
        return _json({"url": f"https://{host}/web/v1/login/{code}",
                      "expiresAt": rfc3339(expires)}, status=201)

    # -- the view ------------------------------------------------------------------------

    async def view(self, request: web.Request) -> web.Response:
        csrf, read_only = self._viewer(request)
        body = with_session(await self.live.current(), csrf, read_only)
        return web.Response(body=body, content_type="application/json",
                            headers={"Cache-Control": "no-store"})

    async def events(self, request: web.Request) -> web.StreamResponse:
        csrf, read_only = self._viewer(request)
        sid = request.cookies.get(session.COOKIE)
        live = self.live
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        live.viewers += 1
        try:
            while not live.stopping:
                wake = live.next_change
                body = with_session(await live.current(), csrf, read_only)
                await resp.write(b"event: view\ndata: " + body + b"\n\n")
                while not wake.is_set():
                    try:
                        await asyncio.wait_for(wake.wait(), PING)
                    except TimeoutError:
                        await resp.write(b": ping\n\n")
                if not read_only and self.sessions.get(sid, touch=False) is None:
                    break  # logged out or expired: the page reconnects and gets 401
            return resp
        except ConnectionResetError:
            return resp  # the page went away
        finally:
            live.viewers -= 1

    # -- actions and logs ----------------------------------------------------------------

    async def action(self, request: web.Request) -> web.Response:
        found = self._require_post(request)
        body = await read_json(request, MAX_BODY, "an action's body is too large")
        result = await self.actions.run(request.match_info["action"], body, found.identity)
        self.live.invalidate()
        return _json({"ok": True, "message": result.message})

    async def logs(self, request: web.Request) -> web.StreamResponse:
        found = self._require(request)
        namespace, name = request.match_info["namespace"], request.match_info["pod"]
        errs: list[FieldError] = []
        for field, value, check in (("namespace", namespace, is_dns1123_label),
                                    ("pod", name, is_dns1123_subdomain)):
            problems = check(value)
            if problems:
                errs.append(invalid(field, value, "; ".join(problems)))
        tail = request.query.get("tailLines")
        if tail is not None and not (tail.isdigit() and int(tail) <= 100_000):
            errs.append(invalid("tailLines", tail, "must be a whole number up to 100000"))
        if request.query.get("follow", "false") not in ("true", "false", "1", "0"):
            errs.append(invalid("follow", request.query["follow"], "must be true or false"))
        if errs:
            raise Invalid("LogRequest", name, errs)
        rt = self.api.registry.by_path("", "v1", "pods")
        assert rt is not None
        if not self.api.store.get("pods", namespace, name):
            raise NotFound(f'pods "{name}" not found', kind="pods", name=name)
        return await request.app[proxy.PROXY_KEY].handle(
            request, Target(rt, namespace, name, "log"), found.identity)


WEB_KEY = web.AppKey("status-page", WebRoutes)


def add_routes(app: web.Application, api: ObjectAPI, authn: auth.Authenticator,
               identity_key: web.RequestKey[auth.Identity], usage: UsageCache,
               settings: WebSettings, version: str) -> WebRoutes:
    """The status page's routes and its live view's lifecycle. Call after nodeapi's and
    proxy's add_routes (it uses their usage cache, membership and node proxy)."""
    routes = WebRoutes(api, authn, identity_key, usage, app.get(joinapi.MEMBERSHIP_KEY),
                       settings, version)
    app[WEB_KEY] = routes
    app.cleanup_ctx.append(routes.live.lifecycle)
    app.on_shutdown.append(routes.live.stop_streams)
    r = app.router
    r.add_get("/", routes.index)
    r.add_get("/static/{file}", routes.static_file)
    r.add_get("/manifest.webmanifest", routes.manifest)
    r.add_post("/web/v1/login", routes.login)
    r.add_get("/web/v1/login/{code}", routes.login_link)
    r.add_post("/web/v1/logout", routes.logout)
    r.add_get("/web/v1/session", routes.session_info)
    r.add_get("/web/v1/view", routes.view)
    r.add_get("/web/v1/events", routes.events)
    r.add_post("/web/v1/actions/{action}", routes.action)
    r.add_get("/web/v1/logs/{namespace}/{pod}", routes.logs)
    r.add_post(LINKS_PATH, routes.new_link)
    return routes
