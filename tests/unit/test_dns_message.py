"""The DNS wire codec: names, compression pointers, queries (good and malformed), replies,
truncation. dnspython is the independent side: it builds queries we parse and parses the
replies we build."""

from __future__ import annotations

import struct

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from bramble.node.dns import message as m
from bramble.node.dns.message import (
    AA,
    CD,
    QR,
    RA,
    RD,
    TC,
    Address,
    Answer,
    BadQuery,
    Edns,
    Header,
    MessageError,
    Mx,
    Opaque,
    Question,
    Record,
    Soa,
    Srv,
    Target,
    Txt,
)

WEB = "web.default.svc.cluster.local"


def header(qid: int = 0x1234, flags: int = RD, qd: int = 1, an: int = 0, ns: int = 0,
           ar: int = 0) -> bytes:
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def question(name: bytes = b"\x03web\x07default\x00", qtype: int = m.A) -> bytes:
    return name + struct.pack("!HH", qtype, m.IN)


def opt(payload: int = 1232, version: int = 0, do: bool = False) -> bytes:
    ttl = (version << 16) | (0x8000 if do else 0)
    return b"\x00" + struct.pack("!HHIH", m.OPT, payload, ttl, 0)


# ---- names ------------------------------------------------------------------------------

NAME_CASES = [
    # (text, wire)
    ("", b"\x00"),
    ("org", b"\x03org\x00"),
    ("Example.ORG", b"\x07Example\x03ORG\x00"),
    # A dot and a backslash inside a label, and bytes that are not printable ASCII.
    ("a\\.b.c", b"\x03a.b\x01c\x00"),
    ("a\\\\b", b"\x03a\\b\x00"),
    ("\\000\\255x", b"\x03\x00\xffx\x00"),
    ("sp\\032ace", b"\x06sp ace\x00"),
]


@pytest.mark.parametrize(("text", "wire"), NAME_CASES)
def test_names_round_trip(text: str, wire: bytes) -> None:
    assert m.encode_name(text) == wire
    assert m.parse_name(wire) == text


def test_a_trailing_dot_is_the_same_name() -> None:
    assert m.encode_name("example.org.") == m.encode_name("example.org")
    assert m.encode_name(".") == b"\x00"


BAD_NAMES = [
    ("a" * 64 + ".org", "label longer than 63"),
    # 4 labels of 63 + their length bytes = 256, + root = 257 > 255.
    (".".join(["a" * 63] * 4), "name longer than 255"),
    ("a..b", "empty label"),
    ("caf\u00e9.org", "not ASCII"),
    ("a\\", "dangling escape"),
    ("a\\256", "bad escape"),
]


