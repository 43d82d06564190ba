"""DNS messages on the wire (RFC 1035, EDNS0 of RFC 6891), as far as the cluster DNS needs
them (pure).

`read_query` turns what a stub resolver sends into a Query, or says how to refuse it;
`respond` builds the answer; `parse` reads any message (upstream replies too),
`make_query` builds the queries the responder sends upstream itself, `fit` cuts a
relayed reply to the client's size, `relay` rewrites a parsed upstream reply as the
answer to another query for the same question, and `chain` keeps what in a reply answers
a name.

Names are text in master-file form without the trailing dot ("" is the root): bytes that
are not printable ASCII, and "." or "\\" inside a label, are written as \\DDD or \\. (RFC
4343 §2.1), so `encode_name(parse_name(x)) == x` for any wire name and a name text never
hides a label boundary. Case is kept as sent; callers compare in lower case.

Invariants:
- Parsing never raises anything but MessageError: out-of-range offsets, compression
  pointers that do not point strictly backwards (so they cannot loop), labels over 63
  bytes, names over 255, counts promising more than the packet holds.
- `respond` (and `fit`) stay within their limit: when the answer section does not fit, it keeps the records
  that do, sets TC (RFC 2181 §9) and drops authority and additional; a record of
  authority or additional that does not fit is just left out (TC is for the answer).
  The OPT record is always kept (RFC 6891 §7).
- Records of types the responder does not know are carried as opaque bytes; the obsolete
  types whose data hold compressible names (MD, MF, MB, MG, MR, MINFO) cannot be copied
  that way and are refused.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace

# Types (RFC 1035, 3596, 2782, 6891).
A = 1
NS = 2
CNAME = 5
SOA = 6
PTR = 12
MX = 15
TXT = 16
AAAA = 28
SRV = 33
OPT = 41
IXFR = 251
AXFR = 252
ANY = 255
# Their data hold names that may be compressed but are not decoded here (RFC 3597 §4).
_OBSOLETE_NAME_TYPES = frozenset({3, 4, 7, 8, 9, 14})

IN = 1
CLASS_ANY = 255

QUERY = 0  # opcode

NOERROR = 0
FORMERR = 1
SERVFAIL = 2
NXDOMAIN = 3
NOTIMP = 4
REFUSED = 5
BADVERS = 16  # extended (needs EDNS): 12-bit rcode, upper 8 bits in the OPT record

QR = 0x8000
AA = 0x0400
TC = 0x0200
RD = 0x0100
RA = 0x0080
CD = 0x0010

HEADER_SIZE = 12
# What plain DNS over UDP may carry (RFC 1035 §4.2.1).
MIN_UDP_PAYLOAD = 512
# The UDP size we advertise and the most we send over UDP, whatever the client offers:
# DNS flag day 2020's value, under the IPv6 minimum MTU, so answers are never fragmented.
MAX_UDP_PAYLOAD = 1232
MAX_TCP_MESSAGE = 65535
MAX_NAME_LENGTH = 255  # wire form, with the length bytes and the root
MAX_LABEL_LENGTH = 63
EDNS_VERSION = 0

_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")  # type, class, ttl, rdlength
_Q_FIXED = struct.Struct("!HH")
_SRV_FIXED = struct.Struct("!HHH")
_SOA_FIXED = struct.Struct("!IIIII")
_OPT_SIZE = 11  # root name, type, class, ttl, rdlength - without options


class MessageError(ValueError):
    """The bytes are not a DNS message we can read. `header` is set when at least the
    header could be read (the client can then be told FORMERR)."""

    def __init__(self, reason: str, header: Header | None = None) -> None:
        super().__init__(reason)
        self.header = header


@dataclass(frozen=True)
class Header:
    id: int
    flags: int
    qdcount: int = 0
    ancount: int = 0
    nscount: int = 0
    arcount: int = 0

    @property
    def qr(self) -> bool:
        return bool(self.flags & QR)

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def rcode(self) -> int:
        return self.flags & 0xF

    @property
    def tc(self) -> bool:
        return bool(self.flags & TC)


@dataclass(frozen=True)
class Question:
    name: str
    qtype: int
    qclass: int = IN

    def __str__(self) -> str:
        return f"{self.name}. {class_text(self.qclass)} {type_text(self.qtype)}"


@dataclass(frozen=True)
class Edns:
    """The OPT pseudo-record: the sender's UDP payload size, version and DO bit."""

    payload: int = MAX_UDP_PAYLOAD
    version: int = EDNS_VERSION
    dnssec_ok: bool = False
    extended_rcode: int = 0  # the upper 8 bits of a reply's rcode


