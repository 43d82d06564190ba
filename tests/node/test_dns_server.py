"""ClusterDNS on real loopback sockets, asked by dnspython (the independent client), with a
fake upstream resolver of our own on 127.0.0.1 for everything outside the cluster.

Nothing is sent to any address but loopback: the upstreams are always given explicitly
(never read from the host's resolv.conf)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import dns.asyncquery
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from bramble.node.dns import ClusterDNS, DNSOptions
from tests.node.conftest import holds_soon

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

LOOPBACK = "127.0.0.1"
TIMEOUT = 10.0  # a bound on hangs, never a speed expectation
WEB = "web.default.svc.cluster.local"

SERVICES = [
    {"metadata": {"name": "web", "namespace": "default"},
     "spec": {"clusterIP": "10.43.0.10", "clusterIPs": ["10.43.0.10"],
              "ports": [{"name": "http", "port": 80}]}},
    {"metadata": {"name": "many", "namespace": "default"}, "spec": {"clusterIP": "None"}},
    {"metadata": {"name": "ext", "namespace": "default"},
     "spec": {"type": "ExternalName", "externalName": "example.org"}},
]
ENDPOINTS = [
    # 100 ready pods: 100 A records do not fit 512 bytes (29 do, see test_dns_message).
    {"metadata": {"name": "many", "namespace": "default"},
     "subsets": [{"addresses": [{"ip": f"10.42.0.{i + 1}"} for i in range(100)]}]},
]


async def eventually(check: Callable[[], bool], what: str) -> None:
    await holds_soon(check, what, TIMEOUT)


def bind_pair(ip: str = LOOPBACK) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on the same free port."""
    for _ in range(50):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((ip, 0))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.bind((ip, udp.getsockname()[1]))
        except OSError:
            udp.close()
            tcp.close()
            continue
        return udp, tcp
    raise RuntimeError("no free port pair")


class FakeUpstream:
    """A resolver on 127.0.0.1 (UDP and TCP, one port) answering from `addresses`
    (name -> IPv4 addresses; others NXDOMAIN) and behaving per name as told:
    "silent" (never answers), "servfail", "truncate" (UDP answers are TC, empty)."""

    def __init__(self) -> None:
        self.addresses: dict[str, list[str]] = {}
        self.behaviour: dict[str, str] = {}
        self.seen: list[tuple[str, str, int]] = []  # (udp|tcp, name, id)
        self.port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()

    def reply(self, wire: bytes, tcp: bool) -> bytes | None:
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        self.seen.append(("tcp" if tcp else "udp", name, query.id))
        behaviour = self.behaviour.get(name)
        if behaviour == "silent":
            return None
        response = dns.message.make_response(query)
        if behaviour == "servfail":
            response.set_rcode(dns.rcode.SERVFAIL)
        elif name not in self.addresses:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text_list(
                question.name, 60, "IN", "A", self.addresses[name]))
        if behaviour == "truncate" and not tcp:
            response.answer.clear()
            response.flags |= dns.flags.TC
        return response.to_wire()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        udp, tcp = bind_pair()
        self.port = udp.getsockname()[1]
        upstream = self

        class Protocol(asyncio.DatagramProtocol):
            def connection_made(self, transport) -> None:
                upstream._udp = transport

            def datagram_received(self, data: bytes, addr) -> None:
                out = upstream.reply(data, tcp=False)
                if out is not None and upstream._udp is not None:
                    upstream._udp.sendto(out, addr)

        await loop.create_datagram_endpoint(Protocol, sock=udp)

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._conns.add(writer)
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                while True:
                    (length,) = struct.unpack("!H", await reader.readexactly(2))
                    out = self.reply(await reader.readexactly(length), tcp=True)
                    if out is not None:
                        writer.write(struct.pack("!H", len(out)) + out)
                        await writer.drain()
            writer.close()
            self._conns.discard(writer)

        self._tcp = await asyncio.start_server(serve, sock=tcp)

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            for writer in list(self._conns):
                writer.transport.abort()
            await self._tcp.wait_closed()
        await asyncio.sleep(0)  # let the transports finish closing

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"


UpstreamT = TypeVar("UpstreamT", bound=FakeUpstream)


