"""DNSCache and message.relay: what is kept and for how long (RFC 2308 negative TTLs, the
caps), TTLs counted down on a fake clock, expiry, the LRU and byte bounds, which queries
use the cache, and a kept reply rebuilt for another query (its id, its question's case,
its EDNS). dnspython reads the rebuilt replies as the independent side."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import pytest

from bramble.node.dns import message as m
from bramble.node.dns.cache import DNSCache, cacheable_query, key, lifetime
from bramble.node.dns.message import (
    AA,
    CD,
    QR,
    RA,
    RD,
    TC,
    Address,
    Edns,
    Header,
    Message,
    Query,
    Question,
    Record,
    Soa,
    Target,
)

Q = Question("example.org", m.A)


def a(ttl: int, address: str = "192.0.2.1", name: str = "example.org") -> Record:
    return Record(name, m.A, ttl, Address(address))


def soa(ttl: int, minimum: int) -> Record:
    return Record("org", m.SOA, ttl, Soa("ns.org", "hostmaster.org", 1, 7200, 1800, 86400,
                                         minimum))


def reply(*answers: Record, rcode: int = m.NOERROR, authority: tuple[Record, ...] = (),
          additional: tuple[Record, ...] = (), flags: int = QR | RD | RA,
          question: Question = Q) -> Message:
    return Message(Header(0x1111, flags | rcode), (question,), tuple(answers), authority,
                   additional)


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# ---- how long a reply is kept -----------------------------------------------------------

LIFETIMES = [
    # (case, reply, seconds kept) with the default caps: 300 s positive, 30 s negative.
    ("one A, TTL 60", reply(a(60)), 60),
    ("TTL over the cap: min(3600, 300)", reply(a(3600)), 300),
    ("the shortest record: min(60, 30)", reply(a(60), a(30, "192.0.2.2")), 30),
    ("an additional record counts too: min(60, 10)",
     reply(a(60), additional=(a(10, name="ns.example.org"),)), 10),
    ("TTL 0: use once", reply(a(0)), 0),
    ("top bit set reads as 0 (RFC 2181 §8)", reply(a(0x80000000)), 0),
    ("a CNAME chain to the address: min(120, 60)",
     reply(Record("example.org", m.CNAME, 120, Target("cdn.example.net")),
           a(60, name="cdn.example.net")), 60),
    # Negative (RFC 2308 §5): min(SOA TTL, SOA minimum), then the 30 s cap.
    ("NXDOMAIN: min(SOA TTL 3600, minimum 10)",
     reply(rcode=m.NXDOMAIN, authority=(soa(3600, 10),)), 10),
    ("NXDOMAIN: min(SOA TTL 5, minimum 900)",
     reply(rcode=m.NXDOMAIN, authority=(soa(5, 900),)), 5),
    ("NXDOMAIN: min(3600, 900, cap 30)",
     reply(rcode=m.NXDOMAIN, authority=(soa(3600, 900),)), 30),
    ("NXDOMAIN without an SOA is not kept", reply(rcode=m.NXDOMAIN), 0),
    ("NODATA (NOERROR, no answer): min(20, 25)",
     reply(authority=(soa(20, 25),)), 20),
    ("NODATA without an SOA (a referral) is not kept",
     reply(authority=(Record("org", m.NS, 3600, Target("ns.org")),)), 0),
    ("a CNAME alone for an A question is NODATA: min(CNAME 300, SOA 60, minimum 15)",
     reply(Record("example.org", m.CNAME, 300, Target("gone.example.net")),
           authority=(soa(60, 15),)), 15),
    ("NXDOMAIN after a CNAME: min(CNAME 5, SOA 60, minimum 60)",
     reply(Record("example.org", m.CNAME, 5, Target("gone.example.net")),
           rcode=m.NXDOMAIN, authority=(soa(60, 60),)), 5),
    ("SERVFAIL never", reply(rcode=m.SERVFAIL, authority=(soa(60, 60),)), 0),
    ("REFUSED never", reply(rcode=m.REFUSED), 0),
    ("FORMERR never", reply(rcode=m.FORMERR), 0),
    ("truncated never", reply(a(60), flags=QR | RD | RA | TC), 0),
]


@pytest.mark.parametrize(("case", "message", "seconds"), LIFETIMES,
                         ids=[c[0] for c in LIFETIMES])
def test_lifetime(case: str, message: Message, seconds: int) -> None:
    assert lifetime(Q, message) == seconds


def test_lifetime_caps_are_parameters() -> None:
    assert lifetime(Q, reply(a(3600)), max_ttl=60) == 60
    assert lifetime(Q, reply(rcode=m.NXDOMAIN, authority=(soa(3600, 900),)),
                    max_negative_ttl=5) == 5


def test_lifetime_of_a_cname_question_and_any() -> None:
    cname = reply(Record("example.org", m.CNAME, 120, Target("x.example.net")),
                  question=Question("example.org", m.CNAME))
    assert lifetime(Question("example.org", m.CNAME), cname) == 120
    assert lifetime(Question("example.org", m.ANY), reply(a(40))) == 40


def query(name: str = "example.org", qid: int = 0x2222, flags: int = RD,
          edns: Edns | None = None, qtype: int = m.A) -> Query:
    return Query(Header(qid, flags, 1), Question(name, qtype), edns)


CACHEABLE = [
    # (case, query, uses the cache)
    ("a stub's query: RD", query(), True),
    ("RD with EDNS, no DO", query(edns=Edns()), True),
    ("not recursive: may get a referral", query(flags=0), False),
    ("checking disabled (a validator)", query(flags=RD | CD), False),
    ("DNSSEC OK: wants signatures", query(edns=Edns(dnssec_ok=True)), False),
]


@pytest.mark.parametrize(("case", "q", "expected"), CACHEABLE, ids=[c[0] for c in CACHEABLE])
def test_cacheable_query(case: str, q: Query, expected: bool) -> None:
    assert cacheable_query(q) is expected


# ---- the cache on a fake clock ----------------------------------------------------------

def test_ttls_count_down_until_the_entry_expires() -> None:
    clock = Clock(1000.0)
    cache = DNSCache(clock=clock)
    assert cache.put(Q, reply(a(60), additional=(a(90, name="ns.example.org"),)), 60)
    got = cache.get(Q)
    assert got is not None and [rr.ttl for rr in got.answers] == [60]
    clock.now = 1010.9  # 10.9 s later: whole seconds, 60 - 10 = 50
    got = cache.get(Q)
    assert got is not None
    assert [rr.ttl for rr in got.answers] == [50]
    assert [rr.ttl for rr in got.additional] == [80]  # 90 - 10: each record its own
    clock.now = 1059.9  # 60 - 59 = 1: still there, never 0
    got = cache.get(Q)
    assert got is not None and [rr.ttl for rr in got.answers] == [1]
    clock.now = 1060.0  # stored + 60: gone, and dropped
    assert cache.get(Q) is None
    assert len(cache) == 0 and cache.bytes == 0


def test_a_capped_entry_keeps_its_own_ttl_counting_down() -> None:
    # Kept 300 s (the cap), but the TTL told is the upstream's less the time kept: a
    # client hears what the upstream would have said at that moment.
    clock = Clock(1000.0)
    cache = DNSCache(clock=clock)
    cache.put(Q, reply(a(3600)), 60)
    clock.now = 1299.0
    got = cache.get(Q)
    assert got is not None and got.answers[0].ttl == 3600 - 299
    clock.now = 1300.0
    assert cache.get(Q) is None


def test_negative_answers_are_kept_with_their_soa_counting_down() -> None:
    clock = Clock(1000.0)
    cache = DNSCache(clock=clock)
    missing = Question("nothing.example", m.A)
    assert cache.put(missing, reply(rcode=m.NXDOMAIN, authority=(soa(3600, 900),),
                                    question=missing), 80)
    clock.now = 1029.0  # the 30 s cap
    got = cache.get(missing)
    assert got is not None and got.rcode == m.NXDOMAIN
    assert got.authority[0].ttl == 3600 - 29
    assert isinstance(got.authority[0].data, Soa) and got.authority[0].data.minimum == 900
    clock.now = 1030.0
    assert cache.get(missing) is None


def test_failures_are_not_kept() -> None:
    cache = DNSCache(clock=Clock())
    assert not cache.put(Q, reply(rcode=m.SERVFAIL), 40)
    assert not cache.put(Q, reply(rcode=m.REFUSED), 40)
    assert not cache.put(Q, reply(a(60), flags=QR | RD | RA | TC), 40)
    assert cache.get(Q) is None and len(cache) == 0


def test_keyed_by_name_in_any_case_type_and_class() -> None:
    cache = DNSCache(clock=Clock())
    cache.put(Q, reply(a(60)), 60)
    assert key(Question("EXAMPLE.Org", m.A)) == ("example.org", m.A, m.IN)
    assert cache.get(Question("EXAMPLE.Org", m.A)) is not None
    assert cache.get(Question("example.org", m.AAAA)) is None
    assert cache.get(Question("example.org", m.A, m.CLASS_ANY)) is None


def test_a_cached_answer_is_not_authoritative() -> None:
    cache = DNSCache(clock=Clock())
    cache.put(Q, reply(a(60), flags=QR | AA | RD | RA), 60)
    got = cache.get(Q)
    assert got is not None and not got.header.flags & AA


def test_least_recently_used_goes_first() -> None:
    cache = DNSCache(max_entries=3, clock=Clock())
    names = [Question(f"{n}.example", m.A) for n in "abcd"]
    for q in names[:3]:
        cache.put(q, reply(a(60, name=q.name), question=q), 50)
    assert cache.get(names[0]) is not None  # a is used: b is now the oldest
    cache.put(names[3], reply(a(60, name="d.example"), question=names[3]), 50)
    assert len(cache) == 3 and cache.bytes == 150
    assert [cache.get(q) is not None for q in names] == [True, False, True, True]


def test_the_byte_bound() -> None:
    cache = DNSCache(max_bytes=100, clock=Clock())
    names = [Question(f"{n}.example", m.A) for n in "abc"]
    for q in names:
        cache.put(q, reply(a(60, name=q.name), question=q), 40)
    # 3 * 40 = 120 > 100: the oldest went, 80 left.
    assert cache.bytes == 80 and [cache.get(q) is not None for q in names] == [False, True, True]
    assert not cache.put(Q, reply(a(60)), 101)  # larger than the whole cache
    assert cache.bytes == 80


def test_putting_again_replaces_and_restarts_the_clock() -> None:
    clock = Clock(1000.0)
    cache = DNSCache(clock=clock)
    cache.put(Q, reply(a(60)), 60)
    clock.now = 1050.0
    cache.put(Q, reply(a(60, "192.0.2.9")), 70)
    assert len(cache) == 1 and cache.bytes == 70
    clock.now = 1100.0  # 50 s after the second put
    got = cache.get(Q)
    assert got is not None
    assert [(rr.ttl, rr.data) for rr in got.answers] == [(10, Address("192.0.2.9"))]


def test_no_entries_no_cache_and_clear() -> None:
    off = DNSCache(max_entries=0, clock=Clock())
    assert not off.put(Q, reply(a(60)), 60)
    cache = DNSCache(clock=Clock())
    cache.put(Q, reply(a(60)), 60)
    cache.clear()
    assert cache.get(Q) is None and len(cache) == 0 and cache.bytes == 0


# ---- a kept reply, rebuilt for another query --------------------------------------------

def test_relay_answers_under_the_querys_id_and_question() -> None:
    clock = Clock(1000.0)
    cache = DNSCache(clock=clock)
    cache.put(Q, reply(a(60)), 60)  # fetched for "example.org" under id 0x1111
    clock.now = 1007.0
    got = cache.get(Question("eXaMpLe.OrG", m.A))
    assert got is not None
    # Another client (0x20 case, its own id, no EDNS) asks the same question.
    asked = query("eXaMpLe.OrG", qid=0xBEEF)
    wire = m.relay(asked, got, recursion=True, limit=m.MIN_UDP_PAYLOAD)
    out = dns.message.from_wire(wire)
    assert out.id == 0xBEEF
    assert out.question[0].name.to_text() == "eXaMpLe.OrG."  # as asked, case and all
    assert [rrset.to_text() for rrset in out.answer] == ["eXaMpLe.OrG. 53 IN A 192.0.2.1"]
    assert out.flags & dns.flags.QR and out.flags & dns.flags.RD and out.flags & dns.flags.RA
    assert not out.flags & dns.flags.AA
    assert out.edns < 0  # the client sent no OPT record: none comes back
    with_edns = dns.message.from_wire(m.relay(query(edns=Edns()), got, recursion=True,
                                              limit=m.MAX_UDP_PAYLOAD))
    assert with_edns.edns == 0 and with_edns.payload == m.MAX_UDP_PAYLOAD


def test_relay_keeps_rcode_and_authority_and_cuts_to_the_limit() -> None:
    nx = reply(rcode=m.NXDOMAIN, authority=(soa(60, 30),))
    out = dns.message.from_wire(m.relay(query(), nx, recursion=True, limit=512))
    assert out.rcode() == dns.rcode.NXDOMAIN
    assert [rrset.to_text() for rrset in out.authority] == [
        "org. 60 IN SOA ns.org. hostmaster.org. 1 7200 1800 86400 30"]
    # 60 A records: 12 + 17 (question) + 60 * 16 = 989 bytes; 512 take (512 - 29) // 16
    # = 30 of them, and TC.
    many = reply(*(a(60, f"192.0.2.{i + 1}") for i in range(60)))
    cut = dns.message.from_wire(m.relay(query(), many, recursion=True, limit=512))
    assert cut.flags & dns.flags.TC and len(cut.answer[0]) == 30
    whole = dns.message.from_wire(m.relay(query(), many, recursion=True, limit=m.MAX_TCP_MESSAGE))
    assert not whole.flags & dns.flags.TC and len(whole.answer[0]) == 60


def test_relay_of_a_truncated_reply_is_the_question_and_tc() -> None:
    truncated = reply(a(60), flags=QR | RD | RA | TC)
    out = dns.message.from_wire(m.relay(query(), truncated, recursion=True, limit=512))
    assert out.flags & dns.flags.TC and not out.answer
    assert out.question[0].name.to_text() == "example.org."