# Record data, one class per type the responder writes or copies.
@dataclass(frozen=True)
class Address:
    """A (IPv4) or AAAA (IPv6) data."""

    address: str


@dataclass(frozen=True)
class Target:
    """CNAME, PTR or NS data: one name."""

    name: str


@dataclass(frozen=True)
class Mx:
    preference: int
    exchange: str


@dataclass(frozen=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True)
class Soa:
    mname: str
    rname: str
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int


@dataclass(frozen=True)
class Txt:
    strings: tuple[bytes, ...]


@dataclass(frozen=True)
class Opaque:
    """Data of any other type, copied as it came (it holds no compressed name)."""

    data: bytes


RData = Address | Target | Mx | Srv | Soa | Txt | Opaque


@dataclass(frozen=True)
class Record:
    name: str
    rtype: int
    ttl: int
    data: RData
    rclass: int = IN


@dataclass(frozen=True)
class Message:
    header: Header
    questions: tuple[Question, ...] = ()
    answers: tuple[Record, ...] = ()
    authority: tuple[Record, ...] = ()
    additional: tuple[Record, ...] = ()  # without the OPT record
    edns: Edns | None = None

    @property
    def rcode(self) -> int:
        return self.header.rcode | ((self.edns.extended_rcode << 4) if self.edns else 0)


@dataclass(frozen=True)
class Query:
    """A query the responder can answer: opcode QUERY, one question."""

    header: Header
    question: Question
    edns: Edns | None = None

    @property
    def udp_limit(self) -> int:
        """The largest answer this client takes over UDP."""
        if self.edns is None:
            return MIN_UDP_PAYLOAD
        return max(MIN_UDP_PAYLOAD, min(self.edns.payload, MAX_UDP_PAYLOAD))


class BadQuery(Exception):
    """A query the responder does not answer normally: `response` is what to send back
    (FORMERR, NOTIMP, BADVERS), None when nothing should be sent."""

    def __init__(self, reason: str, response: bytes | None) -> None:
        super().__init__(reason)
        self.response = response


# ---- names ------------------------------------------------------------------------------

_PLAIN = frozenset(range(0x21, 0x7F)) - {ord("."), ord("\\")}


def _label_text(label: bytes) -> str:
    out = []
    for b in label:
        if b in _PLAIN:
            out.append(chr(b))
        elif b in (ord("."), ord("\\")):
            out.append("\\" + chr(b))
        else:
            out.append(f"\\{b:03d}")
    return "".join(out)


def name_labels(name: str) -> list[bytes]:
    """The wire labels of a name text (escapes undone). ValueError when it is not a
    valid name."""
    if name in ("", "."):
        return []
    labels: list[bytes] = []
    current = bytearray()
    i, n = 0, len(name)
    while i < n:
        c = name[i]
        if c == "\\":
            if i + 4 <= n and all(ch in "0123456789" for ch in name[i + 1:i + 4]):
                value = int(name[i + 1:i + 4])
                if value > 255:
                    raise ValueError(f"bad escape in {name!r}")
                current.append(value)
                i += 4
                continue
            if i + 1 >= n:
                raise ValueError(f"dangling escape in {name!r}")
            current.extend(name[i + 1].encode("latin-1"))
            i += 2
            continue
        if c == ".":
            if not current:
                raise ValueError(f"empty label in {name!r}")
            labels.append(bytes(current))
            current = bytearray()
            i += 1
            continue
        try:
            current.extend(c.encode("ascii"))
        except UnicodeEncodeError:
            raise ValueError(f"not ASCII: {name!r} (IDNA names are encoded by the client)") \
                from None
        i += 1
    if current:
        labels.append(bytes(current))
    if any(len(label) > MAX_LABEL_LENGTH for label in labels):
        raise ValueError(f"label longer than {MAX_LABEL_LENGTH} bytes in {name!r}")
    if sum(len(label) + 1 for label in labels) + 1 > MAX_NAME_LENGTH:
        raise ValueError(f"name longer than {MAX_NAME_LENGTH} bytes: {name!r}")
    return labels


def encode_name(name: str) -> bytes:
    """A name's uncompressed wire form."""
    return b"".join(bytes([len(label)]) + label for label in name_labels(name)) + b"\0"