@contextlib.asynccontextmanager
async def serving(fake: UpstreamT) -> AsyncIterator[UpstreamT]:
    """`fake` started with the names the tests ask: example.org (one address),
    big.example (60: truncated over UDP), silent.example and broken.example."""
    fake.addresses = {"example.org": ["192.0.2.10"],
                      "big.example": [f"192.0.2.{i + 1}" for i in range(60)]}
    fake.behaviour = {"big.example": "truncate", "silent.example": "silent",
                      "broken.example": "servfail"}
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with serving(FakeUpstream()) as fake:
        yield fake


@contextlib.asynccontextmanager
async def running(upstreams: list[str], **options) -> AsyncIterator[ClusterDNS]:
    server = ClusterDNS(upstreams, DNSOptions(**options))
    await server.start([LOOPBACK], 0)
    server.update(SERVICES, ENDPOINTS)
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def server(upstream: FakeUpstream) -> AsyncIterator[ClusterDNS]:
    async with running([upstream.address]) as dns_server:
        yield dns_server


async def udp(server: ClusterDNS, name: str, rdtype: str = "A", **kw) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **kw)
    return await dns.asyncquery.udp(query, LOOPBACK, port=server.port, timeout=TIMEOUT)


async def tcp(server: ClusterDNS, name: str, rdtype: str = "A", **kw) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **kw)
    return await dns.asyncquery.tcp(query, LOOPBACK, port=server.port, timeout=TIMEOUT)


def addresses(reply: dns.message.Message) -> list[str]:
    return [r.to_text() for rrset in reply.answer for r in rrset
            if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)]


# ---- the cluster domain -----------------------------------------------------------------

@pytest.mark.parametrize("ask", [udp, tcp], ids=["udp", "tcp"])
async def test_cluster_names(server: ClusterDNS, upstream: FakeUpstream, ask) -> None:
    reply = await ask(server, WEB)
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA and reply.flags & dns.flags.RA
    assert addresses(reply) == ["10.43.0.10"]
    assert reply.answer[0].ttl == 5

    srv = await ask(server, f"_http._tcp.{WEB}", "SRV")
    assert [r.to_text() for r in srv.answer[0]] == [f"0 100 80 {WEB}."]

    # A search-list miss: NXDOMAIN from here, authoritative, with the SOA.
    miss = await ask(server, "web.default.default.svc.cluster.local")
    assert miss.rcode() == dns.rcode.NXDOMAIN and miss.flags & dns.flags.AA
    assert miss.authority[0].rdtype == dns.rdatatype.SOA
    ext = await ask(server, "example.org.default.svc.cluster.local")
    assert ext.rcode() == dns.rcode.NXDOMAIN

    ptr = await ask(server, "10.0.43.10.in-addr.arpa", "PTR")
    assert [r.to_text() for r in ptr.answer[0]] == [f"{WEB}."]
    assert upstream.seen == []  # none of these left the node


async def test_update_changes_answers_at_once(server: ClusterDNS) -> None:
    assert (await udp(server, "new.default.svc.cluster.local")).rcode() == dns.rcode.NXDOMAIN
    server.update(SERVICES + [{"metadata": {"name": "new", "namespace": "default"},
                               "spec": {"clusterIP": "10.43.0.99"}}], ENDPOINTS)
    assert addresses(await udp(server, "new.default.svc.cluster.local")) == ["10.43.0.99"]
    server.update([], [])
    assert (await udp(server, WEB)).rcode() == dns.rcode.NXDOMAIN


async def test_large_answers_truncate_over_udp_and_come_whole_over_tcp(server: ClusterDNS) -> None:
    name = "many.default.svc.cluster.local"
    plain = await udp(server, name, use_edns=False)
    assert plain.flags & dns.flags.TC
    assert len(addresses(plain)) == 29  # as many as fit 512 bytes
    edns = await udp(server, name, use_edns=0, payload=4096)
    assert edns.flags & dns.flags.TC and len(addresses(edns)) == 73  # 1232 bytes
    full = await tcp(server, name, use_edns=False)
    assert not full.flags & dns.flags.TC
    assert sorted(addresses(full)) == sorted(f"10.42.0.{i + 1}" for i in range(100))
    # What a stub resolver does with TC: ask again over TCP.
    reply, used_tcp = await dns.asyncquery.udp_with_fallback(
        dns.message.make_query(name, "A"), LOOPBACK, port=server.port, timeout=TIMEOUT)
    assert used_tcp and len(addresses(reply)) == 100


