"""The flat pod network (host-gw), decided: which routes and NAT exception a node wants.

Every node's pods live in its spec.podCIDR (assigned by the master's node IPAM). A pod
reaches a pod on another Pi directly: this node routes each other node's podCIDR via that
node's InternalIP on the LAN (no overlay, no encapsulation), and traffic from the cluster
CIDR to the cluster CIDR is exempt from the masquerade Podman's netavark installs, so the
receiving pod sees the real source address.

Pure functions only (nothing here touches the host; node/podnet.py applies them):
`desired_routes`/`route_changes` and `nat_exceptions`/`nat_changes` decide,
`ip_route_args`/`iptables_args` spell the commands, `parse_routes`/`parse_nat_rules` read
back what the kernel holds. Invariants of the routes decided:
- never one for this node's own podCIDR, nor one via this node's own address;
- never one for a CIDR that overlaps this node's podCIDR or that two nodes claim (a
  duplicate is a misconfiguration: no route beats a route to the wrong Pi);
- one for every other node with a podCIDR and an InternalIP of its family, Ready or not
  (as flannel's host-gw: routes follow the Node objects). A node that misses heartbeats
  usually still runs its pods, and taking its route away would cut them off for nothing;
  the route to a dead node's subnet leads nowhere anyone still needs to go.
The NAT exceptions: one per route, from this node's podCIDR to that route's subnet, so
exactly the traffic that is routed to another Pi's pods keeps its source address (IPv4:
Podman's netavark masquerades with iptables; IPv6 pod networks are not routed here).
"""

from __future__ import annotations

import ipaddress
import shlex
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

# Routes this agent owns carry their own protocol number, so `ip route show proto 77`
# finds exactly them for a diff (and a restart finds the last run's); 77 is unassigned
# in /etc/iproute2/rt_protos.
ROUTE_PROTO = "77"
NAT_COMMENT = "bramble: pod-to-pod traffic keeps its source address"


@dataclass(frozen=True, order=True)
class Route:
    """`ip route replace DEST via VIA`: a node's pod subnet via its LAN address."""

    dest: str
    via: str
    node: str = ""  # whose subnet (for logs; not part of what the kernel holds)


