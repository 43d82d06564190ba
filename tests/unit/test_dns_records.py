"""ClusterRecords: Services + Endpoints -> the cluster domain's answers (Kubernetes DNS
schema 1.1.0), NXDOMAIN vs NODATA, what is forwarded, case, CNAMEs, updates."""

from __future__ import annotations

import pytest

from bramble.node.dns import message as m
from bramble.node.dns.message import Question
from bramble.node.dns.records import TTL, ClusterRecords, build_zone, dashed

D = "cluster.local"


def svc(name: str, *, ns: str = "default", ips: list[str] | None = None,
        ports: list[dict] | None = None, **spec) -> dict:
    body: dict = {"metadata": {"name": name, "namespace": ns}, "spec": {"ports": ports or [], **spec}}
    if ips is not None:
        body["spec"]["clusterIP"] = ips[0] if ips else ""
        body["spec"]["clusterIPs"] = ips
    return body


def headless(name: str, ns: str = "default", ports: list[dict] | None = None) -> dict:
    return svc(name, ns=ns, ports=ports, clusterIP="None")


def eps(name: str, subsets: list[dict], ns: str = "default") -> dict:
    return {"metadata": {"name": name, "namespace": ns}, "subsets": subsets}


SERVICES = [
    svc("web", ips=["10.43.0.10"], ports=[{"name": "http", "port": 80},
                                          {"name": "dns", "port": 53, "protocol": "UDP"}]),
    svc("dual", ips=["10.43.0.11", "fd00:43::11"], ports=[{"port": 80}]),  # unnamed port
    svc("v6", ips=["fd00:43::12"]),
    svc("pending", ips=[]),  # no ClusterIP allocated yet
    headless("db", ports=[{"name": "pg", "port": 5432}]),
    headless("empty"),  # no ready endpoints
    svc("ext", type="ExternalName", externalName="Example.ORG."),
    svc("alias", type="ExternalName", externalName="web.default.svc.cluster.local"),
    svc("loop-a", type="ExternalName", externalName="loop-b.default.svc.cluster.local"),
    svc("loop-b", type="ExternalName", externalName="loop-a.default.svc.cluster.local"),
    svc("gone", type="ExternalName", externalName="nothing.default.svc.cluster.local"),
    svc("api", ns="kube-system", ips=["10.43.0.1"], ports=[{"name": "https", "port": 443}]),
    # Skipped, not raised: a name that cannot be a DNS label, a bad address.
    svc("Bad_Name", ips=["10.43.0.66"]),
    svc("badip", ips=["10.43.0.999"]),
]
ENDPOINTS = [
    eps("db", [{"addresses": [{"ip": "10.42.1.6"}, {"ip": "10.42.0.5", "hostname": "db-0"}],
                "notReadyAddresses": [{"ip": "10.42.2.7", "hostname": "db-2"}],
                "ports": [{"name": "pg", "port": 5432}]},
               {"addresses": [{"ip": "fd00:42::8", "hostname": "db-1"}],
                "ports": [{"name": "pg", "port": 5432}]}]),
    eps("web", [{"addresses": [{"ip": "10.42.0.20", "hostname": "w"}],
                 "ports": [{"name": "http", "port": 8080}]}]),
]


@pytest.fixture(scope="module")
def records() -> ClusterRecords:
    r = ClusterRecords()
    r.update(SERVICES, ENDPOINTS)
    return r


def text(rr: m.Record) -> str:
    data = rr.data
    if isinstance(data, m.Address):
        value = data.address
    elif isinstance(data, m.Target):
        value = data.name
    elif isinstance(data, m.Srv):
        value = f"{data.priority} {data.weight} {data.port} {data.target}"
    elif isinstance(data, m.Txt):
        value = " ".join(s.decode() for s in data.strings)
    elif isinstance(data, m.Soa):
        value = f"{data.mname} {data.rname}"
    else:
        value = repr(data)
    return f"{rr.name} {m.type_text(rr.rtype)} {value}"


NX, NODATA, OK = "NXDOMAIN", "NODATA", "NOERROR"

