"""The cluster DNS's cache through the real responder on loopback: repeated questions go
upstream once, negative answers too, failures and validators' queries every time, one
query upstream for many clients asking at once, each answered under its own id and
question. The upstreams are fakes on 127.0.0.1 that count what they are asked (the
fixtures of test_dns_server); nothing leaves loopback. Expiry and TTL arithmetic are
unit-tested on a fake clock (tests/unit/test_dns_cache.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from bramble.node.dns import ClusterDNS
from tests.node.test_dns_server import (
    LOOPBACK,
    FakeUpstream,
    addresses,
    eventually,
    running,
    serving,
    tcp,
    udp,
)

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

# Negative answers are cached only with an SOA (RFC 2308 §5): min(TTL 60, minimum 20).
SOA = "ns.example. hostmaster.example. 1 7200 1800 86400 20"


class SoaUpstream(FakeUpstream):
    """FakeUpstream whose NXDOMAIN and NODATA answers carry an SOA, as real ones do."""

    def reply(self, wire: bytes, tcp: bool) -> bytes | None:
        out = super().reply(wire, tcp)
        if out is None:
            return None
        response = dns.message.from_wire(out)
        negative = response.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)
        if negative and not response.answer and not response.flags & dns.flags.TC:
            response.authority.append(dns.rrset.from_text("example.", 60, "IN", "SOA", SOA))
        return response.to_wire()


class GatedUpstream:
    """A UDP resolver on 127.0.0.1 holding every query until `release()`; from then on it
    answers each at once (A: one record; other types: NODATA without an SOA, not
    cacheable). `queries`: the names asked, in order."""

    ADDRESS = "192.0.2.77"

    def __init__(self) -> None:
        self.queries: list[str] = []
        self._held: list[tuple[dns.message.Message, tuple]] = []
        self._open = False
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        gate = self

        class Protocol(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple) -> None:
                query = dns.message.from_wire(data)
                gate.queries.append(query.question[0].name.to_text().rstrip(".").lower())
                gate._held.append((query, addr))
                if gate._open:
                    gate.release()

        self._transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            Protocol, local_addr=(LOOPBACK, 0))

    def release(self) -> None:
        self._open = True
        assert self._transport is not None
        for query, addr in self._held:
            response = dns.message.make_response(query)
            question = query.question[0]
            if question.rdtype == dns.rdatatype.A:
                response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A",
                                                           self.ADDRESS))
            self._transport.sendto(response.to_wire(), addr)
        self._held.clear()

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        await asyncio.sleep(0)  # let the transport finish closing

    @property
    def address(self) -> str:
        assert self._transport is not None
        return f"{LOOPBACK}:{self._transport.get_extra_info('sockname')[1]}"


@pytest.fixture
async def upstream() -> AsyncIterator[SoaUpstream]:
    async with serving(SoaUpstream()) as fake:
        yield fake


@pytest.fixture
async def server(upstream: SoaUpstream) -> AsyncIterator[ClusterDNS]:
    async with running([upstream.address]) as dns_server:
        yield dns_server


def asked(upstream: FakeUpstream) -> list[str]:
    return [name for _, name, _ in upstream.seen]


async def test_a_question_goes_upstream_once(server: ClusterDNS, upstream: SoaUpstream) -> None:
    first = await udp(server, "example.org")
    assert addresses(first) == ["192.0.2.10"] and first.answer[0].ttl == 60
    # Asked again in another case (0x20), under another id (dnspython checks its own),
    # over UDP and TCP: from the cache, the question and owner as asked.
    again = await udp(server, "EXAMPLE.org")
    assert again.question[0].name.to_text() == "EXAMPLE.org."
    assert again.answer[0].name.to_text() == "EXAMPLE.org."
    assert addresses(again) == ["192.0.2.10"] and 0 < again.answer[0].ttl <= 60
    assert not again.flags & dns.flags.AA and again.flags & dns.flags.RA
    assert addresses(await tcp(server, "example.org")) == ["192.0.2.10"]
    assert asked(upstream) == ["example.org"]
    # Another type is another entry: AAAA is NODATA (NOERROR, the SOA), kept too.
    for _ in range(2):
        nodata = await udp(server, "example.org", "AAAA")
        assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
        assert nodata.authority[0].rdtype == dns.rdatatype.SOA
    # NXDOMAIN, kept for min(SOA TTL 60, minimum 20) = 20 s.
    for _ in range(2):
        nx = await udp(server, "nothing.example")
        assert nx.rcode() == dns.rcode.NXDOMAIN
        assert nx.authority[0].rdtype == dns.rdatatype.SOA
    assert asked(upstream) == ["example.org", "example.org", "nothing.example"]


async def test_a_search_list_lookup_goes_upstream_only_the_first_time(
        server: ClusterDNS, upstream: SoaUpstream) -> None:
    # What glibc does for `example.org` with a pod's resolv.conf (ndots:5, the cluster
    # search list and a host search domain `lan`): A and AAAA for each candidate until
    # one exists. The cluster suffixes end in the responder; `example.org.lan` (NXDOMAIN)
    # and `example.org` go upstream: 4 queries the first time, none the second.
    search = ["default.svc.cluster.local", "svc.cluster.local", "cluster.local", "lan"]

    async def lookup(name: str) -> list[str]:
        for candidate in [f"{name}.{suffix}" for suffix in search] + [name]:
            a, aaaa = await asyncio.gather(udp(server, candidate), udp(server, candidate, "AAAA"))
            if a.rcode() != dns.rcode.NXDOMAIN:
                return addresses(a) + addresses(aaaa)
        return []

    assert await lookup("example.org") == ["192.0.2.10"]
    assert sorted(asked(upstream)) == ["example.org", "example.org", "example.org.lan",
                                       "example.org.lan"]
    assert await lookup("example.org") == ["192.0.2.10"]
    assert len(upstream.seen) == 4


async def test_failures_and_validators_queries_go_upstream_every_time(
        server: ClusterDNS, upstream: SoaUpstream) -> None:
    for _ in range(2):
        assert (await udp(server, "broken.example")).rcode() == dns.rcode.SERVFAIL
    assert asked(upstream) == ["broken.example"] * 2
    # DO (a validator wants the signatures a cached plain answer lacks): relayed as it
    # comes, each time, and not cached for the plain query after it either.
    for _ in range(2):
        signed = await udp(server, "example.org", want_dnssec=True)
        assert addresses(signed) == ["192.0.2.10"]
    assert asked(upstream)[2:] == ["example.org"] * 2
    assert addresses(await udp(server, "example.org")) == ["192.0.2.10"]
    assert asked(upstream)[2:] == ["example.org"] * 3


async def test_a_truncated_answer_is_cached_whole(server: ClusterDNS,
                                                  upstream: SoaUpstream) -> None:
    # Upstream: TC over UDP, then the 60 records over TCP; the client taking 512 bytes
    # gets the 30 that fit and TC; its retry over TCP is answered from the cache.
    plain = await udp(server, "big.example", use_edns=False)
    assert plain.flags & dns.flags.TC and len(addresses(plain)) == 30
    assert [proto for proto, _, _ in upstream.seen] == ["udp", "tcp"]
    full = await tcp(server, "big.example", use_edns=False)
    assert not full.flags & dns.flags.TC and len(addresses(full)) == 60
    assert len(upstream.seen) == 2


async def test_external_name_targets_are_cached(server: ClusterDNS,
                                                upstream: SoaUpstream) -> None:
    for _ in range(2):
        reply = await udp(server, "ext.default.svc.cluster.local")
        assert [rrset.to_text().split()[3] for rrset in reply.answer] == ["CNAME", "A"]
    assert addresses(await udp(server, "example.org")) == ["192.0.2.10"]
    assert asked(upstream) == ["example.org"]


async def test_new_upstreams_start_with_an_empty_cache(server: ClusterDNS,
                                                       upstream: SoaUpstream) -> None:
    assert addresses(await udp(server, "example.org")) == ["192.0.2.10"]
    other = SoaUpstream()
    other.addresses = {"example.org": ["192.0.2.20"]}
    await other.start()
    try:
        server.set_upstreams([other.address])
        assert addresses(await udp(server, "example.org")) == ["192.0.2.20"]
        assert asked(other) == ["example.org"]
    finally:
        await other.close()


async def test_clients_asking_at_once_share_one_upstream_query() -> None:
    gate = GatedUpstream()
    await gate.start()
    try:
        async with running([gate.address]) as server:
            spellings = ["example.org", "EXAMPLE.org", "Example.Org", "example.ORG"]
            asks = [asyncio.create_task(udp(server, name)) for name in spellings]
            asks.append(asyncio.create_task(tcp(server, "eXample.org")))
            spellings.append("eXample.org")
            # All five wait for the upstream (nothing is cached yet: no answer has come)
            # - the responder's own count of client queries upstream, read here only.
            await eventually(lambda: len(server._forwards) == 5,
                             "five client queries waiting for the upstream")
            assert gate.queries == ["example.org"]
            gate.release()
            replies = await asyncio.gather(*asks)
            for name, reply in zip(spellings, replies, strict=True):
                assert reply.question[0].name.to_text() == f"{name}."
                assert addresses(reply) == [GatedUpstream.ADDRESS]
            assert gate.queries == ["example.org"]
            # Another type is another question: its own query.
            assert addresses(await udp(server, "example.org", "AAAA")) == []
            assert gate.queries == ["example.org", "example.org"]
    finally:
        await gate.close()
