"""host-gw decisions: the routes and the NAT exceptions a node wants (nothing is applied)."""

from __future__ import annotations

from typing import Any

import pytest

from bramble.node.network import (
    NAT_COMMENT,
    ROUTE_PROTO,
    NatException,
    Route,
    desired_routes,
    internal_ip,
    ip_route_args,
    iptables_args,
    nat_changes,
    nat_exceptions,
    nat_rule,
    parse_nat_rules,
    parse_routes,
    route_changes,
)

Obj = dict[str, Any]


def node(name: str, cidr: str | None, address: str | None, ready: str | None = "True",
         *extra_addresses: tuple[str, str]) -> Obj:
    addresses = [{"type": "Hostname", "address": name}, *(
        {"type": t, "address": a} for t, a in extra_addresses)]
    if address:
        addresses.append({"type": "InternalIP", "address": address})
    conditions = [{"type": "Ready", "status": ready}] if ready else []
    return {"metadata": {"name": name}, "spec": {"podCIDR": cidr} if cidr else {},
            "status": {"addresses": addresses, "conditions": conditions}}


PI1 = node("pi1", "10.42.0.0/24", "10.77.0.11")
PI2 = node("pi2", "10.42.1.0/24", "10.77.0.12")
PI3 = node("pi3", "10.42.2.0/24", "10.77.0.13")
R2 = Route("10.42.1.0/24", "10.77.0.12", "pi2")
R3 = Route("10.42.2.0/24", "10.77.0.13", "pi3")


@pytest.mark.parametrize(("nodes", "expected"), [
    # Three Ready nodes: pi1 routes the other two subnets via their addresses.
    ([PI1, PI2, PI3], [R2, R3]),
    # Alone: nothing to route.
    ([PI1], []),
    # pi1 has no podCIDR yet: it still routes to the others.
    ([node("pi1", None, "10.77.0.11"), PI2], [R2]),
    # pi2 not Ready (False, Unknown, never reported): still routed - its pods may well
    # still run, and a route to a dead Pi harms nobody.
    ([PI1, node("pi2", "10.42.1.0/24", "10.77.0.12", "False"), PI3], [R2, R3]),
    ([PI1, node("pi2", "10.42.1.0/24", "10.77.0.12", "Unknown"), PI3], [R2, R3]),
    ([PI1, node("pi2", "10.42.1.0/24", "10.77.0.12", None), PI3], [R2, R3]),
    # pi2 without a podCIDR (IPAM has not got to it) or without an InternalIP: skipped.
    ([PI1, node("pi2", None, "10.77.0.12"), PI3], [R3]),
    ([PI1, node("pi2", "10.42.1.0/24", None, "True", ("ExternalIP", "192.0.2.1")), PI3],
     [R3]),
    # Only an IPv6 InternalIP for an IPv4 subnet: no gateway of that family.
    ([PI1, node("pi2", "10.42.1.0/24", "fd77::12")], []),
    # Two nodes claiming one subnet: routed to neither (no route beats a wrong one).
    ([PI1, PI2, node("pi3", "10.42.1.0/24", "10.77.0.13")], []),
    # Another node claiming (part of) pi1's own subnet: never routed away from pi1.
    ([PI1, node("pi2", "10.42.0.0/24", "10.77.0.12")], []),
    ([PI1, node("pi2", "10.42.0.128/25", "10.77.0.12")], []),
    # A node reporting pi1's own address as its InternalIP: no route via ourselves.
    ([PI1, node("pi2", "10.42.1.0/24", "10.77.0.11")], []),
    # Host bits in a stored podCIDR are cleared; garbage is skipped.
    ([PI1, node("pi2", "10.42.1.7/24", "10.77.0.12")], [R2]),
    ([PI1, node("pi2", "banana", "10.77.0.12"), PI3], [R3]),
    # Sorted by destination whatever the order of the nodes.
    ([PI3, PI2, PI1], [R2, R3]),
])
def test_desired_routes(nodes: list[Obj], expected: list[Route]) -> None:
    assert desired_routes("pi1", "10.77.0.11", nodes) == expected


def test_internal_ip_by_family() -> None:
    dual = node("pi2", "10.42.1.0/24", "fd77::12", "True", ("InternalIP", "10.77.0.12"))
    assert internal_ip(dual, 4) == "10.77.0.12"
    assert internal_ip(dual, 6) == "fd77::12"
    assert internal_ip(node("pi2", None, None), 4) is None