async def test_several_queries_on_one_tcp_connection(server: ClusterDNS,
                                                     upstream: FakeUpstream) -> None:
    reader, writer = await asyncio.open_connection(LOOPBACK, server.port)
    try:
        names = [WEB, "example.org", "nothing.default.svc.cluster.local", WEB]
        queries = [dns.message.make_query(n, "A") for n in names]
        # Pipelined: all written before any answer is read (RFC 7766 §6.2.1.1).
        for q in queries:
            wire = q.to_wire()
            writer.write(struct.pack("!H", len(wire)) + wire)
        await writer.drain()
        replies = {}
        async with asyncio.timeout(TIMEOUT):
            for _ in queries:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                reply = dns.message.from_wire(await reader.readexactly(length))
                replies[reply.id] = reply
        by_query = [replies[q.id] for q in queries]
        assert [addresses(r) for r in by_query] == [["10.43.0.10"], ["192.0.2.10"], [],
                                                    ["10.43.0.10"]]
        assert by_query[2].rcode() == dns.rcode.NXDOMAIN
    finally:
        writer.close()
        await writer.wait_closed()


# ---- forwarding -------------------------------------------------------------------------

@pytest.mark.parametrize("ask", [udp, tcp], ids=["udp", "tcp"])
async def test_other_names_are_forwarded(server: ClusterDNS, upstream: FakeUpstream,
                                         ask) -> None:
    reply = await ask(server, "Example.ORG")  # dnspython checks the id is its own
    assert addresses(reply) == ["192.0.2.10"]
    assert not reply.flags & dns.flags.AA
    nx = await ask(server, "nothing.example")
    assert nx.rcode() == dns.rcode.NXDOMAIN
    assert [name for _, name, _ in upstream.seen] == ["example.org", "nothing.example"]
    # Upstream, the query went under an id of the responder's own choosing (not checked
    # against the client's: they may match by chance), always over UDP first.
    assert {proto for proto, _, _ in upstream.seen} == {"udp"}


async def test_truncated_upstream_answers_are_fetched_over_tcp(server: ClusterDNS,
                                                               upstream: FakeUpstream) -> None:
    # A client taking 1232 bytes over UDP: the full answer (60 A records, 997 bytes) fits.
    reply = await udp(server, "big.example", use_edns=0, payload=4096)
    assert not reply.flags & dns.flags.TC and len(addresses(reply)) == 60
    assert [proto for proto, _, _ in upstream.seen] == ["udp", "tcp"]
    # A client taking 512: the 30 records that fit, TC (header 12 + question 17 + 30 *
    # 16 = 509 bytes); it comes back over TCP for the rest.
    plain = await udp(server, "big.example", use_edns=False)
    assert plain.flags & dns.flags.TC and len(addresses(plain)) == 30
    reply, used_tcp = await dns.asyncquery.udp_with_fallback(
        dns.message.make_query("big.example", "A", use_edns=False), LOOPBACK,
        port=server.port, timeout=TIMEOUT)
    assert used_tcp and len(addresses(reply)) == 60


async def test_the_next_upstream_is_tried(upstream: FakeUpstream) -> None:
    silent, dead = bind_pair()  # silent: a UDP socket nobody reads; dead: nothing on UDP
    dead_port = dead.getsockname()[1]
    dead.close()
    try:
        upstreams = [f"{LOOPBACK}:{silent.getsockname()[1]}", f"{LOOPBACK}:{dead_port}",
                     upstream.address]
        async with running(upstreams, forward_timeout=0.3) as server:
            assert addresses(await udp(server, "example.org")) == ["192.0.2.10"]
            # SERVFAIL from the one upstream that answers: relayed as is at the end.
            assert (await udp(server, "broken.example")).rcode() == dns.rcode.SERVFAIL
    finally:
        silent.close()


