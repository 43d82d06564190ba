"""Friendly front doors: a phone typing `bramble.local` should land on the status page.

Browsers try http://bramble.local (port 80) or https://bramble.local (port 443), while the
API server listens on 6443. When those ports are free the master also
- serves its HTTPS app on 443 (the same app: same auth, same certificate), and
- answers plain HTTP on 80 with a permanent redirect to the HTTPS page, and nothing else:
  no data is served unencrypted, so the port needs no authentication.
A port already taken (another web server on the Pi) or not allowed (no
CAP_NET_BIND_SERVICE) is skipped with a log line: these are conveniences, never a reason
for the master not to start.

The redirect's target keeps the host name the browser asked for (bramble.local, an address)
so the certificate, which names both, matches; a Host header that is not a plain host name
or address falls back to the master's own name, so the redirect can never point elsewhere
with odd characters smuggled in.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import ssl

from aiohttp import web

from bramble.mdns import url_host

log = logging.getLogger(__name__)

FALLBACK_HOST = "bramble.local"
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")


def _host_of(header: str) -> str:
    """The host part of a Host header ("pi:80", "[fe80::1]:80", "10.0.0.5"), or ""."""
    header = header.strip()
    if header.startswith("["):
        end = header.find("]")
        if end < 0:
            return ""
        host, rest = header[1:end], header[end + 1:]
        if rest and not re.fullmatch(r":\d{1,5}", rest):
            return ""
        try:
            return str(ipaddress.IPv6Address(host.split("%")[0]))
        except ValueError:
            return ""
    host, _, port = header.partition(":")
    if port and not port.isdigit():
        return ""
    if _HOSTNAME.match(host):
        return host.rstrip(".").lower()
    return ""


def location(host_header: str, path_qs: str, https_port: int) -> str:
    """Where a plain-HTTP request goes: the same host and path over HTTPS."""
    host = _host_of(host_header) or FALLBACK_HOST
    if not path_qs.startswith("/") or path_qs.startswith("//"):
        path_qs = "/"  # never a scheme-relative URL: the redirect stays on this host
    netloc = url_host(host)
    if https_port != 443:
        netloc += f":{https_port}"
    return f"https://{netloc}{path_qs}"


def redirect_app(https_port: int) -> web.Application:
    async def redirect(request: web.Request) -> web.Response:
        # 308 keeps the method; browsers only ever GET here, and a POST to plain HTTP
        # must not be turned into a GET of something else.
        raise web.HTTPPermanentRedirect(
            location(request.headers.get("Host", ""), request.raw_path, https_port))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    return app


async def try_site(runner: web.AppRunner, bind: str, port: int,
                   ssl_context: ssl.SSLContext | None, what: str) -> int | None:
    """Start a listener on `port` if it can be had; the port bound, or None."""
    site = web.TCPSite(runner, bind, port, ssl_context=ssl_context, reuse_address=True)
    try:
        await site.start()
    except OSError as err:
        await site.stop()  # unregister it from the runner: it never served
        log.info(f"not serving {what}", extra={"port": port, "error": err.strerror or str(err)})
        return None
    server = site._server  # noqa: SLF001 - aiohttp exposes no public accessor
    assert server is not None
    return server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