CASES = [
    # (question name, type, outcome, answers as "owner TYPE data")
    # -- a ClusterIP Service
    ("web.default.svc.cluster.local", m.A, OK, ["web.default.svc.cluster.local A 10.43.0.10"]),
    ("web.default.svc.cluster.local", m.AAAA, NODATA, []),  # IPv4 only
    ("WEB.Default.SVC.cluster.local", m.A, OK, ["WEB.Default.SVC.cluster.local A 10.43.0.10"]),
    ("web.default.svc.cluster.local", m.MX, NODATA, []),
    ("_http._tcp.web.default.svc.cluster.local", m.SRV, OK,
     ["_http._tcp.web.default.svc.cluster.local SRV 0 100 80 web.default.svc.cluster.local"]),
    ("_dns._udp.web.default.svc.cluster.local", m.SRV, OK,
     ["_dns._udp.web.default.svc.cluster.local SRV 0 100 53 web.default.svc.cluster.local"]),
    ("_dns._tcp.web.default.svc.cluster.local", m.SRV, NX, []),  # that port is UDP
    # An empty non-terminal: a name below it exists (RFC 8020: not NXDOMAIN).
    ("_tcp.web.default.svc.cluster.local", m.SRV, NODATA, []),
    # Endpoint hostnames are for headless Services only.
    ("w.web.default.svc.cluster.local", m.A, NX, []),
    # -- dual stack, single IPv6, not allocated yet
    ("dual.default.svc.cluster.local", m.A, OK, ["dual.default.svc.cluster.local A 10.43.0.11"]),
    ("dual.default.svc.cluster.local", m.AAAA, OK,
     ["dual.default.svc.cluster.local AAAA fd00:43::11"]),
    ("_http._tcp.dual.default.svc.cluster.local", m.SRV, NX, []),  # unnamed: no SRV
    ("v6.default.svc.cluster.local", m.AAAA, OK, ["v6.default.svc.cluster.local AAAA fd00:43::12"]),
    ("v6.default.svc.cluster.local", m.A, NODATA, []),
    ("pending.default.svc.cluster.local", m.A, NODATA, []),
    # -- a headless Service: the ready endpoints, sorted (IPv4 by number)
    ("db.default.svc.cluster.local", m.A, OK,
     ["db.default.svc.cluster.local A 10.42.0.5", "db.default.svc.cluster.local A 10.42.1.6"]),
    ("db.default.svc.cluster.local", m.AAAA, OK, ["db.default.svc.cluster.local AAAA fd00:42::8"]),
    ("db-0.db.default.svc.cluster.local", m.A, OK, ["db-0.db.default.svc.cluster.local A 10.42.0.5"]),
    ("db-1.db.default.svc.cluster.local", m.AAAA, OK,
     ["db-1.db.default.svc.cluster.local AAAA fd00:42::8"]),
    # Without a hostname, the address with dashes names the endpoint.
    ("10-42-1-6.db.default.svc.cluster.local", m.A, OK,
     ["10-42-1-6.db.default.svc.cluster.local A 10.42.1.6"]),
    ("db-2.db.default.svc.cluster.local", m.A, NX, []),  # not ready
    ("_pg._tcp.db.default.svc.cluster.local", m.SRV, OK, [
        "_pg._tcp.db.default.svc.cluster.local SRV 0 100 5432 10-42-1-6.db.default.svc.cluster.local",
        "_pg._tcp.db.default.svc.cluster.local SRV 0 100 5432 db-0.db.default.svc.cluster.local",
        "_pg._tcp.db.default.svc.cluster.local SRV 0 100 5432 db-1.db.default.svc.cluster.local"]),
    ("empty.default.svc.cluster.local", m.A, NODATA, []),  # the spec: empty, not NXDOMAIN
    # -- ExternalName
    ("ext.default.svc.cluster.local", m.CNAME, OK,
     ["ext.default.svc.cluster.local CNAME example.org"]),
    ("ext.default.svc.cluster.local", m.A, OK,  # plus `chase`: see below
     ["ext.default.svc.cluster.local CNAME example.org"]),
    ("alias.default.svc.cluster.local", m.A, OK,  # followed inside the domain
     ["alias.default.svc.cluster.local CNAME web.default.svc.cluster.local",
      "web.default.svc.cluster.local A 10.43.0.10"]),
    ("gone.default.svc.cluster.local", m.A, NX,  # RFC 6604: the rcode of the last name
     ["gone.default.svc.cluster.local CNAME nothing.default.svc.cluster.local"]),
    # -- other namespaces, and the misses a pod's search list produces
    ("api.kube-system.svc.cluster.local", m.A, OK,
     ["api.kube-system.svc.cluster.local A 10.43.0.1"]),
    ("api.default.svc.cluster.local", m.A, NX, []),
    ("web.default.default.svc.cluster.local", m.A, NX, []),
    ("web.default.svc.default.svc.cluster.local", m.A, NX, []),
    ("example.org.default.svc.cluster.local", m.A, NX, []),
    ("example.org.svc.cluster.local", m.A, NX, []),
    ("example.org.cluster.local", m.AAAA, NX, []),
    ("web.cluster.local", m.A, NX, []),
    ("nobody.svc.cluster.local", m.A, NX, []),  # a namespace without Services
    ("default.svc.cluster.local", m.A, NODATA, []),
    ("svc.cluster.local", m.A, NODATA, []),
    # -- the zone itself
    ("cluster.local", m.SOA, OK, ["cluster.local SOA ns.dns.cluster.local hostmaster.cluster.local"]),
    ("cluster.local", m.NS, NODATA, []),
    ("dns-version.cluster.local", m.TXT, OK, ["dns-version.cluster.local TXT 1.1.0"]),
    # -- pod records, made up from the name
    ("10-42-0-9.default.pod.cluster.local", m.A, OK,
     ["10-42-0-9.default.pod.cluster.local A 10.42.0.9"]),
    ("fd00-42--9.default.pod.cluster.local", m.AAAA, OK,
     ["fd00-42--9.default.pod.cluster.local AAAA fd00:42::9"]),
    ("10-42-0-9.default.pod.cluster.local", m.AAAA, NODATA, []),
    ("default.pod.cluster.local", m.A, NODATA, []),
    ("10-42-0-999.default.pod.cluster.local", m.A, NX, []),
    ("x.10-42-0-9.default.pod.cluster.local", m.A, NX, []),
    # -- reverse: ClusterIPs and named headless endpoints
    ("10.0.43.10.in-addr.arpa", m.PTR, OK, ["10.0.43.10.in-addr.arpa PTR web.default.svc.cluster.local"]),
    ("5.0.42.10.IN-ADDR.ARPA", m.PTR, OK, ["5.0.42.10.IN-ADDR.ARPA PTR db-0.db.default.svc.cluster.local"]),
    ("1.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.0.0.d.f.ip6.arpa", m.PTR, OK,
     ["1.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.0.0.d.f.ip6.arpa PTR "
      "dual.default.svc.cluster.local"]),
]


