"""ClusterIP and NodePort allocation for Services, as the apiserver's service REST storage
does it (pkg/registry/core/service/storage/alloc.go over the bitmap allocators).

Role: `plan()` decides, as a pure function, which cluster IP and node ports a Service being
written gets and which of the values it names are refused (field errors with Kubernetes'
messages). `Ledger` is the in-memory record of what every stored Service holds; the
ObjectAPI asks it for a plan just before staging a Service write and tells it what it
staged, with no await in between, so two concurrent creates can never get the same value.

Invariants:
- The ledger is derived from the stored Services only: rebuilt from the store when the
  master starts and set for a Service every time a write of it is staged (cleared when its
  removal is staged). There is no separate allocation file, so a crash cannot leave the two
  disagreeing, and a released value is free exactly when no stored Service names it.
- Keyed by Service: recording the same Service twice is idempotent, and what it held before
  is released by its next version (type ClusterIP drops the node ports, deletion drops all).
- Dynamic allocation scans from a rotating start (after the last value handed out, a random
  one at startup, like the bitmap allocator's random scan), so a value just released is not
  handed out again at once to a different Service.
- The first host address (10.43.0.1 by default) is never allocated dynamically: Kubernetes
  gives it to the `kubernetes` API Service. It can be asked for explicitly.
"""

from __future__ import annotations

import ipaddress
import random
from collections import Counter
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import Any

from bramble.kube.errors import FieldError, invalid

from .validation.core import NODE_PORT_RANGE

Obj = dict[str, Any]

DEFAULT_SERVICE_CIDR = "10.43.0.0/16"
# Types whose ports get a nodePort (bramble validates only ClusterIP and NodePort, but a
# LoadBalancer Service would need them too).
NODE_PORT_TYPES = ("NodePort", "LoadBalancer")
# The offset (in host addresses) reserved for the `kubernetes` Service.
RESERVED_OFFSETS = 1


