"""The service proxy: applies the desired state (rules.py) to running listeners.

`Proxier.apply(services, endpoints)` computes what should be served and changes only what
differs, so a change takes effect as soon as apply() is called (the agent calls it on
every Service/Endpoints watch event):
- new backends/policies go to the balancer at once; every later connection (TCP) or new
  flow (UDP) uses them. Established TCP connections are left alone, also to backends that
  are gone (they finish or fail on their own); UDP flows to backends that left are closed.
- listeners no longer wanted stop accepting, new ones are bound, kept ones stay bound (a
  listener that now belongs to another service port is just re-routed);
- ClusterIPs are made local with the `ensure_address` hook before binding, and released
  with `remove_address` when no listener uses them any more.

A listener that cannot be bound (or whose address cannot be made local) is reported in
the ApplyResult and retried every `retry_interval` until it works or is not wanted; it
never stops the others. Sticky-client entries are swept every `sweep_interval`.

`close()` (idempotent; also `async with`) stops accepting, cancels connects in progress
and closes every connection. ClusterIP addresses are left in place: a restarted agent
finds them there, and without a listener they refuse connections meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from types import TracebackType

from . import rules
from .balancer import Balancer
from .errors import AddressError
from .rules import TCP, Backend, Desired, Listener, Obj, ServicePortName
from .tcp import DEFAULT_PIPE_SIZE, ZERO_COPY_AVAILABLE, Connections, Pool, TcpProxy
from .udp import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_FLOWS, UdpProxy

log = logging.getLogger(__name__)

AddressHook = Callable[[str], Awaitable[object]]


@dataclass(frozen=True)
class ProxyOptions:
    # Where NodePorts answer (the node's LAN addresses).
    node_addresses: tuple[str, ...] = ()
    zero_copy: bool = ZERO_COPY_AVAILABLE
    pipe_size: int = DEFAULT_PIPE_SIZE
    udp_idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    udp_max_flows: int = DEFAULT_MAX_FLOWS  # per UDP listener
    retry_interval: float = 5.0
    sweep_interval: float = 60.0


@dataclass(frozen=True)
class ApplyResult:
    added: tuple[Listener, ...] = ()
    removed: tuple[Listener, ...] = ()
    failed: dict[Listener, str] = field(default_factory=dict)
    conflicts: tuple[rules.Conflict, ...] = ()


class Proxier:
    def __init__(self, options: ProxyOptions | None = None, *,
                 ensure_address: AddressHook | None = None,
                 remove_address: AddressHook | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self.options = options or ProxyOptions()
        self._ensure_address = ensure_address
        self._remove_address = remove_address
        self._clock = clock
        rng = rng or random.Random()
        self.balancer = Balancer(start=rng.randrange)
        self._connections = Connections(Pool(self.options.pipe_size), self.options.zero_copy)
        self._desired = Desired()
        self._routes: dict[Listener, ServicePortName] = {}
        self._running: dict[Listener, TcpProxy | UdpProxy] = {}
        self._addresses: set[str] = set()  # ClusterIPs made local through the hook
        self._conflicts: set[rules.Conflict] = set()
        self._lock = asyncio.Lock()
        self._retry: asyncio.Task[None] | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    async def __aenter__(self) -> Proxier:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    def listeners(self) -> dict[Listener, ServicePortName]:
        """The listeners bound now, and the service port each serves."""
        return {listener: self._routes[listener] for listener in self._running}

    def connections(self) -> int:
        """Open TCP connections (relayed or connecting)."""
        return len(self._connections.relays) + len(self._connections.tasks)

    def udp_flows(self, listener: Listener) -> dict[tuple, Backend]:
        proxy = self._running.get(listener)
        return proxy.flows() if isinstance(proxy, UdpProxy) else {}

    async def apply(self, services: Iterable[Obj], endpoints: Iterable[Obj]) -> ApplyResult:
        """Serve these Services with these Endpoints (the complete current sets)."""
        desired = rules.desired_state(services, endpoints, self.options.node_addresses)
        async with self._lock:
            if self._closed:
                raise RuntimeError("the proxier is closed")
            self._desired = desired
            result = await self._reconcile()
        for conflict in set(desired.conflicts) - self._conflicts:
            log.warning("%s wanted by %s and %s: %s keeps it", conflict.listener,
                        conflict.kept, conflict.refused, conflict.kept)
        self._conflicts = set(desired.conflicts)  # logged once, not on every apply
        return result

    async def close(self) -> None:
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._sweeper is not None:
                self._sweeper.cancel()
                self._sweeper = None
            retry, self._retry = self._retry, None
            if retry is not None and retry is not asyncio.current_task():
                retry.cancel()
                await asyncio.wait({retry})  # its cancellation is not ours: not re-raised
            for proxy in self._running.values():
                proxy.close()
            self._running.clear()
            await self._connections.close()

    def _chooser(self, listener: Listener) -> Callable[[str, Collection[Backend]],
                                                        Backend | None]:
        def choose(client_ip: str, exclude: Collection[Backend]) -> Backend | None:
            spn = self._routes.get(listener)
            if spn is None:
                return None
            return self.balancer.pick(spn, client_ip, self._clock(), exclude)
        return choose

    def _start(self, listener: Listener) -> TcpProxy | UdpProxy:
        proxy: TcpProxy | UdpProxy
        if listener.protocol == TCP:
            proxy = TcpProxy(listener, self._chooser(listener), self._connections)
        else:
            proxy = UdpProxy(listener, self._chooser(listener),
                             idle_timeout=self.options.udp_idle_timeout,
                             max_flows=self.options.udp_max_flows, clock=self._clock)
        proxy.start()
        return proxy

    async def _reconcile(self) -> ApplyResult:
        desired = self._desired
        self.balancer.update(desired.backends, desired.policies)
        self._routes = dict(desired.listeners)
        self._arm_sweeper()

        removed = [listener for listener in self._running if listener not in desired.listeners]
        for listener in removed:
            self._running.pop(listener).close()
        for listener, proxy in self._running.items():
            if isinstance(proxy, UdpProxy):
                proxy.keep_backends(desired.backends.get(self._routes[listener], ()))

        failed: dict[Listener, str] = {}
        unusable: dict[str, str] = {}
        for ip in sorted(desired.cluster_ips - self._addresses):
            if self._ensure_address is None:
                continue
            try:
                await self._ensure_address(ip)
            except AddressError as err:
                unusable[ip] = str(err)
                continue
            self._addresses.add(ip)

        added = []
        for listener in sorted(desired.listeners):
            if listener in self._running:
                continue
            if listener.ip in unusable:
                failed[listener] = unusable[listener.ip]
                continue
            try:
                self._running[listener] = self._start(listener)
            except OSError as err:
                failed[listener] = str(err)
                continue
            added.append(listener)

        if self._remove_address is not None:
            for ip in sorted(self._addresses - desired.cluster_ips):
                try:
                    await self._remove_address(ip)
                except AddressError as err:
                    log.warning("%s", err)
                    continue
                self._addresses.discard(ip)

        for listener, reason in failed.items():
            log.warning("cannot serve %s for %s: %s", listener, self._routes[listener], reason)
        if failed and self._retry is None:
            self._retry = asyncio.get_running_loop().create_task(
                self._retry_later(), name="proxy-retry-listeners")
        if added or removed:
            log.info("proxy: %d listener(s) added, %d removed, %d serving", len(added),
                     len(removed), len(self._running))
        return ApplyResult(added=tuple(added), removed=tuple(removed), failed=failed,
                           conflicts=desired.conflicts)

    async def _retry_later(self) -> None:
        await asyncio.sleep(self.options.retry_interval)
        async with self._lock:
            self._retry = None
            if not self._closed:
                await self._reconcile()

    def _arm_sweeper(self) -> None:
        if self._sweeper is None and not self._closed:
            self._sweeper = asyncio.get_running_loop().call_later(
                self.options.sweep_interval, self._on_sweep)

    def _on_sweep(self) -> None:
        self._sweeper = None
        self.balancer.sweep(self._clock())
        self._arm_sweeper()
