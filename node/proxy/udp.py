"""UDP: a socket per Listener and a flow per client address.

UDP has no connections, so the proxy makes flows: the first datagram from a client
address (ip, port) picks a backend (the same balancer as TCP: round robin, ClientIP
affinity) and opens a socket connected to it; later datagrams from that address go the
same way, and what the backend sends back is relayed to the client from the listener's
own socket (so replies come from the ClusterIP or node address the client talked to).

Invariants:
- A flow idle (no datagram either way) for `idle_timeout` is closed; so is the least
  recently used one when `max_flows` are open. Nothing is queued: a datagram that cannot
  be sent now is dropped, as the network would.
- A backend answering "port unreachable" (ECONNREFUSED on the connected socket) is given
  up for that client: the flow moves to the next backend not yet tried by it.
- `keep_backends` closes flows whose backend left the Service (unlike TCP connections,
  which finish on their own, a UDP flow would otherwise keep sending to a dead pod).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Collection

from .rules import Backend, Listener
from .tcp import Chooser, family

log = logging.getLogger(__name__)

MAX_DATAGRAM = 65535
BURST = 32
DEFAULT_IDLE_TIMEOUT = 30.0
DEFAULT_MAX_FLOWS = 1024

Address = tuple  # (ip, port) or (ip, port, flowinfo, scope_id)


class _Flow:
    __slots__ = ("backend", "client", "last_used", "sock", "tried")

    def __init__(self, client: Address, backend: Backend, sock: socket.socket,
                 tried: frozenset[Backend], now: float) -> None:
        self.client = client
        self.backend = backend
        self.sock = sock
        self.tried = tried | {backend}
        self.last_used = now


class UdpProxy:
    def __init__(self, listener: Listener, choose: Chooser, *,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
                 max_flows: int = DEFAULT_MAX_FLOWS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.listener = listener
        self._choose = choose
        self._idle_timeout = idle_timeout
        self._max_flows = max_flows
        self._clock = clock
        self._loop = asyncio.get_running_loop()
        self._sock: socket.socket | None = None
        self._flows: OrderedDict[Address, _Flow] = OrderedDict()
        self._sweeper: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Bind (OSError if the address cannot be had)."""
        sock = socket.socket(family(self.listener.ip), socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.listener.ip, self.listener.port))
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._loop.add_reader(sock.fileno(), self._on_datagram)

    def close(self) -> None:
        """Close the socket and every flow (idempotent)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for flow in list(self._flows.values()):
            self._close_flow(flow)
        if self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def flows(self) -> dict[Address, Backend]:
        return {addr: flow.backend for addr, flow in self._flows.items()}

    def keep_backends(self, backends: Collection[Backend]) -> None:
        """Close the flows whose backend is not among `backends`."""
        for flow in [f for f in self._flows.values() if f.backend not in backends]:
            self._close_flow(flow)

    def sweep(self) -> int:
        """Close the flows idle for idle_timeout or more; returns how many."""
        now, closed = self._clock(), 0
        # Flows are ordered by last use (moved to the end on every datagram).
        while self._flows:
            oldest = next(iter(self._flows.values()))
            if now - oldest.last_used < self._idle_timeout:
                break
            self._close_flow(oldest)
            closed += 1
        return closed

    def _arm_sweeper(self) -> None:
        if self._sweeper is None and self._flows:
            self._sweeper = self._loop.call_later(max(self._idle_timeout / 2, 0.01),
                                                  self._on_sweep)

    def _on_sweep(self) -> None:
        self._sweeper = None
        self.sweep()
        self._arm_sweeper()

    def _open(self, client: Address, tried: frozenset[Backend]) -> _Flow | None:
        backend = self._choose(client[0], tried)
        if backend is None:
            return None
        sock = socket.socket(family(backend.ip), socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.connect((backend.ip, backend.port))  # UDP: no packet, just the peer
        except OSError as err:
            sock.close()
            log.warning("%s: cannot open a flow to %s: %s", self.listener, backend, err)
            return None
        if len(self._flows) >= self._max_flows:
            self._close_flow(next(iter(self._flows.values())))
        flow = _Flow(client, backend, sock, tried, self._clock())
        self._flows[client] = flow
        self._loop.add_reader(sock.fileno(), self._on_reply, flow)
        self._arm_sweeper()
        return flow

    def _close_flow(self, flow: _Flow) -> None:
        if self._flows.get(flow.client) is flow:
            del self._flows[flow.client]
        if flow.sock.fileno() >= 0:
            self._loop.remove_reader(flow.sock.fileno())
            flow.sock.close()

    def _refused(self, flow: _Flow) -> None:
        log.debug("%s: backend %s refused %s", self.listener, flow.backend, flow.client)
        self._close_flow(flow)
        self._open(flow.client, flow.tried)

    def _on_datagram(self) -> None:
        assert self._sock is not None
        for _ in range(BURST):
            try:
                data, client = self._sock.recvfrom(MAX_DATAGRAM)
            except BlockingIOError:
                return
            except OSError as err:
                log.debug("%s: recvfrom: %s", self.listener, err)
                return
            flow = self._flows.get(client)
            if flow is None:
                flow = self._open(client, frozenset())
                if flow is None:
                    continue  # no backend: dropped
            else:
                self._flows.move_to_end(client)
                flow.last_used = self._clock()
            try:
                flow.sock.send(data)
            except BlockingIOError:
                pass  # the backend socket's buffer is full: dropped
            except ConnectionRefusedError:
                # A previous datagram drew "port unreachable": this one is lost too, the
                # client's retry goes to the next backend.
                self._refused(flow)
            except OSError as err:
                log.debug("%s: send to %s: %s", self.listener, flow.backend, err)

    def _on_reply(self, flow: _Flow) -> None:
        for _ in range(BURST):
            try:
                data = flow.sock.recv(MAX_DATAGRAM)
            except BlockingIOError:
                return
            except ConnectionRefusedError:
                self._refused(flow)
                return
            except OSError as err:
                log.debug("%s: recv from %s: %s", self.listener, flow.backend, err)
                self._close_flow(flow)
                return
            if self._flows.get(flow.client) is flow:
                self._flows.move_to_end(flow.client)
            flow.last_used = self._clock()
            if self._sock is None:
                return
            with contextlib.suppress(OSError):  # e.g. the client's buffer is full: dropped
                self._sock.sendto(data, flow.client)