def _network(text: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def pod_cidr(node: Obj) -> str | None:
    """The node's podCIDR in canonical form (host bits cleared), None when it has none."""
    net = _network((node.get("spec") or {}).get("podCIDR"))
    return str(net) if net is not None else None


def internal_ip(node: Obj, version: int = 4) -> str | None:
    """The node's first InternalIP of IP `version`, as the agent reports it."""
    for addr in (node.get("status") or {}).get("addresses") or []:
        if not isinstance(addr, dict) or addr.get("type") != "InternalIP":
            continue
        try:
            ip = ipaddress.ip_address(addr.get("address") or "")
        except ValueError:
            continue
        if ip.version == version:
            return str(ip)
    return None


def desired_routes(name: str, address: str, nodes: Iterable[Obj]) -> list[Route]:
    """The routes node `name` (LAN address `address`) wants: every other node's podCIDR
    via its InternalIP. Sorted by destination."""
    nodes = list(nodes)
    own = next((pod_cidr(n) for n in nodes
                if (n.get("metadata") or {}).get("name") == name), None)
    own_net = _network(own)
    claims = Counter(c for c in (pod_cidr(n) for n in nodes) if c)
    routes = []
    for node in nodes:
        other = (node.get("metadata") or {}).get("name")
        cidr = pod_cidr(node)
        if other == name or cidr is None or claims[cidr] > 1:
            continue
        net = _network(cidr)
        assert net is not None
        if own_net is not None and own_net.version == net.version and own_net.overlaps(net):
            continue
        via = internal_ip(node, net.version)
        if via is None or via == address:
            continue
        routes.append(Route(cidr, via, other or ""))
    return sorted(routes)


def route_changes(desired: Iterable[Route], current: Iterable[Route]
                  ) -> tuple[list[Route], list[Route]]:
    """(routes to replace, routes to delete) to go from `current` (the routes of our
    protocol the kernel holds) to `desired`; compared by (dest, via) only."""
    want = {(r.dest, r.via): r for r in desired}
    have = {(r.dest, r.via): r for r in current}
    wanted_dests = {r.dest for r in want.values()}
    add = sorted(r for k, r in want.items() if k not in have)
    # A destination that moves to another gateway is replaced in place, not deleted.
    delete = sorted(r for k, r in have.items() if k not in want and r.dest not in wanted_dests)
    return add, delete


def ip_route_args(op: str, route: Route) -> list[str]:
    """argv of `ip route replace|del` for one of our routes."""
    if op not in ("replace", "del"):
        raise ValueError(f"unknown route operation {op!r}")
    ip = "ip" if ":" not in route.dest else "ip -6"
    return [*ip.split(), "route", op, route.dest, "via", route.via, "proto", ROUTE_PROTO]


def parse_routes(text: str) -> list[Route]:
    """The routes in `ip route show proto 77` output ("DEST via VIA dev ETH ..."); lines
    without a gateway (not ours to have made) are skipped."""
    routes = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and words[1] == "via" and _network(words[0]) is not None:
            routes.append(Route(str(_network(words[0])), words[2]))
    return sorted(routes)


@dataclass(frozen=True, order=True)
class NatException:
    """`-s SOURCE -d DEST -j RETURN` ahead of netavark's masquerade."""

    source: str  # this node's podCIDR
    dest: str  # another node's podCIDR


def nat_exceptions(own_cidr: str | None, routes: Iterable[Route]) -> list[NatException]:
    """One exception per IPv4 route: from our podCIDR to the routed subnet. None until this
    node has a podCIDR (its pods are not on the flat network before)."""
    own = _network(own_cidr)
    if own is None or own.version != 4:
        return []
    return sorted({NatException(str(own), r.dest) for r in routes
                   if (net := _network(r.dest)) is not None and net.version == 4})


def nat_rule(exception: NatException) -> list[str]:
    """The nat POSTROUTING rule spec (for iptables -C / -I POSTROUTING 1 / -D)."""
    source, dest = _network(exception.source), _network(exception.dest)
    if source is None or dest is None:
        raise ValueError(f"not a CIDR pair: {exception}")
    return ["-s", str(source), "-d", str(dest), "-m", "comment", "--comment", NAT_COMMENT,
            "-j", "RETURN"]


def parse_nat_rules(text: str) -> list[NatException]:
    """Our exceptions in `iptables -t nat -S POSTROUTING` output (found by their comment;
    another program's rules are never touched)."""
    found = []
    for line in text.splitlines():
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        if NAT_COMMENT not in words or "-s" not in words or "-d" not in words:
            continue
        source = _network(words[words.index("-s") + 1])
        dest = _network(words[words.index("-d") + 1])
        if source is not None and dest is not None:
            found.append(NatException(str(source), str(dest)))
    return sorted(found)


def nat_changes(desired: Iterable[NatException], current: Iterable[NatException]
                ) -> tuple[list[NatException], list[NatException]]:
    """(exceptions to insert, exceptions to delete)."""
    want, have = set(desired), set(current)
    return sorted(want - have), sorted(have - want)


def iptables_args(op: str, rule: list[str]) -> list[str]:
    """argv of iptables for `rule` in the nat POSTROUTING chain: check (-C), insert first
    (-I, ahead of netavark's jumps) or delete (-D)."""
    where = {"-C": ["POSTROUTING"], "-I": ["POSTROUTING", "1"], "-D": ["POSTROUTING"]}
    if op not in where:
        raise ValueError(f"unknown iptables operation {op!r}")
    return ["iptables", "-w", "5", "-t", "nat", op, *where[op], *rule]