@pytest.mark.parametrize(("name", "why"), BAD_NAMES)
def test_bad_names_are_refused(name: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        m.encode_name(name)


def test_longest_name_fits() -> None:
    # 3 labels of 63 + 1 of 61: (64 * 3) + 62 + root 1 = 255 bytes.
    name = ".".join(["a" * 63] * 3 + ["b" * 61])
    assert len(m.encode_name(name)) == 255


POINTER_CASES = [
    # (id, bytes after the header, what parse says)
    ("pointer back to an earlier name",
     question() + b"\x03www\xc0\x0c" + struct.pack("!HH", m.A, m.IN), None),
    ("pointer to itself", question(b"\xc0\x0c"), "does not point backwards"),
    ("pointer forward", question(b"\xc0\x20") + b"\x00" * 20, "does not point backwards"),
    # Two names pointing at each other: the second name's pointer goes back to the first,
    # whose pointer would go forward again - refused before it can loop.
    ("two pointers in a loop",
     question(b"\xc0\x12") + b"\x00" * 2 + question(b"\xc0\x0c"), "does not point backwards"),
    # A pointer into the same name (before the pointer, not before the name's start).
    ("pointer into its own labels", question(b"\x03web\xc0\x0c"), "does not point backwards"),
    ("label type 0x40", question(b"\x41abc\x00"), "unknown label type"),
    ("label past the end", b"\x10abc", "runs past the end"),
    ("half a pointer at the end", b"\xc0", "runs past the end"),
]


@pytest.mark.parametrize(("case", "body", "error"), POINTER_CASES, ids=[c[0] for c in POINTER_CASES])
def test_compression_pointers(case: str, body: bytes, error: str | None) -> None:
    qd = 2 if "earlier" in case or "loop" in case else 1
    data = header(qd=qd) + body
    if error is None:
        parsed = m.parse(data)
        assert [q.name for q in parsed.questions] == ["web.default", "www.web.default"]
    else:
        with pytest.raises(MessageError, match=error) as err:
            m.parse(data)
        assert err.value.header is not None  # a header was read: FORMERR can be sent


def test_a_name_over_255_bytes_through_pointers_is_refused() -> None:
    # Each name adds a 63-byte label in front of a pointer to the previous one: the fourth
    # name would be 4 * 64 + 1 = 257 bytes long.
    body = b"\x3f" + b"a" * 63 + b"\x00" + struct.pack("!HH", 1, 1)
    offsets = [12]
    for _ in range(4):
        offsets.append(12 + len(body))
        body += b"\x3f" + b"a" * 63 + struct.pack("!H", 0xC000 | offsets[-2]) + \
            struct.pack("!HH", 1, 1)
    with pytest.raises(MessageError, match="longer than 255"):
        m.parse(header(qd=5) + body)


# ---- reading queries --------------------------------------------------------------------

QUERY_CASES = [
    # (id, datagram, expected rcode of the reply, or None: dropped)
    ("shorter than a header", b"\x12\x34\x01", None),
    ("a response (QR set)", header(flags=QR) + question(), None),
    ("garbage after the header", header() + b"\xff\xff\xff", m.FORMERR),
    ("question cut short", header() + b"\x03web\x00\x00", m.FORMERR),
    ("no question", header(qd=0), m.FORMERR),
    ("two questions", header(qd=2) + question() + question(), m.FORMERR),
    ("opcode STATUS", header(flags=2 << 11) + question(), m.NOTIMP),
    ("opcode UPDATE", header(flags=5 << 11, qd=1) + question(), m.NOTIMP),
    ("EDNS version 1", header(ar=1) + question() + opt(version=1), m.BADVERS),
    ("two OPT records", header(ar=2) + question() + opt() + opt(), m.FORMERR),
    ("OPT in the answer section", header(an=1) + question() + opt(), m.FORMERR),
    ("OPT with a name", header(ar=1) + question() + b"\x01a" + opt(), m.FORMERR),
    ("record data past the end",
     header(an=1) + question() + b"\x00" + struct.pack("!HHIH", m.A, 1, 0, 4) + b"\x01",
     m.FORMERR),
]


@pytest.mark.parametrize(("case", "data", "rcode"), QUERY_CASES, ids=[c[0] for c in QUERY_CASES])
def test_bad_queries(case: str, data: bytes, rcode: int | None) -> None:
    with pytest.raises(BadQuery) as bad:
        m.read_query(data)
    if rcode is None:
        assert bad.value.response is None
        return
    reply = dns.message.from_wire(bad.value.response)
    assert reply.id == 0x1234
    assert reply.flags & dns.flags.QR
    assert reply.rcode() == rcode
    # The opcode of the query comes back (NOTIMP says which one is not implemented).
    assert dns.opcode.from_flags(reply.flags) == (struct.unpack("!H", data[2:4])[0] >> 11) & 0xF
    if rcode == m.BADVERS:
        assert reply.edns == 0  # BADVERS travels in an OPT record of version 0


UDP_LIMIT_CASES = [
    # (id, use_edns, payload, limit)
    ("no EDNS: plain DNS", False, 0, 512),
    ("EDNS 4096: capped at 1232, never fragmented", True, 4096, 1232),
    ("EDNS 1232", True, 1232, 1232),
    ("EDNS 800", True, 800, 800),
    ("EDNS under 512 counts as 512 (RFC 6891 §6.2.5)", True, 100, 512),
]


@pytest.mark.parametrize(("case", "use_edns", "payload", "limit"), UDP_LIMIT_CASES,
                         ids=[c[0] for c in UDP_LIMIT_CASES])
def test_udp_limit(case: str, use_edns: bool, payload: int, limit: int) -> None:
    query = dns.message.make_query(WEB, "A", use_edns=0 if use_edns else False,
                                   payload=payload or 1232)
    got = m.read_query(query.to_wire())
    assert got.udp_limit == limit
    assert got.question == Question(WEB, m.A, m.IN)


def test_a_dnspython_query_reads_back() -> None:
    query = dns.message.make_query("Web.Default.svc.cluster.local", "SRV", want_dnssec=True)
    query.flags |= dns.flags.CD
    got = m.read_query(query.to_wire())
    assert got.header.id == query.id
    assert got.question.name == "Web.Default.svc.cluster.local"  # case kept
    assert got.question.qtype == m.SRV
    assert got.edns is not None and got.edns.dnssec_ok


# ---- replies ----------------------------------------------------------------------------

def a_records(count: int, name: str = WEB) -> tuple[Record, ...]:
    return tuple(Record(name, m.A, 5, Address(f"10.42.{i // 250}.{i % 250 + 1}"))
                 for i in range(count))


def reply_of(query: dns.message.Message, answer: Answer, *, recursion: bool = True,
             limit: int | None = None) -> tuple[bytes, dns.message.Message]:
    parsed = m.read_query(query.to_wire())
    wire = m.respond(parsed, answer, recursion=recursion,
                     limit=parsed.udp_limit if limit is None else limit)
    return wire, dns.message.from_wire(wire)


FLAG_CASES = [
    # (id, query flags, authoritative, recursion, expected flags)
    ("RD copied, AA and RA set", RD, True, True, QR | RD | AA | RA),
    ("no RD asked, none given back", 0, True, True, QR | AA | RA),
    ("no upstream: RA clear", RD, True, False, QR | RD | AA),
    ("forwarded-style: not authoritative", RD, False, True, QR | RD | RA),
    ("CD copied", RD | CD, True, True, QR | RD | AA | RA | CD),
]


@pytest.mark.parametrize(("case", "qflags", "aa", "ra", "flags"), FLAG_CASES,
                         ids=[c[0] for c in FLAG_CASES])
def test_reply_flags(case: str, qflags: int, aa: bool, ra: bool, flags: int) -> None:
    query = dns.message.make_query(WEB, "A", use_edns=False)
    query.flags = qflags
    _, reply = reply_of(query, Answer(answers=a_records(1), authoritative=aa), recursion=ra)
    assert reply.flags == flags
    assert reply.id == query.id


def test_every_record_type_as_dnspython_reads_it() -> None:
    query = dns.message.make_query("Any.Example", "ANY")
    answers = (
        Record("Any.Example", m.A, 5, Address("10.43.0.10")),
        Record("any.example", m.AAAA, 5, Address("fd00::10")),
        Record("any.example", m.CNAME, 5, Target("web.default.svc.cluster.local")),
        Record("any.example", m.PTR, 5, Target("web.default.svc.cluster.local")),
        Record("any.example", m.SRV, 5, Srv(0, 100, 80, "web.default.svc.cluster.local")),
        Record("any.example", m.MX, 5, Mx(10, "mail.example")),
        Record("any.example", m.TXT, 5, Txt((b"1.1.0", b"two words"))),
        Record("any.example", m.SOA, 5, Soa("ns.dns.cluster.local", "hostmaster.cluster.local",
                                            7, 7200, 1800, 86400, 5)),
        Record("any.example", 65280, 5, Opaque(b"\x01\x02")),
    )
    _, reply = reply_of(query, Answer(answers=answers))
    text = sorted(str(rrset) for rrset in reply.answer)
    assert text == sorted([
        "Any.Example. 5 IN A 10.43.0.10",
        "any.example. 5 IN AAAA fd00::10",
        "any.example. 5 IN CNAME web.default.svc.cluster.local.",
        "any.example. 5 IN PTR web.default.svc.cluster.local.",
        "any.example. 5 IN SRV 0 100 80 web.default.svc.cluster.local.",
        "any.example. 5 IN MX 10 mail.example.",
        'any.example. 5 IN TXT "1.1.0" "two words"',
        "any.example. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 7 7200 1800 "
        "86400 5",
        "any.example. 5 IN TYPE65280 \\# 2 0102",
    ])


def test_names_are_compressed_but_srv_targets_are_not() -> None:
    query = dns.message.make_query("_http._tcp." + WEB, "SRV", use_edns=False)
    srv = Record("_http._tcp." + WEB, m.SRV, 5, Srv(0, 100, 80, WEB))
    address = Record(WEB, m.A, 5, Address("10.43.0.10"))
    wire, reply = reply_of(query, Answer(answers=(srv,), additional=(address,)))
    # The SRV owner is the question's name (a 2-byte pointer); its target is written out
    # in full (RFC 2782); the A record's owner points into the question.
    assert m.encode_name(WEB) in wire[wire.index(b"\x00\x00\x00\x64\x00\x50"):]
    assert str(reply.additional[0]) == f"{WEB}. 5 IN A 10.43.0.10"
    # header 12 + question (11 + 31 name bytes + 4) + SRV (2 + 10 + 6 + 31) + A (2+10+4)
    assert len(wire) == 12 + 46 + 49 + 16


def test_compression_keeps_each_names_case() -> None:
    query = dns.message.make_query("WEB.default.svc.cluster.local", "CNAME", use_edns=False)
    cname = Record("WEB.default.svc.cluster.local", m.CNAME, 5,
                   Target("web.default.svc.cluster.local"))
    _, reply = reply_of(query, Answer(answers=(cname,)))
    assert reply.answer[0][0].target.to_text() == "web.default.svc.cluster.local."


TRUNCATION_CASES = [
    # (id, use_edns, payload, records, expected answers kept, TC)
    # No EDNS, 512 bytes: header 12 + question (31 + 4) = 47; each A record is 2 (a
    # pointer to the question's name) + 10 + 4 = 16 bytes; (512 - 47) // 16 = 29.
    ("plain DNS: 29 of 40 A records fit 512 bytes", False, 0, 40, 29, True),
    ("plain DNS: 29 fit exactly, no TC", False, 0, 29, 29, False),
    # EDNS 1232: the OPT record (11) is kept: (1232 - 11 - 47) // 16 = 73.
    ("EDNS 1232: 73 of 100 fit", True, 1232, 100, 73, True),
    ("EDNS 4096 is capped at 1232 too", True, 4096, 100, 73, True),
    # EDNS 600: (600 - 11 - 47) // 16 = 33.
    ("EDNS 600: 33 of 100 fit", True, 600, 100, 33, True),
]


@pytest.mark.parametrize(("case", "use_edns", "payload", "count", "kept", "tc"),
                         TRUNCATION_CASES, ids=[c[0] for c in TRUNCATION_CASES])
def test_truncation(case: str, use_edns: bool, payload: int, count: int, kept: int,
                    tc: bool) -> None:
    query = dns.message.make_query(WEB, "A", use_edns=0 if use_edns else False,
                                   payload=payload or 1232)
    soa = Record("cluster.local", m.SOA, 5, Soa("ns.dns.cluster.local",
                                                "hostmaster.cluster.local", 1, 1, 1, 1, 5))
    wire, reply = reply_of(query, Answer(answers=a_records(count), authority=(soa,)))
    assert len(wire) <= max(512, min(payload, 1232))
    assert bool(reply.flags & dns.flags.TC) == tc
    assert len(reply.answer[0]) == kept
    if tc:
        assert not reply.authority  # dropped with the answers that did not fit
    assert (reply.edns == 0) == use_edns  # the OPT record always stays


def test_additional_that_does_not_fit_is_dropped_without_tc() -> None:
    query = dns.message.make_query(WEB, "A", use_edns=False)
    # 29 answers fill the 512 bytes exactly (see above): the additional ones go, no TC.
    _, reply = reply_of(query, Answer(answers=a_records(29),
                                      additional=a_records(3, "other.example")))
    assert not reply.flags & dns.flags.TC
    assert len(reply.answer[0]) == 29 and not reply.additional


def test_tcp_limit_holds_everything() -> None:
    query = dns.message.make_query(WEB, "A", use_edns=False)
    wire, reply = reply_of(query, Answer(answers=a_records(1000)), limit=m.MAX_TCP_MESSAGE)
    assert len(reply.answer[0]) == 1000
    assert len(wire) == 47 + 1000 * 16


def test_error_replies_echo_the_question() -> None:
    query = dns.message.make_query(WEB, "A")
    parsed = m.read_query(query.to_wire())
    reply = dns.message.from_wire(m.respond_error(parsed, m.SERVFAIL, recursion=True))
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert str(reply.question[0]) == f"{WEB}. IN A"
    assert reply.flags & dns.flags.RA and not reply.flags & dns.flags.AA


# ---- relaying ---------------------------------------------------------------------------

def test_make_query_and_reply_matching() -> None:
    q = Question("example.org", m.AAAA)
    wire = m.make_query(q, 0xBEEF)
    query = dns.message.from_wire(wire)
    assert query.id == 0xBEEF and query.flags & dns.flags.RD and query.edns == 0
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text("example.org.", 60, "IN", "AAAA", "2001:db8::1"))
    parsed = m.parse(reply.to_wire())
    assert m.is_reply_to(parsed, 0xBEEF, Question("EXAMPLE.org", m.AAAA))
    assert not m.is_reply_to(parsed, 0xBEEE, q)  # another id
    assert not m.is_reply_to(parsed, 0xBEEF, Question("example.com", m.AAAA))
    assert not m.is_reply_to(parsed, 0xBEEF, Question("example.org", m.A))
    assert not m.is_reply_to(m.parse(wire), 0xBEEF, q)  # a query is not a reply
    assert parsed.answers == (Record("example.org", m.AAAA, 60, Address("2001:db8::1")),)
    assert m.message_id(m.with_id(reply.to_wire(), 7)) == 7
    assert not m.is_truncated(reply.to_wire())
    reply.flags |= dns.flags.TC
    assert m.is_truncated(reply.to_wire())


