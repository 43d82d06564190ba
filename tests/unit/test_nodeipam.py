"""Node IPAM decisions: which pod subnet a new node gets."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from bramble.master.controllers.nodeipam import allocate, node_cidrs, parse_cluster

CLUSTER = ipaddress.ip_network("10.42.0.0/16")


@pytest.mark.parametrize(("cluster", "mask", "used", "expected"), [
    # An empty cluster: the first /24.
    ("10.42.0.0/16", 24, [], "10.42.0.0/24"),
    # The lowest free one, also when it is a hole left by a deleted node.
    ("10.42.0.0/16", 24, ["10.42.0.0/24", "10.42.1.0/24"], "10.42.2.0/24"),
    ("10.42.0.0/16", 24, ["10.42.0.0/24", "10.42.2.0/24"], "10.42.1.0/24"),
    # CIDRs outside the cluster CIDR take nothing from it.
    ("10.42.0.0/16", 24, ["10.244.0.0/24", "10.43.0.0/24"], "10.42.0.0/24"),
    # A held /23 (another mask, e.g. set by an admin) covers two /24s: 0 and 1.
    ("10.42.0.0/16", 24, ["10.42.0.0/23"], "10.42.2.0/24"),
    # A held /25 reaches into 10.42.0.0/24: that /24 is not free.
    ("10.42.0.0/16", 24, ["10.42.0.128/25"], "10.42.1.0/24"),
    # A held /8 containing the whole cluster: nothing is free.
    ("10.42.0.0/16", 24, ["10.0.0.0/8"], None),
    # Host bits set in a stored value still name the subnet they are in.
    ("10.42.0.0/16", 24, ["10.42.0.7/24"], "10.42.1.0/24"),
    # Garbage and another address family are ignored.
    ("10.42.0.0/16", 24, ["not-a-cidr", "", "fd00::/64"], "10.42.0.0/24"),
    # A /23 cluster of /24s holds 2 nodes (2^(24-23)); the third waits.
    ("10.42.0.0/23", 24, ["10.42.0.0/24"], "10.42.1.0/24"),
    ("10.42.0.0/23", 24, ["10.42.0.0/24", "10.42.1.0/24"], None),
    # 256 nodes fill 10.42.0.0/16 (2^(24-16)); the 257th waits.
    ("10.42.0.0/16", 24, [f"10.42.{i}.0/24" for i in range(256)], None),
    ("10.42.0.0/16", 24, [f"10.42.{i}.0/24" for i in range(255)], "10.42.255.0/24"),
    # Another mask size: /26s of a /24 (4 of them).
    ("10.42.0.0/24", 26, ["10.42.0.0/26", "10.42.0.64/26"], "10.42.0.128/26"),
    # IPv6 works the same.
    ("fd42::/48", 64, ["fd42::/64"], "fd42:0:0:1::/64"),
])
def test_allocate(cluster: str, mask: int, used: list[str], expected: str | None) -> None:
    assert allocate(ipaddress.ip_network(cluster), mask, used) == expected


def test_allocate_never_returns_a_used_cidr() -> None:
    # Allocating node after node, each seeing the ones before: 256 distinct /24s, then none.
    used: list[str] = []
    for _ in range(256):
        cidr = allocate(CLUSTER, 24, used)
        assert cidr is not None and cidr not in used
        used.append(cidr)
    assert len(set(used)) == 256
    assert allocate(CLUSTER, 24, used) is None


def node(spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "pi1"}, "spec": spec}


@pytest.mark.parametrize(("obj", "expected"), [
    (node({}), []),
    ({"metadata": {"name": "pi1"}}, []),
    (node({"podCIDR": ""}), []),
    (node({"podCIDR": "10.42.1.0/24"}), ["10.42.1.0/24"]),
    (node({"podCIDR": "10.42.1.0/24", "podCIDRs": ["10.42.1.0/24", "fd42::/64"]}),
     ["10.42.1.0/24", "fd42::/64"]),
    (node({"podCIDRs": ["10.42.2.0/24"]}), ["10.42.2.0/24"]),
])
def test_node_cidrs(obj: dict[str, Any], expected: list[str]) -> None:
    assert node_cidrs(obj) == expected


@pytest.mark.parametrize(("cidr", "mask", "ok"), [
    ("10.42.0.0/16", 24, True),
    ("10.42.0.0/24", 24, True),  # exactly one node
    ("10.42.0.0/24", 16, False),  # a node subnet larger than the cluster
    ("10.42.0.0/16", 33, False),
    ("10.42.0.1/16", 24, False),  # host bits: a typo, not a network
    ("banana", 24, False),
])
def test_parse_cluster(cidr: str, mask: int, ok: bool) -> None:
    if ok:
        assert str(parse_cluster(cidr, mask)) == cidr
    else:
        with pytest.raises(ValueError):
            parse_cluster(cidr, mask)