@pytest.mark.parametrize(("name", "qtype", "outcome", "answers"), CASES,
                         ids=[f"{c[0]} {m.type_text(c[1])}" for c in CASES])
def test_lookup(records: ClusterRecords, name: str, qtype: int, outcome: str,
                answers: list[str]) -> None:
    got = records.lookup(Question(name, qtype))
    assert got is not None
    assert [text(rr) for rr in got.answers] == answers
    assert all(rr.ttl == TTL for rr in got.answers)
    if outcome == NX:
        assert got.rcode == m.NXDOMAIN
    else:
        assert got.rcode == m.NOERROR
        assert bool(got.answers) == (outcome == OK)
    assert got.authoritative
    # Negative answers carry the SOA, so resolvers may cache them (RFC 2308) for TTL s.
    negative = outcome != OK
    assert [text(rr).split(" ")[:2] for rr in got.authority] == (
        [["cluster.local", "SOA"]] if negative else [])


FORWARDED = [
    # (name, type): not ours - the server asks the upstreams
    ("example.org", m.A),
    ("web", m.A),  # a single label: the search list is the client's business
    ("cluster.local.example.org", m.A),
    ("xcluster.local", m.A),
    ("1.1.168.192.in-addr.arpa", m.PTR),  # a LAN address: the upstream may know it
    ("10.0.43.10.in-addr.arpa", m.A),  # a ClusterIP's reverse name, but not PTR
    ("in-addr.arpa", m.SOA),
]


@pytest.mark.parametrize(("name", "qtype"), FORWARDED)
def test_names_outside_are_not_ours(records: ClusterRecords, name: str, qtype: int) -> None:
    assert records.lookup(Question(name, qtype)) is None


@pytest.mark.parametrize(("question", "why"), [
    (Question("web.default.svc.cluster.local", m.AXFR), "zone transfer"),
    (Question("web.default.svc.cluster.local", m.IXFR), "zone transfer"),
    (Question("web.default.svc.cluster.local", m.TXT, 3), "class CHAOS"),
])
def test_refused(records: ClusterRecords, question: Question, why: str) -> None:
    got = records.lookup(question)
    assert got is not None and got.rcode == m.REFUSED and not got.answers, why


def test_external_name_is_chased_upstream(records: ClusterRecords) -> None:
    got = records.lookup(Question("Ext.default.svc.cluster.local", m.AAAA))
    assert got is not None
    assert got.chase == Question("example.org", m.AAAA)
    assert [text(rr) for rr in got.answers] == ["Ext.default.svc.cluster.local CNAME example.org"]
    assert not got.authority


def test_a_cname_loop_is_servfail(records: ClusterRecords) -> None:
    got = records.lookup(Question("loop-a.default.svc.cluster.local", m.A))
    assert got is not None and got.rcode == m.SERVFAIL


def test_any_gives_every_record_of_the_name(records: ClusterRecords) -> None:
    got = records.lookup(Question("dual.default.svc.cluster.local", m.ANY))
    assert got is not None
    assert sorted(text(rr) for rr in got.answers) == [
        "dual.default.svc.cluster.local A 10.43.0.11",
        "dual.default.svc.cluster.local AAAA fd00:43::11"]