def upstream_reply(count: int, *, use_edns: bool = False) -> bytes:
    query = dns.message.make_query("big.example", "A", use_edns=0 if use_edns else False)
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text_list(
        "big.example.", 60, "IN", "A", [f"192.0.2.{i + 1}" for i in range(count)]))
    return reply.to_wire(max_size=65535)  # an upstream that ignores the client's size


FIT_CASES = [
    # (id, records, EDNS, limit, answers kept, TC)
    ("fits: unchanged", 10, False, 512, 10, False),
    # header 12 + question (13 + 4) = 29; 16 bytes per A record: (512 - 29) // 16 = 30.
    ("60 records, 512 bytes: 30 kept", 60, False, 512, 30, True),
    # With the OPT record (11) kept: (512 - 11 - 29) // 16 = 29.
    ("60 records with EDNS, 512 bytes: 29 kept", 60, True, 512, 29, True),
    # (1232 - 11 - 29) // 16 = 74.
    ("100 records with EDNS, 1232 bytes: 74 kept", 100, True, 1232, 74, True),
]


@pytest.mark.parametrize(("case", "count", "use_edns", "limit", "kept", "tc"), FIT_CASES,
                         ids=[c[0] for c in FIT_CASES])
def test_fit_cuts_relayed_replies(case: str, count: int, use_edns: bool, limit: int,
                                  kept: int, tc: bool) -> None:
    wire = upstream_reply(count, use_edns=use_edns)
    out = m.fit(wire, limit)
    assert len(out) <= limit
    if not tc:
        assert out == wire
    reply = dns.message.from_wire(out)
    assert len(reply.answer[0]) == kept
    assert bool(reply.flags & dns.flags.TC) == tc
    assert reply.id == dns.message.from_wire(wire).id
    assert (reply.edns == 0) == use_edns


