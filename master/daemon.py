"""`bramble master`: the control-plane process, its startup, supervision and graceful stop.

Startup order: data dir and credentials -> store (load, committer) -> built-in namespaces
-> HTTPS listener. Stop order (on SIGTERM/SIGINT or when any root task dies): end watch
streams, stop accepting and finish in-flight requests within a bound, let the store commit
what is staged, close the store. Each resource is released even if an earlier step fails.

As in hypercorn's `serve(..., shutdown_trigger)`, signals only set an event: tests and
`bramble up` run the same `serve()` with their own trigger.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import socket
import ssl
import sys
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from bramble import kubeconfig
from bramble.daemon import run_until_signal
from bramble.kube.errors import AlreadyExists

from . import discovery, pki
from .api import auth, nodeapi
from .api.allocation import DEFAULT_SERVICE_CIDR, ServiceNetwork
from .api.app import Settings, build_app
from .api.resources import Registry
from .api.rest import Indexer, ObjectAPI, Target, WriteOptions
from .controllers import ControllerSettings
from .controllers import build as build_controllers
from .controllers.namespace import NamespaceController
from .discovery import SeenNodes
from .metrics import Registry as MetricsRegistry
from .store import Store, TinyDBBackend
from .web import WebSettings, redirect

log = logging.getLogger(__name__)

BUILTIN_NAMESPACES = ("default", "kube-system", "kube-node-lease")
STORE_FILE = "store.db"
ADMIN = auth.Identity("bramble-admin", (auth.ADMIN_GROUP,))


@dataclass
class MasterConfig:
    data_dir: Path
    bind: str = "0.0.0.0"
    port: int = 6443
    shutdown_timeout: float = 10.0
    settings: Settings = field(default_factory=Settings)
    fsync: bool = True  # only benchmarks comparing costs turn this off
    # Changes kept in memory for watches that resume from a resourceVersion.
    watch_history: int = 10_000
    controllers: ControllerSettings = field(default_factory=ControllerSettings)
    run_controllers: bool = True  # API-only tests and benchmarks turn the loops off
    # mDNS (master/discovery.py): advertise the API, answer bramble.local, see node agents.
    # Off here so embedded masters (tests) stay off the LAN; `bramble master` turns it on.
    mdns: bool = False
    mdns_loopback: bool = False  # tests only: also advertise on loopback
    # Where Services' cluster IPs come from (master/api/allocation.py); k3s' default.
    service_cidr: str = DEFAULT_SERVICE_CIDR
    # The status page's view without a login (never its actions nor logs); off by default.
    dashboard_read_only_public: bool = False
    # Front doors for phones (master/web/redirect.py), each used only if the port is free:
    # the same HTTPS app on `https_port` (443: https://bramble.local) and a redirect from
    # plain HTTP on `http_redirect_port` (80). None: off (embedded masters, tests); 0: an
    # ephemeral port (tests of the front doors themselves).
    https_port: int | None = None
    http_redirect_port: int | None = None


@dataclass
class Running:
    """What a started master exposes to its embedder (tests, `bramble up`)."""

    url: str
    port: int
    credentials: pki.Credentials
    api: ObjectAPI
    store: Store
    metrics: MetricsRegistry
    ssl_context: ssl.SSLContext
    seen_nodes: SeenNodes | None = None  # node agents seen on the LAN, when mDNS runs
    https_port: int | None = None  # the extra HTTPS port bound (443), if any
    http_redirect_port: int | None = None  # the plain-HTTP redirect's port, if bound
    # The node agents' usage reports in memory (what `kubectl top` shows; the autoscaler
    # reads them).
    usage: nodeapi.UsageCache | None = None


def host_identity() -> tuple[list[str], list[str]]:
    """This host's names and non-loopback addresses, for the serving certificate's SANs."""
    import psutil  # imported here: only the master's startup needs it

    names = [socket.gethostname()]
    addresses: list[str] = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                ip = ipaddress.ip_address(a.address.split("%")[0])
            except ValueError:
                continue
            if not (ip.is_loopback or ip.is_link_local):
                addresses.append(str(ip))
    return names, sorted(set(addresses))


async def _ensure_namespaces(api: ObjectAPI) -> None:
    rt = api.registry.by_path("", "v1", "namespaces")
    assert rt is not None
    for name in BUILTIN_NAMESPACES:
        if api.store.get("namespaces", "", name) is None:
            try:
                await api.create(Target(rt), {"metadata": {"name": name}}, WriteOptions(),
                                 ADMIN)
            except AlreadyExists:
                pass


async def refresh_credentials(config: MasterConfig, creds: pki.Credentials,
                              ctx: ssl.SSLContext, every: float = 6 * 3600) -> None:
    """Re-check the serving certificate now and then: a Pi that runs for a year without
    a restart, or whose DHCP address changed, must not serve a certificate that does not
    match. New connections get the re-issued certificate; open ones keep theirs."""
    current = creds.server_not_after
    while True:
        await asyncio.sleep(every)
        try:
            names, addresses = await asyncio.to_thread(host_identity)
            fresh = await asyncio.to_thread(pki.ensure_credentials, config.data_dir, names,
                                            addresses, config.port)
        except (pki.PKIError, OSError) as err:
            # The current certificate keeps serving; a clock not yet synced or a full
            # disk is worth a warning, not a master that stops.
            log.warning("could not refresh the serving certificate", extra={"error": str(err)})
            continue
        if fresh.server_not_after != current:
            ctx.load_cert_chain(fresh.cert_file, fresh.key_file)
            current = fresh.server_not_after
            log.info("serving certificate re-issued",
                     extra={"not_after": fresh.server_not_after.isoformat()})


async def _make_credentials(data_dir: Path, port: int, names: list[str],
                            addresses: list[str]) -> None:
    """Create keys and certificates in a child process: `cryptography` costs ~14 MB that
    a Pi master would otherwise carry for its whole life after its first start."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bramble.master.pki", str(data_dir), str(port),
        json.dumps(names), json.dumps(addresses), stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise pki.PKIError(err.decode().strip() or
                           f"creating the cluster's certificates failed ({proc.returncode})")