def _read_name(data: bytes, offset: int) -> tuple[str, int]:
    """The name at `offset` and the offset after it (after the first pointer, if any)."""
    labels: list[str] = []
    wire_length = 1
    end = -1
    pos = offset
    while True:
        if pos >= len(data):
            raise MessageError("name runs past the end")
        length = data[pos]
        kind = length & 0xC0
        if kind == 0xC0:
            if pos + 1 >= len(data):
                raise MessageError("compression pointer runs past the end")
            target = ((length & 0x3F) << 8) | data[pos + 1]
            # Strictly backwards, and before where this name started: a pointer can then
            # never reach itself, so no loop is possible.
            if target >= offset or target >= pos:
                raise MessageError("compression pointer does not point backwards")
            if end < 0:
                end = pos + 2
            offset = pos = target
            continue
        if kind:
            raise MessageError(f"unknown label type 0x{kind:02x}")
        if length == 0:
            return ".".join(labels), (end if end >= 0 else pos + 1)
        wire_length += length + 1
        if wire_length > MAX_NAME_LENGTH:
            raise MessageError("name longer than 255 bytes")
        if pos + 1 + length > len(data):
            raise MessageError("label runs past the end")
        labels.append(_label_text(data[pos + 1:pos + 1 + length]))
        pos += 1 + length


def parse_name(wire: bytes) -> str:
    """An uncompressed wire name as text."""
    name, end = _read_name(wire, 0)
    if end != len(wire):
        raise MessageError("bytes after the name")
    return name


def same_name(a: str, b: str) -> bool:
    # Escapes are digits or punctuation, so lower() changes only real ASCII letters
    # (RFC 4343: DNS compares ASCII case-insensitively and nothing else).
    return a.lower() == b.lower()


# ---- parsing ----------------------------------------------------------------------------

def _read_header(data: bytes) -> Header:
    if len(data) < HEADER_SIZE:
        raise MessageError(f"shorter than a header ({len(data)} bytes)")
    return Header(*_HEADER.unpack_from(data))


def _read_rdata(data: bytes, rtype: int, start: int, end: int) -> RData:
    def name_at(pos: int) -> tuple[str, int]:
        name, after = _read_name(data, pos)
        if after > end:
            raise MessageError("name runs past its record")
        return name, after

    def finish(value: RData, pos: int) -> RData:
        if pos != end:
            raise MessageError(f"record data of type {rtype} has the wrong length")
        return value

    if rtype == A and end - start == 4:
        return Address(str(ipaddress.IPv4Address(data[start:end])))
    if rtype == AAAA and end - start == 16:
        return Address(str(ipaddress.IPv6Address(data[start:end])))
    if rtype in (A, AAAA):
        raise MessageError(f"address of type {rtype} has the wrong length")
    if rtype in (CNAME, PTR, NS):
        name, pos = name_at(start)
        return finish(Target(name), pos)
    if rtype == MX:
        if end - start < 3:
            raise MessageError("short MX")
        name, pos = name_at(start + 2)
        return finish(Mx(struct.unpack_from("!H", data, start)[0], name), pos)
    if rtype == SRV:
        if end - start < _SRV_FIXED.size + 1:
            raise MessageError("short SRV")
        priority, weight, port = _SRV_FIXED.unpack_from(data, start)
        name, pos = name_at(start + _SRV_FIXED.size)
        return finish(Srv(priority, weight, port, name), pos)
    if rtype == SOA:
        mname, pos = name_at(start)
        rname, pos = name_at(pos)
        if end - pos != _SOA_FIXED.size:
            raise MessageError("SOA has the wrong length")
        return Soa(mname, rname, *_SOA_FIXED.unpack_from(data, pos))
    if rtype == TXT:
        strings, pos = [], start
        while pos < end:
            length = data[pos]
            if pos + 1 + length > end:
                raise MessageError("TXT string runs past its record")
            strings.append(data[pos + 1:pos + 1 + length])
            pos += 1 + length
        return Txt(tuple(strings))
    if rtype in _OBSOLETE_NAME_TYPES:
        raise MessageError(f"obsolete record type {rtype}")
    return Opaque(data[start:end])


