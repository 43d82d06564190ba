"""TCP: a listening socket per Listener and a relay per accepted connection.

A connection is accepted, a backend is chosen (the `choose` callable: balancer + routes)
and connected with a short per-attempt timeout; a failed connect tries the next backend
(kube-proxy's dial timeouts 0.25, 0.5, 1, 2 s), each at most once. With no backend (the
Service has no ready endpoints, or all of them failed) the client is reset at once (RST),
as Kubernetes rejects such connections instead of letting them hang.

A relay moves bytes in both directions with the event loop's readiness callbacks
(add_reader/add_writer on non-blocking sockets) - no task and no asyncio stream per
connection, so 1000 held connections cost two sockets and two small objects each:
- zero copy on Linux: os.splice from the source socket into a pipe, then from the pipe
  into the destination socket; the bytes never enter Python. Otherwise (or when a pipe
  cannot be had) recv_into a buffer and send it.
- bounded buffers, back-pressure: a direction reads only when its pipe/buffer is empty;
  when the destination cannot take everything it stops reading and waits for the
  destination to be writable, so a slow reader slows its writer, and the proxy holds at
  most one pipe (or buffer) of data per direction.
- pipes and buffers are lent from a pool only while they hold data (between a read and
  the write that empties them): idle connections hold none, so the fds and pipe pages in
  use follow the number of busy directions, not of open connections (unprivileged users
  get small pipes once their pipes exceed fs.pipe-user-pages-soft).
- half-close: EOF from one side shuts down writing towards the other after the data
  before it was delivered; the other direction goes on. Both directions ended -> both
  sockets closed.
- an error on either side (reset, broken pipe: a backend that vanished) ends the whole
  relay: both sockets are closed, so the client sees the connection end instead of
  hanging. TCP keepalive on both sockets finds peers that vanished without a word.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import socket
import struct
import sys
from collections.abc import Callable, Collection, Coroutine
from typing import Any

from .rules import Backend, Listener

log = logging.getLogger(__name__)

Chooser = Callable[[str, Collection[Backend]], Backend | None]

ZERO_COPY_AVAILABLE = sys.platform == "linux" and hasattr(os, "splice")
# The largest an unprivileged process may ask for (fs.pipe-max-size): fewer, bigger splices
# cost the proxy ~30% less CPU per GiB than 256 KiB pipes, ~40% less than the 64 KiB
# default. It is a bound, not an allocation: a pipe holds page references only between
# a read and the write that empties it.
DEFAULT_PIPE_SIZE = 1024 * 1024
COPY_CHUNK = 64 * 1024
# Bytes one direction may move per readiness callback before yielding to the others.
BURST_BYTES = 4 * 1024 * 1024
ACCEPT_BURST = 64
# How long accepting pauses when the process is out of file descriptors (the kernel
# keeps the pending connections queued meanwhile).
ACCEPT_PAUSE = 0.1
# kube-proxy's userspace EndpointDialTimeouts; later attempts keep the last.
CONNECT_TIMEOUTS = (0.25, 0.5, 1.0, 2.0)
BACKLOG = 4096
# Keepalive: a peer silent for 60 s is probed 3 times 10 s apart, then dropped.
KEEPALIVE = (60, 10, 3)
_OUT_OF_FDS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_SPLICE_FLAGS = (os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK) if ZERO_COPY_AVAILABLE else 0


def family(ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def attempt_timeout(attempt: int) -> float:
    """The connect timeout of the attempt-th backend tried for one connection (0-based)."""
    return CONNECT_TIMEOUTS[min(attempt, len(CONNECT_TIMEOUTS) - 1)]


def _tune(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if hasattr(socket, "TCP_KEEPIDLE"):
        idle, interval, count = KEEPALIVE
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, count)


def reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the peer sees 'connection reset' at once."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Pool:
    """Pipes (zero copy) and buffers (copy) lent to relay directions while they carry data.

    Keeps up to `keep` idle ones of each for reuse; the rest are closed on return."""

    def __init__(self, pipe_size: int = DEFAULT_PIPE_SIZE, keep: int = 16) -> None:
        self.pipe_size = pipe_size
        self._keep = keep
        self._pipes: list[tuple[int, int, int]] = []
        self._buffers: list[bytearray] = []
        self._closed = False
        self.fallback_logged = False

    def pipe(self) -> tuple[int, int, int]:
        """(read fd, write fd, capacity); OSError when none can be made."""
        if self._pipes:
            return self._pipes.pop()
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            capacity = fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, self.pipe_size)
        except OSError:
            # Over fs.pipe-max-size or the user's pipe pages: keep the default size.
            capacity = fcntl.fcntl(w, fcntl.F_GETPIPE_SZ)
        return r, w, capacity

    def give_pipe(self, pipe: tuple[int, int, int]) -> None:
        """Return an EMPTY pipe."""
        if self._closed or len(self._pipes) >= self._keep:
            self.discard_pipe(pipe)
        else:
            self._pipes.append(pipe)

    @staticmethod
    def discard_pipe(pipe: tuple[int, int, int]) -> None:
        os.close(pipe[0])
        os.close(pipe[1])

    def buffer(self) -> bytearray:
        return self._buffers.pop() if self._buffers else bytearray(COPY_CHUNK)

    def give_buffer(self, buf: bytearray) -> None:
        if not self._closed and len(self._buffers) < self._keep:
            self._buffers.append(buf)

    def close(self) -> None:
        self._closed = True
        while self._pipes:
            self.discard_pipe(self._pipes.pop())
        self._buffers.clear()


class _Pump:
    """One direction of a relay: src socket -> dst socket."""

    def __init__(self, relay: Relay, src: socket.socket, dst: socket.socket,
                 zero_copy: bool) -> None:
        self.relay = relay
        self.loop = relay.loop
        self.pool = relay.pool
        self.src, self.dst = src, dst
        self.src_fd, self.dst_fd = src.fileno(), dst.fileno()
        self.zero_copy = zero_copy
        self.pipe: tuple[int, int, int] | None = None
        self.buf: bytearray | None = None
        self.pending = 0  # bytes read and not yet written
        self.offset = 0  # copy mode: how much of buf[:pending] was written
        self.reading = self.writing = False
        self.done = False

    def start(self) -> None:
        self._read_mode()

    def stop(self) -> None:
        if self.reading:
            self.loop.remove_reader(self.src_fd)
            self.reading = False
        if self.writing:
            self.loop.remove_writer(self.dst_fd)
            self.writing = False

    def release(self) -> None:
        """Give back what is lent; a pipe still holding bytes cannot be reused."""
        if self.pipe is not None:
            if self.pending:
                self.pool.discard_pipe(self.pipe)
            else:
                self.pool.give_pipe(self.pipe)
            self.pipe = None
        if self.buf is not None:
            self.pool.give_buffer(self.buf)
            self.buf = None

    def _read_mode(self) -> None:
        if self.writing:
            self.loop.remove_writer(self.dst_fd)
            self.writing = False
        if not self.reading:
            self.loop.add_reader(self.src_fd, self._on_readable)
            self.reading = True

    def _write_mode(self) -> None:
        if self.reading:
            self.loop.remove_reader(self.src_fd)
            self.reading = False
        if not self.writing:
            self.loop.add_writer(self.dst_fd, self._on_writable)
            self.writing = True

    def _fill(self) -> int | None:
        """Read into the (empty) pipe or buffer: bytes read, 0 at EOF, None if nothing."""
        if self.zero_copy:
            if self.pipe is None:
                try:
                    self.pipe = self.pool.pipe()
                except OSError as err:
                    if not self.pool.fallback_logged:  # once: under EMFILE it would flood
                        log.warning("no pipe for zero-copy relaying (%s); copying instead", err)
                        self.pool.fallback_logged = True
                    self.zero_copy = False
                    return self._fill()
            try:
                n = os.splice(self.src_fd, self.pipe[1], self.pipe[2], flags=_SPLICE_FLAGS)
            except BlockingIOError:
                return None
        else:
            if self.buf is None:
                self.buf = self.pool.buffer()
            try:
                n = self.src.recv_into(self.buf)
            except BlockingIOError:
                return None
            self.offset = 0
        self.pending = n
        return n

    def _flush(self) -> bool:
        """Write what is pending; False when the destination cannot take more now."""
        if self.zero_copy:
            assert self.pipe is not None
            while self.pending:
                try:
                    n = os.splice(self.pipe[0], self.dst_fd, self.pending, flags=_SPLICE_FLAGS)
                except BlockingIOError:
                    return False
                self.pending -= n
        else:
            assert self.buf is not None
            view = memoryview(self.buf)
            try:
                while self.offset < self.pending:
                    try:
                        n = self.dst.send(view[self.offset:self.pending])
                    except BlockingIOError:
                        return False
                    self.offset += n
            finally:
                view.release()
            self.pending = 0
        return True

    def _on_readable(self) -> None:
        try:
            budget = BURST_BYTES
            while budget > 0:
                n = self._fill()
                if n is None:
                    break
                if n == 0:
                    self._end(None)
                    return
                if not self._flush():
                    self._write_mode()
                    return
                budget -= n
        except OSError as err:
            self._end(err)
            return
        self.release()  # idle: nothing pending, the pipe/buffer goes back to the pool

    def _on_writable(self) -> None:
        try:
            if not self._flush():
                return
        except OSError as err:
            self._end(err)
            return
        self.release()
        self._read_mode()

    def _end(self, error: OSError | None) -> None:
        self.stop()
        self.done = True
        if error is not None:
            self.relay.abort(error)
            return
        # EOF: everything read was written (reads happen only with nothing pending).
        self.release()
        with contextlib.suppress(OSError):
            self.dst.shutdown(socket.SHUT_WR)
        self.relay.pump_done()


class Relay:
    """One proxied connection: client <-> backend."""

    def __init__(self, client: socket.socket, backend: socket.socket, pool: Pool, *,
                 zero_copy: bool, on_close: Callable[[Relay], None]) -> None:
        self.loop = asyncio.get_running_loop()
        self.pool = pool
        self.client, self.backend = client, backend
        self._on_close = on_close
        self.closed = False
        self.upstream = _Pump(self, client, backend, zero_copy)
        self.downstream = _Pump(self, backend, client, zero_copy)

    def start(self) -> None:
        self.upstream.start()
        self.downstream.start()

    def pump_done(self) -> None:
        if self.upstream.done and self.downstream.done:
            self.close()

    def abort(self, error: OSError) -> None:
        log.debug("relay ended: %s", error)
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for pump in (self.upstream, self.downstream):
            pump.stop()  # before the fds close: they may be reused at once
            pump.release()
        self.client.close()
        self.backend.close()
        self._on_close(self)


class Connections:
    """Everything in flight across a proxier's TCP listeners: the connecting tasks and the
    relays. Outlives any one listener, so that removing a listener leaves its
    established connections to finish."""

    def __init__(self, pool: Pool, zero_copy: bool) -> None:
        self.pool = pool
        self.zero_copy = zero_copy
        self.relays: set[Relay] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def relay(self, client: socket.socket, backend: socket.socket) -> Relay:
        relay = Relay(client, backend, self.pool, zero_copy=self.zero_copy,
                      on_close=self.relays.discard)
        self.relays.add(relay)
        relay.start()
        return relay

    async def close(self) -> None:
        """Cancel the connects in progress and close every relay (idempotent)."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for relay in list(self.relays):
            relay.close()
        self.pool.close()


