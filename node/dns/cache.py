"""The upstreams' answers, kept for a while (pure): the cache of the cluster DNS.

Why: pods resolve with ndots:5 and the cluster search list, so a lookup of an outside name
such as `example.com` asks A and AAAA for each search suffix before the name itself. The
cluster suffixes end in the responder at once (records.py), but every host search domain
and the name itself go upstream, twice (A, AAAA): 2 upstream queries per lookup without a
host search domain, 4 with one - on every lookup, as glibc keeps nothing between calls.

What is kept, under (name in lower case, type, class):
- whole replies (not TC) with rcode NOERROR or NXDOMAIN; never SERVFAIL, REFUSED, FORMERR
  or other failures (the next query must try the upstreams again);
- positive answers for the shortest TTL of their records, at most `max_ttl`;
- negative answers (NXDOMAIN, or NODATA: NOERROR without a record of the type asked) for
  RFC 2308 §5's negative TTL, the smaller of the SOA record's TTL and its minimum field,
  at most `max_negative_ttl`; one without an SOA is not kept (RFC 2308 §5: SHOULD NOT);
- nothing whose lifetime comes out as 0 (a TTL of 0 means "use once", RFC 1035 §3.2.1;
  a TTL with the top bit set counts as 0, RFC 2181 §8).
`get` returns the reply with each record's TTL less the whole seconds it has been kept
(so a client never keeps it past the upstream's TTL) and AA cleared (a cache is not an
authority); message.relay makes it the answer to a query under the query's id, flags and
question as asked.

`cacheable_query` says which queries it serves: recursive ones (RD) without DO and CD,
what stub resolvers send. A validator's query (DO, CD) wants records or checks that a
plain answer lacks, and a non-recursive one may get a referral: those are relayed as
they come, never cached.

Bounded for a Pi: at most `max_entries` replies and `max_bytes` of their wire size, the
least recently used evicted first (an expired entry that is never asked again leaves the
same way); a reply larger than `max_bytes` is not kept.

The server puts only what it forwarded: the cluster domain is answered from records.py
before the cache is asked, so the cluster's own records (which change with every
Endpoints event) are never cached nor shadowed by cached answers.

Time is `clock()` (monotonic seconds), which tests drive.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

from .message import AA, ANY, CD, NOERROR, NXDOMAIN, RD, SOA, Message, Query, Question, Record, Soa

MAX_ENTRIES = 1000
# Wire bytes: a typical reply is 50-200 bytes, so the entry bound is what normally holds;
# this one keeps a few huge (TCP-sized) replies from taking the memory of thousands.
MAX_BYTES = 1 << 20
# Longest a positive answer is kept whatever its TTL: a name moved to another address
# reaches the pods within 5 minutes even when the upstream's TTL is a day.
MAX_TTL = 300
# A name that does not exist yet (a Service's external name being set up, a host being
# registered) should start to resolve soon: 30 s, whatever the zone's SOA says.
MAX_NEGATIVE_TTL = 30

Key = tuple[str, int, int]


def key(question: Question) -> Key:
    return (question.name.lower(), question.qtype, question.qclass)


def cacheable_query(query: Query) -> bool:
    """Whether the answer to `query` may come from (and go into) the cache."""
    flags = query.header.flags
    dnssec_ok = query.edns is not None and query.edns.dnssec_ok
    return bool(flags & RD) and not flags & CD and not dnssec_ok


def _ttl(value: int) -> int:
    return 0 if value & 0x80000000 else value  # RFC 2181 §8


def _negative(question: Question, reply: Message) -> bool:
    if reply.rcode == NXDOMAIN:
        return True
    # NODATA: no record of the type asked (a CNAME alone answers only a CNAME question).
    return not any(question.qtype in (rr.rtype, ANY) for rr in reply.answers)


def lifetime(question: Question, reply: Message, max_ttl: int = MAX_TTL,
             max_negative_ttl: int = MAX_NEGATIVE_TTL) -> int:
    """Seconds `reply` (an upstream's answer to `question`) may be served from the cache;
    0: not cached at all."""
    if reply.header.tc or reply.rcode not in (NOERROR, NXDOMAIN):
        return 0
    records = reply.answers + reply.authority + reply.additional
    shortest = min((_ttl(rr.ttl) for rr in records), default=0)
    if not _negative(question, reply):
        return min(shortest, max_ttl)
    soa = next((rr.data for rr in reply.authority
                if rr.rtype == SOA and isinstance(rr.data, Soa)), None)
    if soa is None:
        return 0
    # `shortest` includes the SOA record's own TTL (and those of a CNAME chain before it).
    return min(shortest, _ttl(soa.minimum), max_negative_ttl)


@dataclass(frozen=True)
class _Entry:
    reply: Message
    stored: float
    expires: float
    size: int


def _aged(reply: Message, seconds: int) -> Message:
    def older(records: tuple[Record, ...]) -> tuple[Record, ...]:
        return tuple(replace(rr, ttl=max(0, _ttl(rr.ttl) - seconds)) for rr in records)

    return replace(reply, header=replace(reply.header, flags=reply.header.flags & ~AA),
                   answers=older(reply.answers), authority=older(reply.authority),
                   additional=older(reply.additional))


class DNSCache:
    """Upstream replies by question, LRU-bounded (see the module doc)."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES,
                 max_ttl: int = MAX_TTL, max_negative_ttl: int = MAX_NEGATIVE_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_ttl = max_ttl
        self.max_negative_ttl = max_negative_ttl
        self._clock = clock
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()  # least recently used first
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """The wire size of the replies kept."""
        return self._bytes

    def get(self, question: Question) -> Message | None:
        """The reply kept for `question`, its TTLs counted down; None when there is none
        (or it expired)."""
        k = key(question)
        entry = self._entries.get(k)
        if entry is None:
            return None
        now = self._clock()
        if now >= entry.expires:
            self._drop(k)
            return None
        self._entries.move_to_end(k)
        return _aged(entry.reply, int(now - entry.stored))

    def put(self, question: Question, reply: Message, size: int) -> bool:
        """Keep `reply` (the upstream's answer to `question`, `size` bytes on the wire) if
        it may be kept; whether it was."""
        seconds = lifetime(question, reply, self.max_ttl, self.max_negative_ttl)
        if seconds <= 0 or size > self.max_bytes or self.max_entries <= 0:
            return False
        k = key(question)
        if k in self._entries:
            self._drop(k)
        now = self._clock()
        self._entries[k] = _Entry(reply, now, now + seconds, size)
        self._bytes += size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))
        return True

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def _drop(self, k: Key) -> None:
        self._bytes -= self._entries.pop(k).size
