"""The Service allocator's pure decisions: next free value with a rotating start, what a
Service is given or refused, and the ledger's exact bookkeeping."""

from __future__ import annotations

import random

import pytest

from master.api.allocation import (
    Held,
    Ledger,
    ServiceNetwork,
    held_by,
    next_free,
    plan,
)

# A /29: hosts 10.0.0.1 .. 10.0.0.6 (offsets 0..5); .0 is the network, .7 the broadcast.
SMALL = ServiceNetwork.parse("10.0.0.0/29")
NET = ServiceNetwork.parse("10.43.0.0/16")


@pytest.mark.parametrize("size, start, taken, skip, expected", [
    # nothing taken: the start itself
    (6, 3, set(), 0, 3),
    # 3 and 4 taken: scan up to 5
    (6, 3, {3, 4}, 0, 5),
    # 3, 4, 5 taken: wrap around to 0
    (6, 3, {3, 4, 5}, 0, 0),
    # everything taken
    (6, 3, set(range(6)), 0, None),
    # skip=1 keeps offset 0 out: from 5 the wrap lands on 1, not 0
    (6, 5, {5}, 1, 1),
    # a start below skip starts at skip
    (6, 0, set(), 1, 1),
    # only skipped offsets left
    (1, 0, set(), 1, None),
])
def test_next_free(size, start, taken, skip, expected):
    assert next_free(size, start, taken.__contains__, skip) == expected


@pytest.mark.parametrize("cidr, hosts, first, contains, outside", [
    # /16: 65536 addresses - network - broadcast = 65534 hosts, first is .0.1
    ("10.43.0.0/16", 65534, "10.43.0.1", ["10.43.0.1", "10.43.255.254"],
     ["10.43.0.0", "10.43.255.255", "10.44.0.1", "fd00::1", "bogus"]),
    ("10.0.0.0/29", 6, "10.0.0.1", ["10.0.0.6"], ["10.0.0.7", "10.0.0.8"]),
])
def test_network(cidr, hosts, first, contains, outside):
    net = ServiceNetwork.parse(cidr)
    assert net.hosts == hosts
    assert net.ip_at(0) == first
    assert all(net.contains(ip) for ip in contains)
    assert not any(net.contains(ip) for ip in outside)
    assert net.ports == 32767 - 30000 + 1


@pytest.mark.parametrize("cidr", ["10.0.0.0/31", "fd00::/64", "10.0.0.1/16", "nonsense"])
def test_network_refuses(cidr):
    with pytest.raises(ValueError):
        ServiceNetwork.parse(cidr)


def svc(type_="ClusterIP", cluster_ip=None, ports=None) -> dict:
    spec: dict = {"type": type_, "ports": ports if ports is not None else [{"port": 80}]}
    if cluster_ip is not None:
        spec["clusterIP"], spec["clusterIPs"] = cluster_ip, [cluster_ip]
    return {"metadata": {"name": "s"}, "spec": spec}


def causes(result) -> list[tuple[str, str]]:
    return [(e.field, e.detail) for e in result.errors]


ALREADY = "provided port is already allocated"