def test_fit_cuts_an_unreadable_reply_to_its_header() -> None:
    wire = upstream_reply(60)
    broken = wire[:4] + b"\x00\x05" + wire[6:]  # claims 5 questions
    out = m.fit(broken, 512)
    assert len(out) == m.HEADER_SIZE
    assert m.is_truncated(out) and m.message_id(out) == m.message_id(wire)


def test_parse_decompresses_names_inside_record_data() -> None:
    query = dns.message.make_query("ext.example", "MX")
    reply = dns.message.make_response(query)
    for name, rtype, data in (
            ("ext.example.", "CNAME", "mail.ext.example."),
            ("mail.ext.example.", "MX", "10 mx1.ext.example."),
            ("mail.ext.example.", "SRV", "1 2 25 mx1.ext.example."),
            ("ext.example.", "SOA", "ns.ext.example. root.ext.example. 1 2 3 4 5"),
            ("ext.example.", "TXT", '"a" "b"')):
        reply.answer.append(dns.rrset.from_text(name, 30, "IN", rtype, data))
    parsed = m.parse(reply.to_wire())  # dnspython compresses the names in the data
    assert [rr.data for rr in parsed.answers] == [
        Target("mail.ext.example"), Mx(10, "mx1.ext.example"),
        Srv(1, 2, 25, "mx1.ext.example"),
        Soa("ns.ext.example", "root.ext.example", 1, 2, 3, 4, 5), Txt((b"a", b"b"))]
    # And written again by us, uncompressed or re-compressed, they read the same.
    again = dns.message.make_query("ext.example", "MX")
    _, out = reply_of(again, Answer(answers=parsed.answers), limit=m.MAX_TCP_MESSAGE)
    assert sorted(map(str, out.answer)) == sorted(map(str, reply.answer))