@pytest.mark.parametrize(("desired", "current", "add", "delete"), [
    ([R2, R3], [], [R2, R3], []),  # first run
    ([R2, R3], [R2, R3], [], []),  # nothing changed
    ([R2], [R2, R3], [], [R3]),  # pi3 left
    ([], [R2, R3], [], [R2, R3]),  # alone again
    # pi2 came back with another address: replaced in place, not deleted after.
    ([Route("10.42.1.0/24", "10.77.0.22", "pi2")], [R2],
     [Route("10.42.1.0/24", "10.77.0.22", "pi2")], []),
    # The node name is only a label: a kernel route read back without it matches.
    ([R2], [Route("10.42.1.0/24", "10.77.0.12")], [], []),
])
def test_route_changes(desired: list[Route], current: list[Route], add: list[Route],
                       delete: list[Route]) -> None:
    assert route_changes(desired, current) == (add, delete)


def test_ip_route_args() -> None:
    assert ip_route_args("replace", R2) == [
        "ip", "route", "replace", "10.42.1.0/24", "via", "10.77.0.12", "proto", ROUTE_PROTO]
    assert ip_route_args("del", Route("fd42:0:0:1::/64", "fd77::12")) == [
        "ip", "-6", "route", "del", "fd42:0:0:1::/64", "via", "fd77::12", "proto",
        ROUTE_PROTO]
    with pytest.raises(ValueError):
        ip_route_args("add; rm -rf /", R2)


def test_parse_routes() -> None:
    # `ip route show proto 77` after two replaces; a gateway-less line is not ours.
    text = ("10.42.1.0/24 via 10.77.0.12 dev eth0 \n"
            "10.42.2.0/24 via 10.77.0.13 dev eth0 onlink \n"
            "10.42.9.0/24 dev eth0 scope link\n")
    assert parse_routes(text) == [Route("10.42.1.0/24", "10.77.0.12"),
                                  Route("10.42.2.0/24", "10.77.0.13")]
    assert parse_routes("") == []


N2 = NatException("10.42.0.0/24", "10.42.1.0/24")
N3 = NatException("10.42.0.0/24", "10.42.2.0/24")


@pytest.mark.parametrize(("own", "routes", "expected"), [
    ("10.42.0.0/24", [R2, R3], [N2, N3]),  # one per route, from our subnet
    ("10.42.0.7/24", [R3, R2], [N2, N3]),  # canonical and sorted
    (None, [R2, R3], []),  # no podCIDR yet: our pods are not on the flat network
    ("10.42.0.0/24", [], []),  # alone
    # IPv6 routes get no iptables (v4) rule.
    ("10.42.0.0/24", [R2, Route("fd42:0:0:1::/64", "fd77::12")], [N2]),
])
def test_nat_exceptions(own: str | None, routes: list[Route],
                        expected: list[NatException]) -> None:
    assert nat_exceptions(own, routes) == expected


@pytest.mark.parametrize(("op", "position"), [("-C", []), ("-I", ["1"]), ("-D", [])])
def test_nat_rule(op: str, position: list[str]) -> None:
    # What TESTBED.md found keeps the pod source address across Pis, narrowed to the
    # subnets this node routes: iptables -t nat -I POSTROUTING 1 -s OURS -d THEIRS -j RETURN
    assert iptables_args(op, nat_rule(N2)) == [
        "iptables", "-w", "5", "-t", "nat", op, "POSTROUTING", *position,
        "-s", "10.42.0.0/24", "-d", "10.42.1.0/24",
        "-m", "comment", "--comment", NAT_COMMENT, "-j", "RETURN"]


def test_nat_rule_refuses_garbage() -> None:
    with pytest.raises(ValueError):
        nat_rule(NatException("10.42.0.0/24 -j ACCEPT", "10.42.1.0/24"))
    with pytest.raises(ValueError):
        iptables_args("-F", nat_rule(N2))


def test_parse_nat_rules_reads_only_ours() -> None:
    text = "\n".join([
        "-P POSTROUTING ACCEPT",
        f'-A POSTROUTING -s 10.42.0.0/24 -d 10.42.1.0/24 -m comment --comment "{NAT_COMMENT}" '
        "-j RETURN",
        "-A POSTROUTING -s 10.88.0.0/16 -d 10.42.2.0/24 -j RETURN",  # someone else's
        '-A POSTROUTING -m comment --comment "unbalanced -j MASQUERADE',
        "-A POSTROUTING -j NETAVARK-1D8721804F16F",
    ])
    assert parse_nat_rules(text) == [N2]


@pytest.mark.parametrize(("desired", "current", "add", "delete"), [
    ([N2, N3], [], [N2, N3], []),
    ([N2, N3], [N3, N2], [], []),
    ([N2], [N2, N3], [], [N3]),
    ([], [N2], [], [N2]),
])
def test_nat_changes(desired: list[NatException], current: list[NatException],
                     add: list[NatException], delete: list[NatException]) -> None:
    assert nat_changes(desired, current) == (add, delete)