@dataclass(frozen=True)
class ServiceNetwork:
    """The service CIDR and the node port range."""

    cidr: ipaddress.IPv4Network
    node_ports: tuple[int, int] = NODE_PORT_RANGE

    @classmethod
    def parse(cls, cidr: str = DEFAULT_SERVICE_CIDR) -> ServiceNetwork:
        """Raises ValueError for anything but an IPv4 network with room for services."""
        network = ipaddress.ip_network(cidr, strict=True)
        if not isinstance(network, ipaddress.IPv4Network) or network.prefixlen > 30:
            raise ValueError(f"service CIDR {cidr} must be an IPv4 network of /30 or larger")
        return cls(network)

    @property
    def hosts(self) -> int:
        # Network and broadcast addresses are never service IPs.
        return self.cidr.num_addresses - 2

    @property
    def ports(self) -> int:
        return self.node_ports[1] - self.node_ports[0] + 1

    def ip_at(self, offset: int) -> str:
        return str(self.cidr.network_address + 1 + offset)

    def contains(self, ip: str) -> bool:
        """True for a host address of the CIDR (not its network or broadcast address)."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return (addr in self.cidr and addr != self.cidr.network_address
                and addr != self.cidr.broadcast_address)

    def port_range(self) -> str:
        return f"{self.node_ports[0]}-{self.node_ports[1]}"


def next_free(size: int, start: int, taken: Callable[[int], bool],
              skip: int = 0) -> int | None:
    """The first offset in [skip, size) not taken, scanning up from `start` (at least
    `skip`) and wrapping around; None when every one is taken."""
    span = size - skip
    if span <= 0:
        return None
    first = (max(start, skip) - skip) % span
    for i in range(span):
        offset = skip + (first + i) % span
        if not taken(offset):
            return offset
    return None


@dataclass(frozen=True)
class Held:
    """What one stored Service holds."""

    ips: frozenset[str] = frozenset()
    node_ports: frozenset[int] = frozenset()


NOTHING = Held()


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _ports(spec: Obj) -> list[Obj]:
    ports = spec.get("ports")
    return [p for p in ports if isinstance(p, dict)] if isinstance(ports, list) else []


def cluster_ips(spec: Obj) -> list[str]:
    ips = spec.get("clusterIPs")
    if isinstance(ips, list) and ips:
        return [ip for ip in ips if isinstance(ip, str) and ip]
    ip = spec.get("clusterIP")
    return [ip] if isinstance(ip, str) and ip else []


def held_by(obj: Obj) -> Held:
    spec = _spec(obj)
    ips = frozenset(ip for ip in cluster_ips(spec) if ip != "None")
    ports = frozenset(p["nodePort"] for p in _ports(spec)
                      if isinstance(p.get("nodePort"), int) and p["nodePort"])
    return Held(ips, ports)


@dataclass
class Plan:
    """The outcome for one Service write: values to fill in, or why it is refused."""

    errors: list[FieldError] = field(default_factory=list)
    cluster_ip: str | None = None  # newly allocated
    node_ports: dict[int, int] = field(default_factory=dict)  # port index -> new nodePort
    exhausted: str = ""  # a range is full: the apiserver answers 500 InternalError

    def apply(self, obj: Obj) -> None:
        """Write the allocated values into `obj` (clusterIP, clusterIPs, nodePorts)."""
        spec = _spec(obj)
        if self.cluster_ip is not None:
            spec["clusterIP"] = self.cluster_ip
            spec["clusterIPs"] = [self.cluster_ip]
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
        ports = _ports(spec)
        for index, node_port in self.node_ports.items():
            ports[index]["nodePort"] = node_port


def plan(obj: Obj, network: ServiceNetwork, *, ip_taken: Container[str],
         port_taken: Container[int], own: Held = NOTHING, ip_start: int = 0,
         port_start: int = 0) -> Plan:
    """Allocate what a validated Service lacks and check what it names.

    `ip_taken`/`port_taken` are every value held by stored Services; `own` is what this
    Service's stored version holds (an update keeps those without a check).
    """
    result = Plan()
    spec = _spec(obj)
    if spec.get("type") == "ExternalName":
        return result
    ips = cluster_ips(spec)
    if not ips:
        offset = next_free(network.hosts, ip_start,
                           lambda o: network.ip_at(o) in ip_taken, skip=RESERVED_OFFSETS)
        if offset is None:
            result.exhausted = "failed to allocate a serviceIP: range is full"
        else:
            result.cluster_ip = network.ip_at(offset)
    elif ips != ["None"]:
        for ip in ips:
            if ip in own.ips:
                continue
            if not network.contains(ip):
                why = (f"the provided IP ({ip}) is not in the valid range. The range of valid "
                       f"IPs is {network.cidr}")
            elif ip in ip_taken:
                why = "provided IP is already allocated"
            else:
                continue
            result.errors.append(invalid("spec.clusterIPs", ips,
                                         f"failed to allocate IP {ip}: {why}"))
    if spec.get("type") not in NODE_PORT_TYPES:
        return result
    ports = _ports(spec)
    # Ports of one Service may share a nodePort (same number, TCP and UDP).
    chosen: set[int] = set()
    for i, port in enumerate(ports):
        node_port = port.get("nodePort")
        if not isinstance(node_port, int) or not node_port:
            continue
        if node_port not in own.node_ports and node_port not in chosen:
            if not network.node_ports[0] <= node_port <= network.node_ports[1]:
                result.errors.append(invalid(
                    f"spec.ports[{i}].nodePort", node_port,
                    "provided port is not in the valid range. The range of valid ports is "
                    f"{network.port_range()}"))
            elif node_port in port_taken:
                result.errors.append(invalid(f"spec.ports[{i}].nodePort", node_port,
                                             "provided port is already allocated"))
        chosen.add(node_port)
    by_service_port: dict[Any, int] = {}
    start = port_start
    for i, port in enumerate(ports):
        if port.get("nodePort"):
            continue
        # As initNodePorts: one service port number (TCP and UDP) gets one nodePort.
        shared = by_service_port.get(port.get("port"))
        if shared is not None:
            result.node_ports[i] = shared
            continue
        offset = next_free(network.ports, start, lambda o: (
            network.node_ports[0] + o in port_taken or network.node_ports[0] + o in chosen))
        if offset is None:
            result.exhausted = "failed to allocate a nodePort: range is full"
            break
        node_port = network.node_ports[0] + offset
        chosen.add(node_port)
        result.node_ports[i] = by_service_port[port.get("port")] = node_port
        start = offset + 1
    return result


class Ledger:
    """What every stored Service holds, kept exact by the ObjectAPI's write path."""

    def __init__(self, network: ServiceNetwork, rng: random.Random | None = None) -> None:
        self.network = network
        self._held: dict[tuple[str, str], Held] = {}
        # Counts, not sets: stored data may name one value twice (written before the
        # allocator existed), and releasing one holder must not free it for the other.
        self._ips: Counter[str] = Counter()
        self._ports: Counter[int] = Counter()
        rng = rng or random.Random()
        self._ip_cursor = rng.randrange(network.hosts)
        self._port_cursor = rng.randrange(network.ports)

    def plan(self, namespace: str, name: str, obj: Obj) -> Plan:
        own = self._held.get((namespace, name), NOTHING)
        result = plan(obj, self.network, ip_taken=self._ips, port_taken=self._ports,
                      own=own, ip_start=self._ip_cursor, port_start=self._port_cursor)
        return result

    def advance(self, result: Plan) -> None:
        """Move the cursors past what a staged plan handed out."""
        if result.cluster_ip is not None:
            offset = int(ipaddress.ip_address(result.cluster_ip)) - int(
                self.network.cidr.network_address) - 1
            self._ip_cursor = (offset + 1) % self.network.hosts
        if result.node_ports:
            last = max(result.node_ports.values()) - self.network.node_ports[0]
            self._port_cursor = (last + 1) % self.network.ports

    def record(self, namespace: str, name: str, obj: Obj | None) -> None:
        """The Service's newest staged version (None: its removal was staged)."""
        key = (namespace, name)
        old = self._held.pop(key, NOTHING)
        self._ips.subtract(old.ips)
        self._ports.subtract(old.node_ports)
        held = NOTHING if obj is None else held_by(obj)
        if held != NOTHING:
            self._held[key] = held
        self._ips.update(held.ips)
        self._ports.update(held.node_ports)
        # Counter keeps zero counts, which `in` would still see as taken.
        for ip in old.ips - held.ips:
            if self._ips[ip] <= 0:
                del self._ips[ip]
        for port in old.node_ports - held.node_ports:
            if self._ports[port] <= 0:
                del self._ports[port]

    def holds(self, namespace: str, name: str) -> Held:
        return self._held.get((namespace, name), NOTHING)

    @property
    def ips(self) -> frozenset[str]:
        return frozenset(self._ips)

    @property
    def node_ports(self) -> frozenset[int]:
        return frozenset(self._ports)