def test_chain_keeps_only_what_answers_the_name() -> None:
    def rr(name: str, rtype: int, data: m.RData) -> Record:
        return Record(name, rtype, 60, data)

    records = [
        rr("Example.ORG", m.CNAME, Target("www.example.net")),
        rr("web.default.svc.cluster.local", m.A, Address("6.6.6.6")),  # injected
        rr("www.example.net", m.CNAME, Target("edge.example.net")),
        rr("edge.example.net", m.A, Address("192.0.2.1")),
        rr("other.example", m.A, Address("6.6.6.7")),  # injected
    ]
    assert m.chain(records, "example.org") == (records[0], records[2], records[3])


def test_obsolete_types_with_names_in_their_data_are_refused() -> None:
    # MB (7) may hold a compressed name we do not decode: copying it would corrupt it.
    data = (header(flags=QR, an=1) + question() + b"\xc0\x0c" +
            struct.pack("!HHIH", 7, 1, 0, 2) + b"\xc0\x0c")
    with pytest.raises(MessageError, match="obsolete"):
        m.parse(data)


def test_parse_reads_the_opt_record() -> None:
    data = header(ar=1) + question() + b"\x00" + struct.pack("!HHIH", m.OPT, 4096,
                                                             (1 << 24) | 0x8000, 0)
    parsed = m.parse(data)
    assert parsed.edns == Edns(payload=4096, version=0, dnssec_ok=True, extended_rcode=1)
    assert parsed.rcode == 16  # extended rcode 1 << 4 | header rcode 0: BADVERS
    assert parsed.header == Header(0x1234, RD, 1, 0, 0, 1)


def test_tc_flag_constant() -> None:
    assert TC == dns.flags.TC
