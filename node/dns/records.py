"""The cluster domain's records, from Services and Endpoints (pure).

What pods find under the cluster domain (the Kubernetes DNS schema 1.1.0,
kubernetes/dns docs/specification.md), `<base>` being `<service>.<ns>.svc.<domain>`:
- a ClusterIP Service: `<base>` A/AAAA -> spec.clusterIPs of that family;
  `_<port>._<proto>.<base>` SRV -> `<base>` at the port, for each named port; a PTR
  for each ClusterIP -> `<base>`.
- a headless Service (clusterIP "None"): `<base>` A/AAAA -> its ready endpoint addresses
  (`addresses`, never `notReadyAddresses`); `<host>.<base>` A/AAAA -> that endpoint,
  `<host>` being the address's `hostname`, else its IP with "-" for "." and ":" (as
  CoreDNS does, so every SRV target resolves); SRV per named endpoint port and endpoint
  -> `<host>.<base>`; a PTR for each endpoint that has a hostname.
- an ExternalName Service: `<base>` CNAME -> spec.externalName.
- `<a>-<b>-<c>-<d>.<ns>.pod.<domain>` A -> that address (the deprecated pod records
  CoreDNS serves as `pods insecure`, which some software still builds names for).
- `<domain>` SOA, `dns-version.<domain>` TXT "1.1.0".

Answers (`ClusterRecords.lookup`):
- a name under the domain that does not exist -> NXDOMAIN with the SOA, authoritative:
  never forwarded, so the search-list misses of every lookup (`web.default.default.svc..`,
  `example.org.default.svc...`) end here at once. A name that exists (also as an empty
  non-terminal such as `default.svc.<domain>`, RFC 8020) without records of the type
  asked -> NOERROR, no answers, the SOA (NODATA).
- a CNAME is followed inside the domain; a target outside is returned as `chase` for the
  server to resolve upstream (stub resolvers do not follow CNAMEs themselves).
- names outside the domain -> None (forward), and so are reverse names that are not a
  ClusterIP or a named endpoint (the host's upstream may know LAN addresses).
- case-insensitive; the answer's owner name is the question's, in the question's case.

Invariants: the index is built whole from the objects of the last `update` and swapped
in, so a lookup sees either the old or the new objects, never a mix; lookups are dict
hits. The build is lazy, on the first lookup after an update: the agent calls `update`
on every watch event and a build costs milliseconds per hundred Services (more on a
Pi), so a burst of events (an agent starting, a Deployment rolling) costs one build, not
one per event. Objects with names that cannot be DNS labels, or bad addresses, are
skipped, never raised.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bramble.kube.names import is_dns1123_label
from bramble.node.proxy.rules import cluster_ips

from .message import (
    AAAA,
    ANY,
    AXFR,
    CLASS_ANY,
    CNAME,
    IN,
    IXFR,
    NOERROR,
    NXDOMAIN,
    PTR,
    REFUSED,
    SERVFAIL,
    SOA,
    SRV,
    TXT,
    A,
    Address,
    Answer,
    Question,
    Record,
    Soa,
    Srv,
    Target,
    Txt,
    name_labels,
)

Obj = Mapping[str, Any]

DEFAULT_DOMAIN = "cluster.local"
# Short on purpose: pods (and language runtimes that cache, such as the JVM) should see a
# Service created, deleted or re-created, or a headless Service's pods replaced, within
# seconds; the responder answers from a dict on the same node, so asking often is cheap.
# CoreDNS's default is 30 s (kube-dns' was 30 s too).
TTL = 5
SCHEMA_VERSION = "1.1.0"
# SOA timers (refresh, retry, expire): no secondaries ever transfer this zone, so only
# sane values matter; the minimum (negative-caching TTL, RFC 2308) is the TTL.
SOA_TIMERS = (7200, 1800, 86400)
SRV_PRIORITY = 0
SRV_WEIGHT = 100  # all equal: equal shares (RFC 2782)
# Longest chain of CNAMEs followed inside the domain (ExternalName Services naming each
# other); a longer one is a loop.
MAX_CHAIN = 8
PROTOCOLS = ("TCP", "UDP", "SCTP")
_REVERSE_ZONES = ("in-addr.arpa", "ip6.arpa")


def _ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _label(value: Any) -> str | None:
    return value if isinstance(value, str) and value and not is_dns1123_label(value) else None


def _dicts(value: Any) -> list[Obj]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _mapping(obj: Obj, key: str) -> Obj:
    value = obj.get(key)
    return value if isinstance(value, Mapping) else {}


def _port(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536:
        return value
    return None


def _srv_ports(ports: Any, base: str) -> list[tuple[str, int]]:
    """(SRV owner `_<name>._<proto>.<base>`, number) for each named port of a known
    protocol; unnamed or invalid ports have no SRV record."""
    out = []
    for port in _dicts(ports):
        port_name, number = _label(port.get("name")), _port(port.get("port"))
        protocol = port.get("protocol") or "TCP"
        if port_name and number and protocol in PROTOCOLS:
            out.append((f"_{port_name}._{protocol.lower()}.{base}", number))
    return out


def dashed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """An address as one DNS label: 10.42.0.5 -> 10-42-0-5, fd00::5 -> fd00--5."""
    return str(ip).replace(".", "-").replace(":", "-")


def _address_record(name: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Record:
    return Record(name, A if ip.version == 4 else AAAA, TTL, Address(str(ip)))


def _sort_key(rr: Record) -> tuple:
    data = rr.data
    if isinstance(data, Address):
        ip = ipaddress.ip_address(data.address)
        return (rr.rtype, ip.version, int(ip), "")
    if isinstance(data, Srv):
        return (rr.rtype, data.priority, data.port, data.target)
    return (rr.rtype, 0, 0, repr(data))


@dataclass(frozen=True)
class Zone:
    """One consistent index: what `update` builds and `lookup` reads."""

    domain: str = DEFAULT_DOMAIN
    rrsets: Mapping[str, Mapping[int, tuple[Record, ...]]] = field(default_factory=dict)
    # Every name that exists under the domain, empty non-terminals included.
    names: frozenset[str] = frozenset()
    # Reverse names (in-addr.arpa, ip6.arpa) we answer for.
    reverse: Mapping[str, tuple[Record, ...]] = field(default_factory=dict)
    soa: Record | None = None


class _Builder:
    def __init__(self, domain: str) -> None:
        self.domain = domain
        self.rrsets: dict[str, dict[int, dict[Record, None]]] = {}
        self.reverse: dict[str, dict[Record, None]] = {}

    def add(self, rr: Record) -> None:
        self.rrsets.setdefault(rr.name, {}).setdefault(rr.rtype, {})[rr] = None

    def ptr(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address, target: str) -> None:
        name = ip.reverse_pointer
        self.reverse.setdefault(name, {})[Record(name, PTR, TTL, Target(target))] = None

    def service(self, service: Obj, endpoints: Obj | None) -> None:
        meta, spec = _mapping(service, "metadata"), _mapping(service, "spec")
        name, ns = _label(meta.get("name")), _label(meta.get("namespace") or "default")
        if name is None or ns is None:
            return
        base = f"{name}.{ns}.svc.{self.domain}"
        # The Service's own name exists whatever it holds (a headless Service without
        # ready endpoints answers NODATA, not NXDOMAIN: the spec says so).
        self.rrsets.setdefault(base, {})
        if spec.get("type") == "ExternalName":
            target = spec.get("externalName")
            if isinstance(target, str) and target.strip("."):
                target = target.rstrip(".").lower()
                try:
                    name_labels(target)
                except ValueError:
                    return
                self.add(Record(base, CNAME, TTL, Target(target)))
            return
        if spec.get("clusterIP") == "None":
            self._headless(base, endpoints)
            return
        for raw in cluster_ips(service):
            ip = ipaddress.ip_address(raw)
            self.add(_address_record(base, ip))
            self.ptr(ip, base)
        for owner, number in _srv_ports(spec.get("ports"), base):
            self.add(Record(owner, SRV, TTL, Srv(SRV_PRIORITY, SRV_WEIGHT, number, base)))

    def _headless(self, base: str, endpoints: Obj | None) -> None:
        for subset in _dicts((endpoints or {}).get("subsets")):
            ports = _srv_ports(subset.get("ports"), base)
            for address in _dicts(subset.get("addresses")):
                ip = _ip(address.get("ip"))
                if ip is None:
                    continue
                hostname = _label(address.get("hostname"))
                host = f"{hostname or dashed(ip)}.{base}"
                self.add(_address_record(base, ip))
                self.add(_address_record(host, ip))
                for owner, number in ports:
                    self.add(Record(owner, SRV, TTL, Srv(SRV_PRIORITY, SRV_WEIGHT, number, host)))
                if hostname:
                    self.ptr(ip, host)

    def zone(self, serial: int) -> Zone:
        domain = self.domain
        soa = Record(domain, SOA, TTL, Soa(f"ns.dns.{domain}", f"hostmaster.{domain}",
                                           serial, *SOA_TIMERS, TTL))
        self.add(soa)
        self.add(Record(f"dns-version.{domain}", TXT, TTL, Txt((SCHEMA_VERSION.encode(),))))
        names = {domain, f"svc.{domain}", f"pod.{domain}"}
        for owner in self.rrsets:
            # The owner and each of its ancestors down to the domain.
            while owner not in names:
                names.add(owner)
                owner = owner.split(".", 1)[1]
        rrsets = {owner: {rtype: tuple(sorted(rrs, key=_sort_key)) for rtype, rrs in by.items()}
                  for owner, by in self.rrsets.items()}
        reverse = {owner: tuple(sorted(rrs, key=_sort_key)) for owner, rrs in self.reverse.items()}
        return Zone(domain, rrsets, frozenset(names), reverse, soa)


def build_zone(services: Iterable[Obj], endpoints: Iterable[Obj],
               domain: str = DEFAULT_DOMAIN, serial: int = 1) -> Zone:
    """The index of every record these Services and Endpoints give."""
    by_name: dict[tuple[str, str], Obj] = {}
    for ep in endpoints:
        meta = _mapping(ep, "metadata")
        by_name[(str(meta.get("namespace") or "default"), str(meta.get("name") or ""))] = ep
    builder = _Builder(domain)
    for service in services:
        meta = _mapping(service, "metadata")
        key = (str(meta.get("namespace") or "default"), str(meta.get("name") or ""))
        builder.service(service, by_name.get(key))
    return builder.zone(serial)


def normalize_domain(domain: str) -> str:
    domain = domain.strip().rstrip(".").lower()
    labels = name_labels(domain)  # ValueError for a name that is not one
    if not labels:
        raise ValueError("the cluster domain cannot be the root")
    return domain


class ClusterRecords:
    """The answers for the cluster domain; `update` with the complete current objects."""

    def __init__(self, domain: str = DEFAULT_DOMAIN) -> None:
        self.domain = normalize_domain(domain)
        self._serial = 1
        self._zone = build_zone((), (), self.domain, self._serial)
        self._pending: tuple[list[Obj], list[Obj]] | None = None

    @property
    def zone(self) -> Zone:
        if self._pending is not None:
            services, endpoints = self._pending
            self._pending = None
            # The SOA serial changes with every new index, as a zone's serial should
            # (wrapping as RFC 1982 allows, should an agent run that long).
            self._serial = self._serial % 0xFFFFFFFF + 1
            self._zone = build_zone(services, endpoints, self.domain, self._serial)
        return self._zone

    def update(self, services: Iterable[Obj], endpoints: Iterable[Obj]) -> None:
        """Answer from these objects (the complete current sets) from now on."""
        self._pending = (list(services), list(endpoints))

    def in_domain(self, name: str) -> bool:
        """Whether a lower-case name is the cluster domain or under it."""
        return name == self.domain or name.endswith("." + self.domain)

    def lookup(self, question: Question, rotate: int = 0) -> Answer | None:
        """The answer to `question`, or None when it is not ours (forward it).

        `rotate` turns the order of multi-address answers (the server passes a counter),
        so clients that take the first address spread over a headless Service's pods."""
        zone = self.zone
        name = question.name.lower()
        if name.endswith(_REVERSE_ZONES) and not self.in_domain(name):
            records = zone.reverse.get(name)
            if records is None or question.qtype not in (PTR, ANY) or question.qclass != IN:
                return None
            return Answer(answers=tuple(replace(rr, name=question.name) for rr in records))
        if not self.in_domain(name):
            return None
        if question.qclass not in (IN, CLASS_ANY) or question.qtype in (AXFR, IXFR):
            # Not IN data, or a zone transfer: nothing we serve.
            return Answer(rcode=REFUSED, authoritative=False)
        return self._resolve(zone, question, rotate)

    def _resolve(self, zone: Zone, question: Question, rotate: int) -> Answer:
        assert zone.soa is not None
        qtype = question.qtype
        owner, current = question.name, question.name.lower()
        chain: list[Record] = []
        for _ in range(MAX_CHAIN):
            rrsets = zone.rrsets.get(current)
            if rrsets is None:
                rrsets = self._pod(current)
            if rrsets is None:
                # RFC 6604: after a CNAME, the rcode is about the last name.
                rcode = NOERROR if current in zone.names else NXDOMAIN
                return Answer(rcode=rcode, answers=tuple(chain), authority=(zone.soa,))
            cname = rrsets.get(CNAME)
            if cname and qtype not in (CNAME, ANY):
                rr = replace(cname[0], name=owner)
                chain.append(rr)
                assert isinstance(rr.data, Target)
                owner = current = rr.data.name
                if not self.in_domain(current):
                    return Answer(answers=tuple(chain),
                                  chase=Question(current, qtype, IN))
                continue
            if qtype == ANY:
                found = [rr for rrs in rrsets.values() for rr in rrs]
            else:
                found = list(rrsets.get(qtype, ()))
            if not found:
                return Answer(answers=tuple(chain), authority=(zone.soa,))
            if len(found) > 1 and rotate and qtype != ANY:
                cut = rotate % len(found)
                found = found[cut:] + found[:cut]
            answers = chain + [replace(rr, name=owner) for rr in found]
            return Answer(answers=tuple(answers), additional=self._additional(zone, found))
        return Answer(rcode=SERVFAIL, authoritative=False)  # a CNAME loop

    def _additional(self, zone: Zone, found: list[Record]) -> tuple[Record, ...]:
        """The addresses of SRV targets (the spec allows them; clients save a query)."""
        extra: dict[Record, None] = {}
        for rr in found:
            if isinstance(rr.data, Srv):
                rrsets = zone.rrsets.get(rr.data.target, {})
                for rtype in (A, AAAA):
                    for address in rrsets.get(rtype, ()):
                        extra[address] = None
        return tuple(extra)

    def _pod(self, name: str) -> Mapping[int, tuple[Record, ...]] | None:
        """`<dashed-ip>.<ns>.pod.<domain>` records, made up from the name itself;
        `<ns>.pod.<domain>` exists (empty) for any namespace."""
        suffix = f".pod.{self.domain}"
        if not name.endswith(suffix):
            return None
        labels = name[: -len(suffix)].split(".")
        if len(labels) == 1 and _label(labels[0]):
            return {}
        if len(labels) != 2 or not _label(labels[1]):
            return None
        raw = labels[0]
        # "fd00--5" -> "fd00::5"; an IPv4 form has no ":" and exactly four parts.
        ip = _ip(raw.replace("-", ".")) if raw.count("-") == 3 else None
        if ip is None:
            ip = _ip(raw.replace("-", ":"))
        if ip is None:
            return None
        rr = _address_record(name, ip)
        return {rr.rtype: (rr,)}
