"""The node's cluster DNS responder: UDP and TCP on the pods' nameserver addresses.

`ClusterDNS` answers names under the cluster domain from the Services and Endpoints it
was last given (records.py), authoritatively and at once, and forwards every other name
to the host's upstream resolvers:
- UDP, one try per upstream in order, each bounded by `forward_timeout`: a timeout or
  "port unreachable" moves on to the next; SERVFAIL or REFUSED from one also moves on
  (the last such reply is relayed when none does better). The query leaves from a fresh
  socket (random port) under a random id and only a reply with that id and question
  counts; the client gets it back under its own id.
- a truncated (TC) upstream reply is asked again over TCP of the same upstream. Whatever
  is relayed is cut to what the client takes over UDP as the responder's own answers are
  (message.fit: the records that fit and TC), so a client that cannot use TCP (older
  musl) still gets some addresses, and the others come back over TCP.
- at most `max_forwards` queries are upstream at once; more get SERVFAIL at once rather
  than queueing (a stuck upstream must not eat the Pi's memory). No upstream: SERVFAIL.
- an ExternalName Service's CNAME to an outside name is resolved upstream by the
  responder and the records appended (stub resolvers do not follow CNAMEs).
- answers to the queries stub resolvers send (RD, no DO or CD: cache.cacheable_query), and
  the upstream answers for ExternalName targets, are kept in a DNSCache (cache.py says
  for how long) and answered from it at once. While a question is upstream, the same
  question from other clients waits for that one query (one upstream query in flight
  per (name, type, class)); each client gets the reply rebuilt for its own query
  (message.relay: its id, its question as asked). A validator's query (DO or CD) and a
  non-recursive one are relayed as they come, each on its own, never cached. The cache
  is asked only for names records.py does not answer, so the cluster's own records are
  never cached; it is emptied when the upstreams change.

TCP is RFC 7766's: length-prefixed messages, several per connection and answered as they
complete (up to `tcp_max_pending` at once per connection), closed after `tcp_idle_timeout`
without a query (outstanding answers are sent first), at most `max_tcp_connections`
(more are closed at once).

Sockets are bound with IP_FREEBIND, so the agent can bind its pod gateway address before
Podman's bridge holds it (netavark creates the bridge when the first pod starts); until
then nothing can reach the address anyway.

Invariants: nothing a client sends raises out of the server (malformed -> FORMERR, or
dropped when not even a header can be read); `update()` takes effect for the next query;
`close()` is idempotent and bounded by `close_timeout`, and the ports are free when it
returns. Per-query logging is at debug level only.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import ipaddress
import logging
import secrets
import socket
import struct
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from types import TracebackType

from . import message as msg
from .cache import MAX_BYTES, MAX_ENTRIES, MAX_NEGATIVE_TTL, MAX_TTL, DNSCache, Key, cacheable_query
from .cache import key as cache_key
from .message import Answer, BadQuery, Message, MessageError, Query, Question
from .records import DEFAULT_DOMAIN, ClusterRecords, Obj
from .resolvconf import parse_upstream

log = logging.getLogger(__name__)

# Linux's value, for Pythons whose socket module lacks the name.
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
MAX_DATAGRAM = 65535
_LENGTH = struct.Struct("!H")


@dataclass(frozen=True)
class DNSOptions:
    domain: str = DEFAULT_DOMAIN
    # Per upstream try (UDP, and the TCP retry of a truncated reply). glibc's own timeout
    # is 5 s per try (options timeout:5): answering within it lets the pod's resolver
    # wait for us instead of re-sending while we still try the next upstream.
    forward_timeout: float = 2.0
    max_forwards: int = 256
    max_tcp_connections: int = 128
    tcp_idle_timeout: float = 10.0
    tcp_max_pending: int = 16
    close_timeout: float = 2.0
    # Client networks (CIDRs) answered; others get REFUSED. Empty: anyone.
    allow: tuple[str, ...] = ()
    # The cache of upstream answers (cache.py): its bounds (entries, and their wire bytes;
    # 0 entries: no cache) and the longest a positive / negative answer is kept (seconds).
    cache_entries: int = MAX_ENTRIES
    cache_bytes: int = MAX_BYTES
    cache_max_ttl: int = MAX_TTL
    cache_negative_ttl: int = MAX_NEGATIVE_TTL


@dataclass(frozen=True)
class _Upstream:
    """A query that needs the upstreams (a forward, or a CNAME to chase)."""

    query: Query
    data: bytes
    answer: Answer | None  # None: forward `data`; else chase answer.chase, then append
    limit: int  # the largest reply the client takes

    @property
    def shared(self) -> Question | None:
        """The question to ask upstream through the cache (and share with other clients
        asking it); None: relay the client's own query, uncached."""
        if self.answer is not None:
            return self.answer.chase
        return self.query.question if cacheable_query(self.query) else None