def parse(data: bytes) -> Message:
    """Read a whole message (query or reply). MessageError if it is malformed."""
    header = _read_header(data)
    try:
        pos = HEADER_SIZE
        questions = []
        for _ in range(header.qdcount):
            name, pos = _read_name(data, pos)
            if pos + _Q_FIXED.size > len(data):
                raise MessageError("question runs past the end")
            qtype, qclass = _Q_FIXED.unpack_from(data, pos)
            pos += _Q_FIXED.size
            questions.append(Question(name, qtype, qclass))
        sections: list[list[Record]] = [[], [], []]
        edns: Edns | None = None
        counts = (header.ancount, header.nscount, header.arcount)
        for index, count in enumerate(counts):
            for _ in range(count):
                name, pos = _read_name(data, pos)
                if pos + _RR_FIXED.size > len(data):
                    raise MessageError("record runs past the end")
                rtype, rclass, ttl, rdlength = _RR_FIXED.unpack_from(data, pos)
                pos += _RR_FIXED.size
                end = pos + rdlength
                if end > len(data):
                    raise MessageError("record data run past the end")
                if rtype == OPT:
                    if index != 2 or edns is not None or name:
                        raise MessageError("misplaced or repeated OPT record")
                    edns = Edns(payload=rclass, version=(ttl >> 16) & 0xFF,
                                dnssec_ok=bool(ttl & 0x8000), extended_rcode=ttl >> 24)
                else:
                    rdata = _read_rdata(data, rtype, pos, end)
                    sections[index].append(Record(name, rtype, ttl, rdata, rclass))
                pos = end
        # Trailing bytes after the counted records are ignored, as resolvers do.
    except MessageError as err:
        raise MessageError(str(err), header) from None
    except (ValueError, IndexError, struct.error) as err:  # belt and braces: never escape
        raise MessageError(f"malformed: {err}", header) from None
    return Message(header, tuple(questions), tuple(sections[0]), tuple(sections[1]),
                   tuple(sections[2]), edns)


def read_query(data: bytes) -> Query:
    """A query to answer, or BadQuery saying what to send back instead (maybe nothing)."""
    try:
        header = _read_header(data)
    except MessageError as err:
        raise BadQuery(str(err), None) from None
    if header.qr:
        # A response sent to us: answering it could start a loop between two servers.
        raise BadQuery("a response, not a query", None)
    try:
        message = parse(data)
    except MessageError as err:
        raise BadQuery(str(err), error_response(header, FORMERR)) from None
    edns = message.edns
    if header.opcode != QUERY:
        raise BadQuery(f"opcode {header.opcode}", error_response(header, NOTIMP, edns))
    if edns is not None and edns.version > EDNS_VERSION:
        raise BadQuery(f"EDNS version {edns.version}",
                       error_response(header, BADVERS, edns, message.questions[:1]))
    if len(message.questions) != 1:
        raise BadQuery(f"{len(message.questions)} questions",
                       error_response(header, FORMERR, edns))
    return Query(header, message.questions[0], edns)


# ---- writing ----------------------------------------------------------------------------

class _Writer:
    """A message being written, with name compression and rollback."""

    def __init__(self) -> None:
        self.buf = bytearray(HEADER_SIZE)
        # Suffix (labels, exact case, so compression never changes a name's case) ->
        # where it was written. Only offsets a pointer can hold (< 0x4000).
        self._offsets: dict[tuple[bytes, ...], int] = {}
        self._added: list[tuple[bytes, ...]] = []

    def mark(self) -> tuple[int, int]:
        return len(self.buf), len(self._added)

    def rollback(self, mark: tuple[int, int]) -> None:
        size, added = mark
        del self.buf[size:]
        while len(self._added) > added:
            del self._offsets[self._added.pop()]

    def name(self, name: str, compress: bool = True) -> None:
        labels = name_labels(name)
        for i in range(len(labels)):
            suffix = tuple(labels[i:])
            if compress and suffix in self._offsets:
                self.buf += struct.pack("!H", 0xC000 | self._offsets[suffix])
                return
            if len(self.buf) < 0x4000 and suffix not in self._offsets:
                self._offsets[suffix] = len(self.buf)
                self._added.append(suffix)
            self.buf.append(len(labels[i]))
            self.buf += labels[i]
        self.buf.append(0)

    def question(self, q: Question) -> None:
        self.name(q.name)
        self.buf += _Q_FIXED.pack(q.qtype, q.qclass)

    def record(self, rr: Record) -> None:
        self.name(rr.name)
        self.buf += _RR_FIXED.pack(rr.rtype, rr.rclass, rr.ttl, 0)
        start = len(self.buf)
        data = rr.data
        if isinstance(data, Address):
            self.buf += ipaddress.ip_address(data.address).packed
        elif isinstance(data, Target):
            self.name(data.name)
        elif isinstance(data, Mx):
            self.buf += struct.pack("!H", data.preference)
            self.name(data.exchange)
        elif isinstance(data, Srv):
            self.buf += _SRV_FIXED.pack(data.priority, data.weight, data.port)
            self.name(data.target, compress=False)  # RFC 2782: target not compressed
        elif isinstance(data, Soa):
            self.name(data.mname)
            self.name(data.rname)
            self.buf += _SOA_FIXED.pack(data.serial, data.refresh, data.retry, data.expire,
                                        data.minimum)
        elif isinstance(data, Txt):
            for s in data.strings:
                self.buf += bytes([len(s)]) + s
        else:
            self.buf += data.data
        struct.pack_into("!H", self.buf, start - 2, len(self.buf) - start)

    def opt(self, edns: Edns, rcode: int) -> None:
        ttl = ((rcode >> 4) << 24) | (edns.version << 16) | (0x8000 if edns.dnssec_ok else 0)
        self.buf += b"\0" + _RR_FIXED.pack(OPT, edns.payload, ttl, 0)


