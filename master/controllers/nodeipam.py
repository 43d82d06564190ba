"""Node IPAM: every node gets its own pod subnet (spec.podCIDR) from the cluster CIDR.

As Kubernetes' node IPAM range allocator (pkg/controller/nodeipam), for a flat host-gw pod
network: a Node without spec.podCIDR gets the lowest free subnet of `node_mask` bits
(default a /24 of 10.42.0.0/16), written to spec.podCIDR and spec.podCIDRs. The agents
route each node's podCIDR via that node's address, so two nodes sharing one would
black-hole each other's pods.

Invariants:
- The used set is derived from the stored Nodes on every allocation (never a cache), so a
  deleted node releases its subnet by being gone, and a master restart forgets nothing.
  A subnet overlapping any CIDR a stored node holds (set by us, an admin, or an older
  master with another mask) is never handed out.
- Allocations are serialised (one worker) and each awaits its write before the next reads
  the store, so the controller itself never creates duplicates; the write carries the
  node's resourceVersion, so a concurrent change of the node retries instead of clobbering.
- A podCIDR once set is never changed (validation forbids it as in Kubernetes; node
  credentials may not set it at all - NodeRestriction in api/auth.py).
- When the cluster CIDR is exhausted the node waits (event CIDRNotAvailable, as
  Kubernetes records) and is looked at again when some node is deleted.

`allocate` decides; `NodeIPAMController` reads and writes.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Hashable, Iterable
from typing import Any

from bramble.kube.errors import NotFound

from ..api.rest import ObjectAPI, WriteOptions
from ..store import Change
from .base import Controller, EventRecorder, Watch

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
COMPONENT = "node-ipam-controller"


def node_cidrs(node: Obj) -> list[str]:
    """Every pod CIDR a Node holds (spec.podCIDR and spec.podCIDRs)."""
    spec = node.get("spec") or {}
    found = [spec.get("podCIDR")] + list(spec.get("podCIDRs") or [])
    return [c for c in dict.fromkeys(found) if isinstance(c, str) and c]


def allocate(cluster: Network, mask: int, used: Iterable[str]) -> str | None:
    """The lowest /`mask` subnet of `cluster` overlapping none of `used`, None when full.

    Unparseable or foreign-family entries of `used` are ignored (validation refuses them
    on write; an old stored object must not stop allocation)."""
    exact: set[Network] = set()
    other: list[Network] = []  # held CIDRs of another size that reach into the cluster
    for text in used:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        if net.version != cluster.version or not net.overlaps(cluster):
            continue
        if net.prefixlen == mask:
            exact.add(net)
        else:
            other.append(net)
    for candidate in cluster.subnets(new_prefix=mask):
        if candidate in exact or any(candidate.overlaps(o) for o in other):
            continue
        return str(candidate)
    return None


def parse_cluster(cidr: str, mask: int) -> Network:
    """The cluster CIDR, checked to hold at least one node subnet (raises ValueError)."""
    cluster = ipaddress.ip_network(cidr, strict=True)
    if not cluster.prefixlen <= mask <= cluster.max_prefixlen:
        raise ValueError(f"node mask size /{mask} does not fit the cluster CIDR {cidr}")
    return cluster


def _lacks_cidr(raw: bytes, obj: Any) -> bool:
    # Most node changes are status reports of nodes that have one: the bytes tell without
    # decoding; only when they mention podCIDR is the object decoded to be sure.
    return b"podCIDR" not in raw or not node_cidrs(obj())


class NodeIPAMController(Controller):
    """Keys: node names."""

    name = "node-ipam"
    workers = 1  # allocations must see each other's writes: strictly one at a time

    def __init__(self, api: ObjectAPI, *, cluster_cidr: str, node_mask: int) -> None:
        super().__init__(api)
        self.cluster = parse_cluster(cluster_cidr, node_mask)
        self.mask = node_mask
        self.events = EventRecorder(api, COMPONENT)
        self.watches = [Watch("nodes", self._node_changed)]

    def _waiting(self) -> list[str]:
        return [e.name for e in self.store.list("nodes") if _lacks_cidr(e.raw, e.obj)]

    def initial_keys(self) -> Iterable[Hashable]:
        return self._waiting()

    def _node_changed(self, change: Change) -> Iterable[Hashable]:
        if change.type == "DELETED":
            # Its subnet is free now: a node that found the range full may get it.
            return self._waiting()
        e = change.entry
        return (e.name,) if _lacks_cidr(e.raw, e.obj) else ()

    async def reconcile(self, key: Hashable) -> float | None:
        assert isinstance(key, str)
        entry = self.store.latest("nodes", "", key)
        if entry is None:
            return None
        node = entry.obj()
        if node_cidrs(node) or (node.get("metadata") or {}).get("deletionTimestamp"):
            return None
        used = [c for e in self.store.list("nodes") if e.name != key
                for c in node_cidrs(e.obj())]
        cidr = allocate(self.cluster, self.mask, used)
        if cidr is None:
            log.warning("no pod CIDR left for a node", extra={
                "node": key, "cluster_cidr": str(self.cluster), "mask": self.mask})
            await self.events.record(node, "Normal", "CIDRNotAvailable",
                                     f"Node {key} status is now: CIDRNotAvailable")
            return None
        node.setdefault("spec", {}).update({"podCIDR": cidr, "podCIDRs": [cidr]})
        try:
            # The object carries its resourceVersion: a concurrent change is a 409 and
            # the framework retries with a fresh read.
            await self.api.update(self.target("", "v1", "nodes", "", key), node,
                                  WriteOptions(), self.identity)
        except NotFound:
            return None
        log.info("pod CIDR assigned", extra={"node": key, "cidr": cidr})
        return None