def _authenticator(data_dir: Path) -> auth.Authenticator:
    table = pki.load_token_table(data_dir)
    return auth.Authenticator({digest: auth.Identity(i.user, tuple(i.groups))
                               for digest, i in table.items()})


async def start(config: MasterConfig, stack: AsyncExitStack) -> Running:
    """Start every part of the master; `stack` stops them in reverse order."""
    data_dir = config.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    names, addresses = await asyncio.to_thread(host_identity)
    if not await asyncio.to_thread(pki.certificates_current, data_dir, names, addresses):
        await _make_credentials(data_dir, config.port, names, addresses)
    creds = await asyncio.to_thread(pki.ensure_credentials, data_dir, names, addresses,
                                    config.port)
    registry = Registry()
    metrics = MetricsRegistry()
    commit_latency = metrics.histogram("bramble_store_commit_duration_seconds",
                                       "Time to make one batch of writes durable.")
    written = metrics.counter("bramble_store_bytes_written_total",
                              "Bytes the store wrote to disk.")
    commits = metrics.counter("bramble_store_commits_total", "Durable store commits.")

    def on_commit(seconds: float, nbytes: int, ops: int) -> None:
        commit_latency.observe(seconds)
        written.inc(amount=nbytes)
        commits.inc()

    store = Store(TinyDBBackend(data_dir / STORE_FILE, fsync=config.fsync), Indexer(registry),
                  on_commit=on_commit, history=config.watch_history,
                  volatile=registry.volatile)
    await store.open()
    stack.push_async_callback(store.close)
    store.start()
    api = ObjectAPI(store, registry,
                    service_network=ServiceNetwork.parse(config.service_cidr))
    await _ensure_namespaces(api)

    seen = SeenNodes() if config.mdns else None
    loopback_only = config.bind.startswith("127.") or config.bind in ("::1", "localhost")
    app = build_app(api, _authenticator(data_dir), metrics, config.settings,
                    join=nodeapi.JoinSettings(data_dir, creds.ca_pem, creds.join_token, seen),
                    web_settings=WebSettings(
                        read_only_public=config.dashboard_read_only_public,
                        # Login links for phones name a LAN address, unless the master
                        # listens on loopback only (tests).
                        addresses=() if loopback_only else tuple(addresses)))
    runner = web.AppRunner(app, shutdown_timeout=config.shutdown_timeout, access_log=None,
                           handle_signals=False)
    await runner.setup()

    async def stop_http() -> None:
        # Watches are long-lived: end them first so the runner's bounded wait for
        # in-flight requests is spent on real requests.
        store.hub.close_all("master shutting down")
        await runner.cleanup()

    stack.push_async_callback(stop_http)
    ssl_ctx = pki.server_ssl_context(creds)
    site = web.TCPSite(runner, config.bind, config.port, ssl_context=ssl_ctx,
                       reuse_address=True)
    await site.start()
    port = config.port
    if port == 0:  # tests bind an ephemeral port
        server = site._server  # noqa: SLF001 - aiohttp exposes no public accessor
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    host = "127.0.0.1" if config.bind in ("0.0.0.0", "::", "127.0.0.1") else config.bind
    url = f"https://{host}:{port}"
    if port != config.port:
        # An ephemeral port (tests): point the admin kubeconfig at the port really bound.
        await asyncio.to_thread(kubeconfig.write, creds.kubeconfig_path,
                                kubeconfig.build(url, creds.ca_pem, creds.admin_token))
    https_port, redirect_port = await _front_doors(config, runner, ssl_ctx, port, stack)
    doors = {k: v for k, v in (("https_port", https_port), ("http_redirect_port",
                                                             redirect_port)) if v}
    log.info("master ready", extra={"api": url, "kubeconfig": str(creds.kubeconfig_path),
                                    "data_dir": str(data_dir), "objects_rv": store.rv,
                                    **doors})
    return Running(url, port, creds, api, store, metrics, ssl_ctx, seen, https_port,
                   redirect_port, usage=app[nodeapi.USAGE_KEY])