def _write(header_id: int, flags: int, questions: Sequence[Question],
           sections: Sequence[Sequence[Record]], edns: Edns | None, rcode: int,
           limit: int, truncated: bool = False) -> bytes:
    w = _Writer()
    for q in questions:
        w.question(q)
    room = limit - (_OPT_SIZE if edns is not None else 0)
    counts = [0, 0, 0]
    for index, records in enumerate(sections):
        if truncated:
            break
        for rr in records:
            mark = w.mark()
            w.record(rr)
            if len(w.buf) > room:
                w.rollback(mark)
                if index == 0:
                    truncated = True
                break
            counts[index] += 1
    arcount = counts[2]
    if edns is not None:
        w.opt(edns, rcode)
        arcount += 1
    flags = (flags & ~(TC | 0xF)) | (TC if truncated else 0) | (rcode & 0xF)
    _HEADER.pack_into(w.buf, 0, header_id, flags, len(questions), counts[0], counts[1],
                      arcount)
    return bytes(w.buf)


def _reply_flags(header: Header, *, aa: bool = False, ra: bool = False) -> int:
    # Opcode, RD and CD are copied from the query (RFC 1035 §4.1.1, RFC 4035 §3.1.6).
    return (QR | (header.flags & (0x7800 | RD | CD)) | (AA if aa else 0) | (RA if ra else 0))


def error_response(header: Header, rcode: int, edns: Edns | None = None,
                   questions: Sequence[Question] = ()) -> bytes:
    """A reply carrying only an rcode (and the question when it could be read)."""
    reply_edns = Edns() if edns is not None or rcode > 0xF else None
    return _write(header.id, _reply_flags(header), questions, (), reply_edns, rcode,
                  MAX_TCP_MESSAGE)


@dataclass(frozen=True)
class Answer:
    """What to answer a question with (records.py fills it in)."""

    rcode: int = NOERROR
    answers: tuple[Record, ...] = ()
    authority: tuple[Record, ...] = ()
    additional: tuple[Record, ...] = ()
    authoritative: bool = True
    # A CNAME target outside the cluster domain that the server should resolve upstream
    # and append (with the rcode found there); None when nothing is left to chase.
    chase: Question | None = None


def respond(query: Query, answer: Answer, *, recursion: bool, limit: int,
            truncated: bool = False) -> bytes:
    """The reply to `query`, at most `limit` bytes (truncated as the module says).
    `truncated`: the answer is known to be incomplete - the question alone and TC, so the
    client asks again over TCP."""
    # RFC 3225 §3: the DO bit is copied back (no DNSSEC records are added here).
    edns = Edns(dnssec_ok=query.edns.dnssec_ok) if query.edns is not None else None
    rcode = answer.rcode if edns is not None or answer.rcode <= 0xF else SERVFAIL
    flags = _reply_flags(query.header, aa=answer.authoritative, ra=recursion)
    return _write(query.header.id, flags, (query.question,),
                  (answer.answers, answer.authority, answer.additional), edns, rcode, limit,
                  truncated=truncated)


def relay(query: Query, reply: Message, *, recursion: bool, limit: int) -> bytes:
    """An upstream's reply (fresh, or from the cache, or fetched for another client's
    identical query) as the answer to `query`, at most `limit` bytes: under the query's
    id and flags, with its question as it was asked - case too, as a client using 0x20
    (draft-vixie-dnsext-dns0x20) checks - and the answers owned by that name in that case.
    EDNS is the responder's own (as in respond); rcode and sections are the reply's; a
    truncated reply stays truncated."""
    name = query.question.name
    answers = tuple(replace(rr, name=name) if same_name(rr.name, name) else rr
                    for rr in reply.answers)
    answer = Answer(rcode=reply.rcode, answers=answers, authority=reply.authority,
                    additional=reply.additional, authoritative=bool(reply.header.flags & AA))
    return respond(query, answer, recursion=recursion, limit=limit, truncated=reply.header.tc)