def _family(ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def _bind(ip: str, port: int, kind: socket.SocketKind) -> socket.socket:
    sock = socket.socket(_family(ip), kind)
    try:
        sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
        if ":" in ip:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((ip, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _bind_all(ips: list[str], port: int) -> list[tuple[str, socket.socket, socket.socket]]:
    """(ip, udp, tcp) bound on `port` for each address. Port 0: the first UDP socket
    picks a free port and the others take the same; if one of them finds it taken,
    everything is closed and another port tried."""
    attempts = 20 if port == 0 else 1
    for attempt in range(attempts):
        bound: list[tuple[str, socket.socket, socket.socket]] = []
        chosen = port
        try:
            for ip in ips:
                udp = _bind(ip, chosen, socket.SOCK_DGRAM)
                chosen = udp.getsockname()[1]
                try:
                    tcp = _bind(ip, chosen, socket.SOCK_STREAM)
                except BaseException:
                    udp.close()
                    raise
                bound.append((ip, udp, tcp))
        except BaseException as err:
            for _, udp, tcp in bound:
                udp.close()
                tcp.close()
            in_use = isinstance(err, OSError) and err.errno == errno.EADDRINUSE
            if in_use and attempt + 1 < attempts:
                continue
            raise
        return bound
    raise AssertionError("unreachable")


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: ClusterDNS) -> None:
        self._server = server
        self.transport: asyncio.DatagramTransport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not derive from DatagramTransport.
        self.transport = typing.cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        assert self.transport is not None
        self._server._on_datagram(self.transport, data, addr)

    def error_received(self, exc: Exception) -> None:
        # e.g. ICMP unreachable for a reply to a client that went away.
        log.debug("dns udp: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class ClusterDNS:
    """The responder. `await start(addresses, port)` once, `update(...)` on every
    Service/Endpoints change, `await close()` (or `async with`)."""

    def __init__(self, upstreams: Sequence[str] = (), options: DNSOptions | None = None) -> None:
        self.options = options or DNSOptions()
        self.records = ClusterRecords(self.options.domain)
        self._upstreams = tuple(parse_upstream(u) for u in upstreams)
        self._allow = tuple(ipaddress.ip_network(n, strict=False) for n in self.options.allow)
        self._udp: list[_UdpProtocol] = []
        self._tcp: list[asyncio.Server] = []
        self._bound: list[tuple[str, str, int]] = []
        self._forwards: set[asyncio.Task[None]] = set()
        options = self.options
        self._cache = DNSCache(options.cache_entries, options.cache_bytes,
                               options.cache_max_ttl, options.cache_negative_ttl)
        # The one upstream query per question in flight, which every client asking that
        # question awaits; not in _forwards (those are the clients' queries, bounded).
        self._inflight: dict[Key, asyncio.Task[Message | None]] = {}
        # Each TCP connection's handler task (started by asyncio) and its writer.
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._rotate = 0
        self._started = False
        self._closed = False
        self._closing: asyncio.Future[None] | None = None

    async def __aenter__(self) -> ClusterDNS:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    # ---- the agent's side ---------------------------------------------------------------

    async def start(self, addresses: list[str], port: int = 53) -> None:
        """Serve UDP and TCP on `port` of each address (IPv4 or IPv6). Port 0: one free
        port, the same for every address and both protocols (see `port`). OSError when an
        address cannot be bound; nothing stays bound then."""
        if self._started or self._closed:
            raise RuntimeError("ClusterDNS.start() is called once")
        ips = [str(ipaddress.ip_address(a)) for a in dict.fromkeys(addresses)]  # ValueError
        self._started = True
        try:
            socks = _bind_all(ips, port)
            port = socks[0][1].getsockname()[1] if socks else port
            for i, (ip, udp, tcp) in enumerate(socks):
                try:
                    await self._serve(ip, udp, tcp)
                except BaseException:
                    for _, u, t in socks[i + 1:]:
                        u.close()
                        t.close()
                    raise
        except BaseException:
            await self.close()
            raise
        log.info("cluster DNS for %s on %s port %d, upstreams: %s", self.records.domain,
                 ", ".join(ips) or "no address", port,
                 ", ".join(f"{h}:{p}" for h, p in self._upstreams) or "none")

    def update(self, services: Iterable[Obj], endpoints: Iterable[Obj]) -> None:
        """Answer from these Services and Endpoints (the complete current sets) from the
        next query on."""
        self.records.update(services, endpoints)

    def set_upstreams(self, upstreams: Sequence[str]) -> None:
        """Forward to these from now on ("ip" or "ip:port"; e.g. after the host's
        resolv.conf changed). ValueError for a bad one (nothing changes then)."""
        parsed = tuple(parse_upstream(u) for u in upstreams)
        if parsed != self._upstreams:
            # The old resolvers' answers may not hold here (another network, a VPN gone).
            self._cache.clear()
        self._upstreams = parsed

    @property
    def upstreams(self) -> tuple[tuple[str, int], ...]:
        return self._upstreams

    @property
    def bound(self) -> list[tuple[str, str, int]]:
        """("udp" | "tcp", ip, port) of every socket served."""
        return list(self._bound)

    @property
    def port(self) -> int | None:
        return self._bound[0][2] if self._bound else None

    async def close(self) -> None:
        """Stop serving and free the ports; idempotent, bounded by close_timeout."""
        if self._closing is not None:
            await asyncio.shield(self._closing)
            return
        self._closed = True
        self._closing = asyncio.get_running_loop().create_future()
        try:
            await self._close()
        finally:
            self._closing.set_result(None)

    async def _close(self) -> None:
        timeout = self.options.close_timeout
        for server in self._tcp:
            server.close()  # the listening sockets are closed here and now
        for proto in self._udp:
            if proto.transport is not None:
                proto.transport.close()
        for task in [*self._forwards, *self._inflight.values()]:
            task.cancel()
        # Connection handlers end on their own once their connection is gone; cancelling
        # them would make asyncio's stream machinery log the cancellation as an error.
        for writer in self._connections.values():
            writer.transport.abort()
        waits: list[asyncio.Future] = [*self._forwards, *self._inflight.values(),
                                       *self._connections, *(p.closed for p in self._udp)]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=timeout)
            if pending:
                log.warning("cluster DNS: %d task(s) still running after %.1f s",
                            len(pending), timeout)
        for server in self._tcp:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), timeout)
        self._tcp.clear()
        self._udp.clear()
        self._bound.clear()

    # ---- sockets ------------------------------------------------------------------------

    async def _serve(self, ip: str, udp: socket.socket, tcp: socket.socket) -> None:
        """Serve on bound sockets (closed here if that fails)."""
        loop = asyncio.get_running_loop()
        chosen = udp.getsockname()[1]
        try:
            _, proto = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self),
                                                           sock=udp)
        except BaseException:
            udp.close()
            tcp.close()
            raise
        self._udp.append(proto)
        self._bound.append(("udp", ip, chosen))
        try:
            server = await asyncio.start_server(self._on_connection, sock=tcp,
                                                backlog=self.options.max_tcp_connections)
        except BaseException:
            tcp.close()
            raise
        self._tcp.append(server)
        self._bound.append(("tcp", ip, chosen))

    @property
    def _recursion(self) -> bool:
        return bool(self._upstreams)

    def _allowed(self, client: str) -> bool:
        if not self._allow:
            return True
        try:
            address = ipaddress.ip_address(client.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in net for net in self._allow)

    def _receive(self, data: bytes, client: str, tcp: bool) -> bytes | None | _Upstream:
        """What to do with one query: the reply, nothing (drop), or go upstream."""
        try:
            query = msg.read_query(data)
        except BadQuery as bad:
            log.debug("dns: bad query from %s: %s", client, bad)
            return bad.response
        question = query.question
        limit = msg.MAX_TCP_MESSAGE if tcp else query.udp_limit
        if not self._allowed(client):
            log.debug("dns: %s from %s: refused (not a client network)", question, client)
            return msg.respond_error(query, msg.REFUSED, recursion=False)
        self._rotate = (self._rotate + 1) & 0xFFFF
        answer = self.records.lookup(question, self._rotate)
        if answer is None:
            if question.qtype in (msg.AXFR, msg.IXFR):
                return msg.respond_error(query, msg.REFUSED, recursion=self._recursion)
            upstream = _Upstream(query, data, None, limit)
        elif answer.chase is not None:
            upstream = _Upstream(query, data, answer, limit)
        else:
            log.debug("dns: %s from %s: %s, %d answer(s)", question, client,
                      msg.rcode_text(answer.rcode), len(answer.answers))
            return msg.respond(query, answer, recursion=self._recursion, limit=limit)
        shared = upstream.shared
        cached = self._cache.get(shared) if shared is not None else None
        if cached is None:
            return upstream
        # At once, without a task: a cache hit costs no slot of max_forwards.
        log.debug("dns: %s from %s: cached", question, client)
        return self._finish(upstream, cached)

    def _on_datagram(self, transport: asyncio.DatagramTransport, data: bytes,
                     addr: tuple) -> None:
        try:
            result = self._receive(data, addr[0], tcp=False)
        except Exception:  # a bug must not stop the responder: logged, query dropped
            log.exception("dns: cannot answer a query from %s", addr[0])
            return
        if isinstance(result, _Upstream):
            if len(self._forwards) >= self.options.max_forwards:
                transport.sendto(self._busy(result), addr)
                return
            self._track(asyncio.get_running_loop().create_task(
                self._udp_upstream(transport, addr, result), name="dns-forward-udp"))
        elif result is not None:
            transport.sendto(result, addr)

    def _track(self, task: asyncio.Task[None]) -> None:
        self._forwards.add(task)
        task.add_done_callback(self._forwards.discard)

    async def _udp_upstream(self, transport: asyncio.DatagramTransport, addr: tuple,
                            upstream: _Upstream) -> None:
        reply = await self._upstream_reply(upstream, addr[0])
        if not transport.is_closing():
            transport.sendto(reply, addr)

    async def _on_connection(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._closed or len(self._connections) >= self.options.max_tcp_connections:
            writer.close()
            return
        self._connections[task] = writer
        peer = writer.get_extra_info("peername")
        client = peer[0] if peer else "?"
        pending: set[asyncio.Task[None]] = set()
        try:
            await self._tcp_session(reader, writer, client, pending)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the client went away, or idled out
        except Exception:
            log.exception("dns: TCP connection from %s failed", client)
        finally:
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending)
            writer.close()
            self._connections.pop(task, None)

    async def _tcp_session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           client: str, pending: set[asyncio.Task[None]]) -> None:
        idle = self.options.tcp_idle_timeout
        while True:
            try:
                async with asyncio.timeout(idle):
                    (length,) = _LENGTH.unpack(await reader.readexactly(2))
                    data = await reader.readexactly(length)
            except (TimeoutError, asyncio.IncompleteReadError):
                if pending:  # answer what was asked before closing (RFC 7766 §6.2.3)
                    await asyncio.wait(pending)
                return
            result = self._receive(data, client, tcp=True)
            if result is None:
                return  # not even a header: this is not a DNS client
            if isinstance(result, _Upstream):
                if len(self._forwards) >= self.options.max_forwards:
                    _write_frame(writer, self._busy(result))
                else:
                    t = asyncio.get_running_loop().create_task(
                        self._tcp_upstream(writer, client, result), name="dns-forward-tcp")
                    self._track(t)
                    pending.add(t)
                    t.add_done_callback(pending.discard)
                    if len(pending) >= self.options.tcp_max_pending:
                        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            else:
                _write_frame(writer, result)
            async with asyncio.timeout(idle):
                await writer.drain()

    async def _tcp_upstream(self, writer: asyncio.StreamWriter, client: str,
                            upstream: _Upstream) -> None:
        reply = await self._upstream_reply(upstream, client)
        if not writer.is_closing():
            _write_frame(writer, reply)

    # ---- upstream -----------------------------------------------------------------------

    def _busy(self, upstream: _Upstream) -> bytes:
        log.debug("dns: %s: SERVFAIL, %d queries upstream already", upstream.query.question,
                  len(self._forwards))
        return msg.respond_error(upstream.query, msg.SERVFAIL, recursion=self._recursion)

    async def _upstream_reply(self, upstream: _Upstream, client: str) -> bytes:
        """The reply for a query that needs the upstreams; never raises (but cancels)."""
        query, limit = upstream.query, upstream.limit
        try:
            shared = upstream.shared
            if shared is None:
                reply = await self._forward(query, upstream.data, limit)
            else:
                reply = self._finish(upstream, await self._shared(upstream, shared))
        except Exception:
            log.exception("dns: forwarding %s failed", query.question)
            reply = msg.respond_error(query, msg.SERVFAIL, recursion=self._recursion)
        log.debug("dns: %s from %s: upstream, %d bytes", query.question, client, len(reply))
        return reply

    async def _forward(self, query: Query, data: bytes, limit: int) -> bytes:
        got = await self._ask(query.question, lambda qid: msg.with_id(data, qid))
        if got is None:
            return msg.respond_error(query, msg.SERVFAIL, recursion=self._recursion)
        return msg.fit(msg.with_id(got[0], query.header.id), limit)

    def _finish(self, upstream: _Upstream, reply: Message | None) -> bytes:
        """The client's answer from the upstreams' reply to `upstream.shared` (None: no
        upstream answered)."""
        query, answer, limit = upstream.query, upstream.answer, upstream.limit
        if answer is None:
            if reply is None:
                return msg.respond_error(query, msg.SERVFAIL, recursion=self._recursion)
            return msg.relay(query, reply, recursion=self._recursion, limit=limit)
        assert answer.chase is not None
        if reply is not None:
            rcode = reply.rcode if reply.rcode in (msg.NOERROR, msg.NXDOMAIN) else msg.NOERROR
            answer = replace(answer, rcode=rcode, answers=answer.answers + msg.chain(
                reply.answers, answer.chase.name))
        # Without an upstream answer, the CNAME alone: the client may follow it itself.
        return msg.respond(query, replace(answer, chase=None), recursion=self._recursion,
                           limit=limit)

    async def _shared(self, upstream: _Upstream, question: Question) -> Message | None:
        """The upstreams' reply to `question`: from the cache, else from the one query
        for it in flight (started here when there is none); None when none answered."""
        reply = self._cache.get(question)
        if reply is not None:
            return reply
        key = cache_key(question)
        task = self._inflight.get(key)
        if task is None:
            # The first client's own query goes (its EDNS options too); a chase asks anew.
            wire = (functools.partial(msg.with_id, upstream.data) if upstream.answer is None
                    else functools.partial(msg.make_query, question))
            task = asyncio.get_running_loop().create_task(self._fetch(question, wire),
                                                          name="dns-upstream")
            self._inflight[key] = task
            task.add_done_callback(functools.partial(self._fetched, key))
        # Shielded: a client going away (its TCP connection closed) must not cancel the
        # query other clients wait for.
        return await asyncio.shield(task)

    async def _fetch(self, question: Question, wire: Callable[[int], bytes]) -> Message | None:
        upstreams = self._upstreams
        got = await self._ask(question, wire)
        if got is None:
            return None
        if self._upstreams is upstreams:  # not an answer of resolvers replaced meanwhile
            self._cache.put(question, got[1], len(got[0]))
        return got[1]

    def _fetched(self, key: Key, task: asyncio.Task[Message | None]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]

    async def _ask(self, question: Question,
                   wire: Callable[[int], bytes]) -> tuple[bytes, Message] | None:
        """The first useful reply from the upstreams, in order (see the module doc)."""
        last: tuple[bytes, Message] | None = None
        for host, port in self._upstreams:
            qid = secrets.randbelow(0x10000)
            query = wire(qid)
            try:
                got = await self._udp_exchange(host, port, query, qid, question)
            except (OSError, TimeoutError) as err:
                log.debug("dns: upstream %s:%d: %s", host, port, err or "timed out")
                continue
            if got[1].header.tc:
                try:
                    full = await self._tcp_exchange(host, port, query, qid, question)
                except (OSError, TimeoutError, MessageError,
                        asyncio.IncompleteReadError) as err:
                    log.debug("dns: upstream %s:%d over TCP: %s", host, port,
                              err or "timed out")
                else:
                    got = full
            if got[1].rcode in (msg.SERVFAIL, msg.REFUSED):
                last = got
                continue
            return got
        return last

    async def _udp_exchange(self, host: str, port: int, query: bytes, qid: int,
                            question: Question) -> tuple[bytes, Message]:
        loop = asyncio.get_running_loop()
        with socket.socket(_family(host), socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            # Connected: the kernel drops datagrams from anyone else, and "port
            # unreachable" comes back as ConnectionRefusedError (next upstream at once).
            sock.connect((host, port))
            async with asyncio.timeout(self.options.forward_timeout):
                await loop.sock_sendall(sock, query)
                while True:
                    data = await loop.sock_recv(sock, MAX_DATAGRAM)
                    try:
                        reply = msg.parse(data)
                    except MessageError:
                        continue
                    if msg.is_reply_to(reply, qid, question):
                        return data, reply

    async def _tcp_exchange(self, host: str, port: int, query: bytes, qid: int,
                            question: Question) -> tuple[bytes, Message]:
        async with asyncio.timeout(self.options.forward_timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                _write_frame(writer, query)
                await writer.drain()
                (length,) = _LENGTH.unpack(await reader.readexactly(2))
                data = await reader.readexactly(length)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        reply = msg.parse(data)
        if not msg.is_reply_to(reply, qid, question):
            raise MessageError("the TCP reply does not answer the query")
        return data, reply


def _write_frame(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(_LENGTH.pack(len(data)) + data)

