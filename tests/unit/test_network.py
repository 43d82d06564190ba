"""host-gw decisions: the routes and the NAT exception a node wants (nothing is applied)."""

from __future__ import annotations

from typing import Any

import pytest

from bramble.node.network import (
    NAT_COMMENT,
    ROUTE_PROTO,
    Route,
    desired_routes,
    internal_ip,
    ip_route_args,
    iptables_args,
    nat_return_rule,
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
    # pi2 not Ready (False, Unknown, never reported): no route to it.
    ([PI1, node("pi2", "10.42.1.0/24", "10.77.0.12", "False"), PI3], [R3]),
    ([PI1, node("pi2", "10.42.1.0/24", "10.77.0.12", "Unknown"), PI3], [R3]),
    ([PI1, node("pi2", "10.42.1.0/24", "10.77.0.12", None), PI3], [R3]),
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


@pytest.mark.parametrize(("op", "position"), [("-C", []), ("-I", ["1"]), ("-D", [])])
def test_nat_return_rule(op: str, position: list[str]) -> None:
    # What TESTBED.md found keeps the pod source address across Pis:
    # iptables -t nat -I POSTROUTING 1 -s CLUSTER_CIDR -d CLUSTER_CIDR -j RETURN
    rule = nat_return_rule("10.42.0.0/16")
    assert iptables_args(op, rule) == [
        "iptables", "-t", "nat", op, "POSTROUTING", *position,
        "-s", "10.42.0.0/16", "-d", "10.42.0.0/16",
        "-m", "comment", "--comment", NAT_COMMENT, "-j", "RETURN"]


def test_nat_return_rule_refuses_garbage() -> None:
    with pytest.raises(ValueError):
        nat_return_rule("10.42.0.0/16 -j ACCEPT")
    with pytest.raises(ValueError):
        iptables_args("-F", nat_return_rule("10.42.0.0/16"))