class TcpProxy:
    """A listening socket for one Listener; `choose` picks each connection's backend."""

    def __init__(self, listener: Listener, choose: Chooser, connections: Connections) -> None:
        self.listener = listener
        self._choose = choose
        self._connections = connections
        self._loop = asyncio.get_running_loop()
        self._sock: socket.socket | None = None
        self._paused: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Bind and listen (OSError if the address cannot be had)."""
        sock = socket.socket(family(self.listener.ip), socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.listener.ip, self.listener.port))
            sock.listen(BACKLOG)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._loop.add_reader(sock.fileno(), self._on_accept)

    def close(self) -> None:
        """Stop accepting; connections already made go on (idempotent)."""
        if self._paused is not None:
            self._paused.cancel()
            self._paused = None
        if self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def _resume(self) -> None:
        self._paused = None
        if self._sock is not None:
            self._loop.add_reader(self._sock.fileno(), self._on_accept)

    def _on_accept(self) -> None:
        assert self._sock is not None
        for _ in range(ACCEPT_BURST):
            try:
                client, address = self._sock.accept()
            except BlockingIOError:
                return
            except OSError as err:
                if err.errno in _OUT_OF_FDS:
                    log.warning("%s: cannot accept (%s); pausing", self.listener, err)
                    self._loop.remove_reader(self._sock.fileno())
                    self._paused = self._loop.call_later(ACCEPT_PAUSE, self._resume)
                    return
                continue  # e.g. ECONNABORTED: that client gave up already
            client.setblocking(False)
            self._connections.spawn(self._connect(client, address[0]),
                                    name=f"proxy-connect {self.listener} <- {address[0]}")

    async def _connect(self, client: socket.socket, client_ip: str) -> None:
        tried: list[Backend] = []
        try:
            _tune(client)
            while (backend := self._choose(client_ip, tried)) is not None:
                timeout = attempt_timeout(len(tried))
                tried.append(backend)
                sock = socket.socket(family(backend.ip), socket.SOCK_STREAM)
                try:
                    sock.setblocking(False)
                    async with asyncio.timeout(timeout):
                        await self._loop.sock_connect(sock, (backend.ip, backend.port))
                    _tune(sock)
                except (OSError, TimeoutError) as err:
                    sock.close()
                    log.debug("%s: backend %s failed: %r", self.listener, backend, err)
                    if isinstance(err, OSError) and err.errno in _OUT_OF_FDS:
                        break
                    continue
                except BaseException:
                    sock.close()
                    raise
                self._connections.relay(client, sock)
                return
        except OSError as err:
            log.debug("%s: client %s gone: %r", self.listener, client_ip, err)
        except BaseException:
            reset(client)
            raise
        if tried:
            log.info("%s: no backend answered (%s)", self.listener,
                     ", ".join(str(b) for b in tried))
        reset(client)