@pytest.mark.parametrize("name, obj, kw, ip, node_ports, errors", [
    ("allocates from the start, skipping the reserved first host",
     svc(), {"ip_start": 0}, "10.0.0.2", {}, []),
    ("allocates from a rotating start",
     svc(), {"ip_start": 3}, "10.0.0.4", {}, []),
    ("skips taken addresses",
     svc(), {"ip_start": 3, "ip_taken": {"10.0.0.4", "10.0.0.5"}}, "10.0.0.6", {}, []),
    ("headless gets nothing", svc(cluster_ip="None"), {}, None, {}, []),
    ("an explicit free address is kept", svc(cluster_ip="10.0.0.1"), {}, None, {}, []),
    ("an explicit taken address is refused",
     svc(cluster_ip="10.0.0.3"), {"ip_taken": {"10.0.0.3"}}, None, {},
     [("spec.clusterIPs", "failed to allocate IP 10.0.0.3: provided IP is already allocated")]),
    ("an update keeps its own address", svc(cluster_ip="10.0.0.3"),
     {"ip_taken": {"10.0.0.3"}, "own": Held(frozenset({"10.0.0.3"}))}, None, {}, []),
    ("the broadcast address is out of range", svc(cluster_ip="10.0.0.7"), {}, None, {},
     [("spec.clusterIPs", "failed to allocate IP 10.0.0.7: the provided IP (10.0.0.7) is not "
       "in the valid range. The range of valid IPs is 10.0.0.0/29")]),
    ("the network address is out of range", svc(cluster_ip="10.0.0.0"), {}, None, {},
     [("spec.clusterIPs", "failed to allocate IP 10.0.0.0: the provided IP (10.0.0.0) is not "
       "in the valid range. The range of valid IPs is 10.0.0.0/29")]),
    # port_start 5 -> 30005; the second port continues after it -> 30006
    ("NodePort: every port without one gets the next free port",
     svc("NodePort", "10.0.0.1", [{"name": "a", "port": 80}, {"name": "b", "port": 81}]),
     {"port_start": 5, "port_taken": {30006}}, None, {0: 30005, 1: 30007}, []),
    ("NodePort: a given port is kept, another is allocated around it",
     svc("NodePort", "10.0.0.1", [{"name": "a", "port": 80, "nodePort": 30000},
                                  {"name": "b", "port": 81}]),
     {"port_start": 0}, None, {1: 30001}, []),
    ("NodePort: TCP and UDP of one port share one nodePort",
     svc("NodePort", "10.0.0.1", [{"name": "t", "port": 53, "protocol": "TCP"},
                                  {"name": "u", "port": 53, "protocol": "UDP"}]),
     {"port_start": 9}, None, {0: 30009, 1: 30009}, []),
    ("NodePort: a taken port is refused",
     svc("NodePort", "10.0.0.1", [{"port": 80, "nodePort": 30080}]),
     {"port_taken": {30080}}, None, {}, [("spec.ports[0].nodePort", ALREADY)]),
    ("NodePort: its own port on update is fine",
     svc("NodePort", "10.0.0.1", [{"port": 80, "nodePort": 30080}]),
     {"port_taken": {30080}, "own": Held(node_ports=frozenset({30080}))}, None, {}, []),
    ("NodePort: out of range",
     svc("NodePort", "10.0.0.1", [{"port": 80, "nodePort": 8080}]), {}, None, {},
     [("spec.ports[0].nodePort", "provided port is not in the valid range. The range of "
       "valid ports is 30000-32767")]),
    ("ClusterIP: no node ports allocated", svc(cluster_ip="10.0.0.1"), {}, None, {}, []),
])
def test_plan(name, obj, kw, ip, node_ports, errors):
    args = {"ip_taken": set(), "port_taken": set(), **kw}
    result = plan(obj, SMALL, **args)
    assert (result.cluster_ip, result.node_ports, causes(result)) == (ip, node_ports, errors)
    assert not result.exhausted


def test_plan_full_ranges():
    taken = {SMALL.ip_at(o) for o in range(1, SMALL.hosts)}  # all but the reserved .1
    assert plan(svc(), SMALL, ip_taken=taken, port_taken=set()).exhausted == (
        "failed to allocate a serviceIP: range is full")
    ports = set(range(30000, 32768))
    result = plan(svc("NodePort", "10.0.0.1"), SMALL, ip_taken=set(), port_taken=ports)
    assert result.exhausted == "failed to allocate a nodePort: range is full"


def test_apply_fills_the_spec():
    obj = svc("NodePort", ports=[{"port": 80}])
    result = plan(obj, NET, ip_taken=set(), port_taken=set(), ip_start=9, port_start=80)
    result.apply(obj)
    # offset 9 -> 10.43.0.1 + 9 = 10.43.0.10; port offset 80 -> 30080
    assert obj["spec"] == {"type": "NodePort", "clusterIP": "10.43.0.10",
                           "clusterIPs": ["10.43.0.10"], "ipFamilies": ["IPv4"],
                           "ipFamilyPolicy": "SingleStack",
                           "ports": [{"port": 80, "nodePort": 30080}]}
    assert held_by(obj) == Held(frozenset({"10.43.0.10"}), frozenset({30080}))


def test_ledger_records_releases_and_rotates():
    ledger = Ledger(SMALL, random.Random(0))
    ledger._ip_cursor = 0
    a = svc("NodePort", ports=[{"port": 80}])
    first = ledger.plan("ns", "a", a)
    first.apply(a)
    ledger.record("ns", "a", a)
    ledger.advance(first)
    assert first.cluster_ip == "10.0.0.2"
    b = svc()
    second = ledger.plan("ns", "b", b)
    # the cursor moved past .2: b gets .3 even once a is gone
    ledger.record("ns", "a", None)
    assert second.cluster_ip == "10.0.0.3"
    assert ledger.ips == frozenset() and ledger.node_ports == frozenset()
    # a value two stored Services name (old data) stays taken until both release it
    ledger.record("ns", "x", svc(cluster_ip="10.0.0.5"))
    ledger.record("ns", "y", svc(cluster_ip="10.0.0.5"))
    ledger.record("ns", "x", None)
    assert ledger.ips == {"10.0.0.5"}
    # recording one Service again is idempotent; its new version releases the old value
    ledger.record("ns", "y", svc(cluster_ip="10.0.0.6"))
    ledger.record("ns", "y", svc(cluster_ip="10.0.0.6"))
    assert ledger.ips == {"10.0.0.6"}
    assert ledger.holds("ns", "y") == Held(frozenset({"10.0.0.6"}))