def respond_error(query: Query, rcode: int, *, recursion: bool) -> bytes:
    """SERVFAIL, REFUSED and such for a readable query: the question echoed, no records."""
    return respond(query, Answer(rcode=rcode, authoritative=False), recursion=recursion,
                   limit=MAX_TCP_MESSAGE)


def fit(reply: bytes, limit: int) -> bytes:
    """A relayed reply within `limit` bytes: itself when it fits, else rewritten as
    respond() would cut it (the answers that fit, TC). One that cannot be read is cut
    to its header and TC, so the client asks again over TCP."""
    if len(reply) <= limit:
        return reply
    header = _read_header(reply)
    try:
        message = parse(reply)
    except MessageError:
        return _write(header.id, header.flags, (), (), None, header.rcode, limit,
                      truncated=True)
    edns = message.edns
    if edns is not None:  # our own sizes, the upstream's DO bit
        edns = Edns(dnssec_ok=edns.dnssec_ok)
    sections = (message.answers, message.authority, message.additional)
    out = _write(header.id, header.flags, message.questions, sections, edns, message.rcode,
                 limit)
    return out if len(out) <= limit else _write(header.id, header.flags, (), (), None,
                                                header.rcode, limit, truncated=True)


def chain(records: Sequence[Record], name: str) -> tuple[Record, ...]:
    """The records that answer for `name`: those owned by it or by a CNAME target
    reached from it, in order. What an upstream adds about other names (a poisoning
    attempt, or just noise) is left out, as a stub resolver would leave it."""
    names = {name.lower()}
    kept = []
    for rr in records:
        if rr.name.lower() not in names:
            continue
        kept.append(rr)
        if rr.rtype == CNAME and isinstance(rr.data, Target):
            names.add(rr.data.name.lower())
    return tuple(kept)


def make_query(question: Question, query_id: int, *, edns: Edns | None = Edns()) -> bytes:
    """A recursive query (RD) for one question, as the responder sends upstream."""
    return _write(query_id, RD, (question,), (), edns, NOERROR, MAX_TCP_MESSAGE)


# ---- relaying ---------------------------------------------------------------------------

def message_id(data: bytes) -> int:
    return struct.unpack_from("!H", data)[0]


def with_id(data: bytes, message_id: int) -> bytes:
    """The same message under another id (a forwarded query, a relayed reply)."""
    return struct.pack("!H", message_id) + data[2:]


def is_reply_to(reply: Message, query_id: int, question: Question) -> bool:
    """Whether `reply` answers our query (id and question: a spoofed or stale datagram on
    the same port does not)."""
    if not reply.header.qr or reply.header.id != query_id or len(reply.questions) != 1:
        return False
    q = reply.questions[0]
    return q.qtype == question.qtype and q.qclass == question.qclass and same_name(
        q.name, question.name)


def is_truncated(data: bytes) -> bool:
    return len(data) >= HEADER_SIZE and bool(struct.unpack_from("!H", data, 2)[0] & TC)


# ---- text, for logs ---------------------------------------------------------------------

_TYPE_NAMES = {A: "A", NS: "NS", CNAME: "CNAME", SOA: "SOA", PTR: "PTR", MX: "MX", TXT: "TXT",
               AAAA: "AAAA", SRV: "SRV", OPT: "OPT", IXFR: "IXFR", AXFR: "AXFR", ANY: "ANY",
               65: "HTTPS", 64: "SVCB"}
_RCODE_NAMES = {NOERROR: "NOERROR", FORMERR: "FORMERR", SERVFAIL: "SERVFAIL",
                NXDOMAIN: "NXDOMAIN", NOTIMP: "NOTIMP", REFUSED: "REFUSED", BADVERS: "BADVERS"}


def type_text(rtype: int) -> str:
    return _TYPE_NAMES.get(rtype, f"TYPE{rtype}")  # RFC 3597 §5


def class_text(rclass: int) -> str:
    return {IN: "IN", CLASS_ANY: "ANY"}.get(rclass, f"CLASS{rclass}")


def rcode_text(rcode: int) -> str:
    return _RCODE_NAMES.get(rcode, f"RCODE{rcode}")