async def test_servfail_from_one_upstream_asks_the_next(upstream: FakeUpstream) -> None:
    second = FakeUpstream()
    second.addresses = {"broken.example": ["192.0.2.99"]}
    await second.start()
    try:
        async with running([upstream.address, second.address]) as server:
            assert addresses(await udp(server, "broken.example")) == ["192.0.2.99"]
    finally:
        await second.close()


async def test_no_upstream_or_none_answering_is_servfail() -> None:
    async with running([]) as server:
        reply = await udp(server, "example.org")
        assert reply.rcode() == dns.rcode.SERVFAIL
        assert not reply.flags & dns.flags.RA  # nothing to recurse with
        assert addresses(await udp(server, WEB)) == ["10.43.0.10"]  # the cluster still works
    udp_sock, tcp_sock = bind_pair()
    port = udp_sock.getsockname()[1]
    udp_sock.close()
    tcp_sock.close()
    async with running([f"{LOOPBACK}:{port}"], forward_timeout=0.3) as server:
        assert (await udp(server, "example.org")).rcode() == dns.rcode.SERVFAIL
        assert (await tcp(server, "example.org")).rcode() == dns.rcode.SERVFAIL


async def test_forwards_in_flight_are_bounded(upstream: FakeUpstream) -> None:
    async with running([upstream.address], max_forwards=2, forward_timeout=30) as server:
        # Two questions: the same one twice would share one upstream query.
        stuck = [asyncio.create_task(udp(server, "silent.example", rdtype))
                 for rdtype in ("A", "AAAA")]
        await eventually(lambda: len(upstream.seen) == 2, "two queries upstream")
        busy = await udp(server, "example.org")
        assert busy.rcode() == dns.rcode.SERVFAIL  # at once, not queued
        assert len(upstream.seen) == 2
        # The cluster domain does not need the upstreams: still answered.
        assert addresses(await udp(server, WEB)) == ["10.43.0.10"]
    # close() ended the stuck forwards; their clients just never got an answer.
    for task in stuck:
        task.cancel()
    await asyncio.gather(*stuck, return_exceptions=True)


async def test_external_names_are_followed_upstream(server: ClusterDNS,
                                                    upstream: FakeUpstream) -> None:
    reply = await udp(server, "ext.default.svc.cluster.local")
    assert [rrset.to_text() for rrset in reply.answer] == [
        "ext.default.svc.cluster.local. 5 IN CNAME example.org.",
        "example.org. 60 IN A 192.0.2.10"]
    assert reply.rcode() == dns.rcode.NOERROR
    cname_only = await udp(server, "ext.default.svc.cluster.local", "CNAME")
    assert len(cname_only.answer) == 1
    assert [name for _, name, _ in upstream.seen] == ["example.org"]


# ---- bad input, limits, lifecycle -------------------------------------------------------