def test_srv_answers_carry_the_targets_addresses(records: ClusterRecords) -> None:
    got = records.lookup(Question("_pg._tcp.db.default.svc.cluster.local", m.SRV))
    assert got is not None
    assert sorted(text(rr) for rr in got.additional) == [
        "10-42-1-6.db.default.svc.cluster.local A 10.42.1.6",
        "db-0.db.default.svc.cluster.local A 10.42.0.5",
        "db-1.db.default.svc.cluster.local AAAA fd00:42::8"]


def test_rotate_turns_the_address_order(records: ClusterRecords) -> None:
    q = Question("db.default.svc.cluster.local", m.A)
    orders = [[text(rr).split()[-1] for rr in records.lookup(q, rotate=n).answers]  # type: ignore[union-attr]
              for n in range(3)]
    assert orders == [["10.42.0.5", "10.42.1.6"], ["10.42.1.6", "10.42.0.5"],
                      ["10.42.0.5", "10.42.1.6"]]


def test_update_replaces_everything_and_bumps_the_serial() -> None:
    r = ClusterRecords()
    r.update([svc("a", ips=["10.43.0.2"])], [])
    first = r.lookup(Question("cluster.local", m.SOA))
    assert r.lookup(Question("a.default.svc.cluster.local", m.A)).rcode == m.NOERROR  # type: ignore[union-attr]
    r.update([svc("b", ips=["10.43.0.3"])], [])
    assert r.lookup(Question("a.default.svc.cluster.local", m.A)).rcode == m.NXDOMAIN  # type: ignore[union-attr]
    got = r.lookup(Question("b.default.svc.cluster.local", m.A))
    assert got is not None and [text(rr) for rr in got.answers] == [
        "b.default.svc.cluster.local A 10.43.0.3"]
    second = r.lookup(Question("cluster.local", m.SOA))
    assert first is not None and second is not None
    assert second.answers[0].data.serial == first.answers[0].data.serial + 1  # type: ignore[union-attr]
    assert r.lookup(Question("10.0.43.10.in-addr.arpa", m.PTR)) is None  # the old PTR left


def test_updates_are_built_once_when_looked_up() -> None:
    r = ClusterRecords()
    before = r.zone
    for n in range(50):  # a burst of watch events
        r.update([svc(f"s{i}", ips=[f"10.43.0.{i + 2}"]) for i in range(n + 1)], [])
    assert r.zone is not before and r.zone is r.zone  # one build, then kept
    assert r.zone.soa is not None and r.zone.soa.data.serial == 2  # type: ignore[union-attr]


def test_order_of_objects_does_not_matter() -> None:
    a = build_zone(SERVICES, ENDPOINTS)
    b = build_zone(list(reversed(SERVICES)), list(reversed(ENDPOINTS)))
    assert a == b


def test_other_cluster_domain() -> None:
    r = ClusterRecords("Bramble.Internal.")
    r.update([svc("web", ips=["10.43.0.10"])], [])
    got = r.lookup(Question("web.default.svc.bramble.internal", m.A))
    assert got is not None and [text(rr) for rr in got.answers] == [
        "web.default.svc.bramble.internal A 10.43.0.10"]
    assert r.lookup(Question("web.default.svc.cluster.local", m.A)) is None  # not ours now
    with pytest.raises(ValueError):
        ClusterRecords(".")


@pytest.mark.parametrize(("ip", "label"), [("10.42.0.5", "10-42-0-5"), ("fd00::5", "fd00--5"),
                                           ("::1", "--1")])
def test_dashed(ip: str, label: str) -> None:
    import ipaddress
    assert dashed(ipaddress.ip_address(ip)) == label


def test_odd_objects_are_skipped() -> None:
    zone = build_zone(
        [{"metadata": {"name": "x"}}, {"spec": "nonsense"}, {},
         svc("h", clusterIP="None", ports="nonsense"),
         svc("p", ips=["10.43.0.5"], ports=[{"name": "http", "port": 0},
                                            {"name": "Bad Name", "port": 80},
                                            {"name": "ok", "port": 81, "protocol": "ICMP"}])],
        [eps("h", [{"addresses": [{"ip": "bogus"}, {"ip": "10.42.0.1", "hostname": "-bad-"}],
                    "ports": [{"name": "x", "port": 70000}]}]), {"subsets": "nonsense"}])
    # x: no namespace -> "default"; p: no SRV; h: the bad hostname falls back to dashes.
    assert "x.default.svc.cluster.local" in zone.rrsets
    assert not any(name.startswith("_") for name in zone.rrsets)
    assert "10-42-0-1.h.default.svc.cluster.local" in zone.rrsets