async def _front_doors(config: MasterConfig, runner: web.AppRunner, ssl_ctx: ssl.SSLContext,
                       api_port: int, stack: AsyncExitStack) -> tuple[int | None, int | None]:
    """The optional extra HTTPS port and plain-HTTP redirect, where their ports are free.
    The extra HTTPS site shares the API's runner, so `stop_http` stops it too."""
    https_port = None
    if config.https_port is not None and config.https_port != api_port:
        https_port = await redirect.try_site(runner, config.bind, config.https_port, ssl_ctx,
                                             "HTTPS for the status page")
    redirect_port = None
    if config.http_redirect_port is not None:
        plain = web.AppRunner(redirect.redirect_app(https_port or api_port),
                              shutdown_timeout=1.0, access_log=None, handle_signals=False)
        await plain.setup()
        stack.push_async_callback(plain.cleanup)
        redirect_port = await redirect.try_site(plain, config.bind, config.http_redirect_port,
                                                None, "the plain-HTTP redirect")
    return https_port, redirect_port


async def serve(config: MasterConfig, shutdown: asyncio.Event | None = None,
                started: asyncio.Future[Running] | None = None) -> None:
    """Run the master until `shutdown` is set or a root task dies."""
    shutdown = shutdown or asyncio.Event()
    async with AsyncExitStack() as stack:
        running = await start(config, stack)
        if started is not None and not started.done():
            started.set_result(running)
        committer = running.store._task  # noqa: SLF001 - the store's own root task
        stop_waiter = asyncio.create_task(shutdown.wait(), name="shutdown-trigger")
        refresher = asyncio.create_task(refresh_credentials(
            config, running.credentials, running.ssl_context), name="credentials-refresh")
        namespaces = asyncio.create_task(NamespaceController(running.api).run(),
                                         name="namespace-controller")
        loops = [asyncio.create_task(c.run(), name=c.name)
                 for c in (build_controllers(
                     running.api, config.controllers,
                     usage=running.usage.reports if running.usage is not None else None)
                           if config.run_controllers else [])]
        owned = [stop_waiter, refresher, namespaces, *loops]
        if running.seen_nodes is not None:
            owned.append(asyncio.create_task(discovery.run(discovery.Advertisement(
                api_port=running.port, ca_sha256=running.credentials.ca_fingerprint(),
                bind=config.bind, allow_loopback=config.mdns_loopback), running.seen_nodes),
                name="mdns"))
        roots: set[asyncio.Task] = set(owned)
        if committer is not None:
            roots.add(committer)
        done, _ = await asyncio.wait(roots, return_when=asyncio.FIRST_COMPLETED)
        for task in owned:
            task.cancel()
        await asyncio.gather(*owned, return_exceptions=True)
        for task in done:
            if task is not stop_waiter and task.exception() is not None:
                log.critical("a root task failed; stopping", extra={"task": task.get_name()})
                raise task.exception()  # type: ignore[misc]
        log.info("master stopping")
    log.info("master stopped")


def run(config: MasterConfig) -> int:
    """Blocking entry point for `bramble master`: serve until SIGTERM or SIGINT."""
    try:
        run_until_signal(lambda shutdown, started: serve(config, shutdown, started))
    except pki.PKIError as err:  # pragma: no cover - exercised via the CLI
        log.error(str(err))
        return 1
    return 0