async def test_malformed_queries(server: ClusterDNS) -> None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect((LOOPBACK, server.port))
        # Not even a header: dropped. A header and garbage: FORMERR under the same id.
        # UDP from one socket is handled in order, so the first reply is the FORMERR.
        await loop.sock_sendall(sock, b"\x01\x02\x03")
        await loop.sock_sendall(sock, b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff")
        async with asyncio.timeout(TIMEOUT):
            reply = dns.message.from_wire(await loop.sock_recv(sock, 4096))
        assert reply.id == 0xABCD and reply.rcode() == dns.rcode.FORMERR
    # The responder goes on.
    assert addresses(await udp(server, WEB)) == ["10.43.0.10"]
    # NOTIMP for another opcode.
    notify = dns.message.make_query(WEB, "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    reply = await dns.asyncquery.udp(notify, LOOPBACK, port=server.port, timeout=TIMEOUT)
    assert reply.rcode() == dns.rcode.NOTIMP


async def test_idle_tcp_connections_are_closed(upstream: FakeUpstream) -> None:
    async with running([upstream.address], tcp_idle_timeout=0.2) as server:
        reader, writer = await asyncio.open_connection(LOOPBACK, server.port)
        async with asyncio.timeout(TIMEOUT):
            assert await reader.read() == b""  # closed by the server
        writer.close()
        await writer.wait_closed()


async def test_tcp_connections_are_bounded(upstream: FakeUpstream) -> None:
    async with running([upstream.address], max_tcp_connections=2) as server:
        held = [await asyncio.open_connection(LOOPBACK, server.port) for _ in range(2)]
        # Each of those answers a query, so the server has taken both.
        for reader, writer in held:
            wire = dns.message.make_query(WEB, "A").to_wire()
            writer.write(struct.pack("!H", len(wire)) + wire)
            async with asyncio.timeout(TIMEOUT):
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                await reader.readexactly(length)
        reader, writer = await asyncio.open_connection(LOOPBACK, server.port)
        async with asyncio.timeout(TIMEOUT):
            assert await reader.read() == b""  # the third is closed at once
        writer.close()
        await writer.wait_closed()
        for _, w in held:
            w.close()
            await w.wait_closed()


async def test_clients_outside_the_allowed_networks_are_refused(upstream: FakeUpstream) -> None:
    async with running([upstream.address], allow=("10.42.0.0/16",)) as server:
        reply = await udp(server, WEB)
        assert reply.rcode() == dns.rcode.REFUSED and not reply.answer
    async with running([upstream.address], allow=("10.42.0.0/16", "127.0.0.0/8")) as server:
        assert addresses(await udp(server, WEB)) == ["10.43.0.10"]


async def test_close_frees_the_ports_and_is_idempotent(upstream: FakeUpstream) -> None:
    server = ClusterDNS([upstream.address])
    await server.start([LOOPBACK], 0)
    port = server.port
    assert server.bound == [("udp", LOOPBACK, port), ("tcp", LOOPBACK, port)]
    # A client connected, and a forward in progress, while closing.
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    pending = asyncio.create_task(udp(server, "silent.example"))
    await eventually(lambda: bool(upstream.seen), "the forward started")
    await asyncio.gather(server.close(), server.close())
    await server.close()
    async with asyncio.timeout(TIMEOUT):
        assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()
    pending.cancel()
    await asyncio.gather(pending, return_exceptions=True)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, port))  # free again
    # TCP too (a listener sets SO_REUSEADDR: the connection the server closed lingers in
    # TIME_WAIT): a new responder takes the same port.
    async with ClusterDNS([upstream.address]) as again:
        await again.start([LOOPBACK], port)
        assert addresses(await tcp(again, "example.org")) == ["192.0.2.10"]
    with pytest.raises(RuntimeError):
        await server.start([LOOPBACK], 0)


async def test_a_port_in_use_fails_start_and_leaves_nothing_bound() -> None:
    udp_sock, tcp_sock = bind_pair()
    port = udp_sock.getsockname()[1]
    tcp_sock.close()
    try:
        server = ClusterDNS()
        with pytest.raises(OSError):
            await server.start(["127.0.0.2", LOOPBACK], port)
        assert server.bound == []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.2", port))  # the first address was released again
    finally:
        udp_sock.close()


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize("address", [
    "192.0.2.1",
    pytest.param("2001:db8::53", marks=pytest.mark.skipif(not _has_ipv6_loopback(),
                                                         reason="no IPv6")),
])
async def test_an_address_not_on_this_host_can_be_bound(address: str) -> None:
    # IP_FREEBIND: the agent binds its pod gateway before Podman's bridge has it. Only a
    # bind, nothing is sent: TEST-NET-1 and the IPv6 documentation prefix are on no
    # interface here (a plain bind would fail with EADDRNOTAVAIL).
    async with ClusterDNS() as server:
        await server.start([address], 0)
        assert [kind for kind, _, _ in server.bound] == ["udp", "tcp"]


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")
async def test_ipv6(upstream: FakeUpstream) -> None:
    async with ClusterDNS([upstream.address]) as server:
        await server.start(["::1", LOOPBACK], 0)
        server.update(SERVICES, ENDPOINTS)
        query = dns.message.make_query(WEB, "A")
        for where in ("::1", LOOPBACK):
            reply = await dns.asyncquery.udp(query, where, port=server.port, timeout=TIMEOUT)
            assert addresses(reply) == ["10.43.0.10"]
            reply = await dns.asyncquery.tcp(query, where, port=server.port, timeout=TIMEOUT)
            assert addresses(reply) == ["10.43.0.10"]
