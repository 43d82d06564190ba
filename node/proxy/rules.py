"""What the service proxy should serve, from Services and Endpoints (pure).

`desired_state` turns the API objects into listeners (protocol, address, port) and, per
service port, its policy (sessionAffinity) and its ready backends - what kube-proxy's
userspace mode derives from the same objects:
- a ClusterIP Service port listens on clusterIP:port (every IP in spec.clusterIPs);
- a NodePort (or LoadBalancer) Service port also listens on nodePort at each of the node
  addresses the agent gives;
- backends are the `addresses` (never `notReadyAddresses`) of the Endpoints of the same
  name, on the endpoint port whose name and protocol match the service port's (how the
  Endpoints controller packs them: an unnamed single port matches the unnamed one).

Invariants:
- Deterministic: the same objects give the same state, whatever order they come in;
  backends are sorted and unique.
- Nothing here binds or resolves: bad values (a missing or invalid IP, a port out of
  range, a protocol the proxy does not speak such as SCTP) are skipped, never raised, so
  one odd object cannot stop the others from being served.
- Two service ports that want the same listener (the master refuses that; a stale cache
  might not): the one of the older Service keeps it and the clash is reported.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = Mapping[str, Any]

TCP = "TCP"
UDP = "UDP"
PROTOCOLS = (TCP, UDP)
# ServiceAffinityTimeout default of the Kubernetes API (3 h), when a ClientIP Service
# comes without sessionAffinityConfig (bramble's defaulting normally fills it in).
DEFAULT_AFFINITY_SECONDS = 10800
# A Service carrying this label is meant for another proxy (kube-proxy skips it too).
SERVICE_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


@dataclass(frozen=True, order=True)
class ServicePortName:
    """One port of one Service: what a balancer balances (kube's proxy.ServicePortName)."""

    namespace: str
    name: str
    port: str  # the port's name; "" for the unnamed port of a single-port Service
    protocol: str = TCP

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port}/{self.protocol}"


@dataclass(frozen=True, order=True)
class Listener:
    """An address the proxy listens on."""

    protocol: str
    ip: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{self.protocol} {host}:{self.port}"


@dataclass(frozen=True, order=True)
class Backend:
    ip: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class Policy:
    """How a service port picks backends: round robin, sticky per client IP when
    `affinity_seconds` is set (sessionAffinity ClientIP)."""

    affinity_seconds: float | None = None


@dataclass(frozen=True)
class Conflict:
    listener: Listener
    kept: ServicePortName
    refused: ServicePortName


@dataclass(frozen=True)
class Desired:
    listeners: Mapping[Listener, ServicePortName] = field(default_factory=dict)
    # The ClusterIPs among the listeners' addresses: those must exist on this host
    # (node addresses already do).
    cluster_ips: frozenset[str] = frozenset()
    policies: Mapping[ServicePortName, Policy] = field(default_factory=dict)
    backends: Mapping[ServicePortName, tuple[Backend, ...]] = field(default_factory=dict)
    conflicts: tuple[Conflict, ...] = ()


def _valid_ip(value: Any) -> str | None:
    if not isinstance(value, str) or not value or value == "None":
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _valid_port(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536:
        return value
    return None


def _dicts(value: Any) -> list[Obj]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def cluster_ips(service: Obj) -> list[str]:
    """The Service's ClusterIPs (spec.clusterIPs, else spec.clusterIP); none when headless
    or not yet allocated."""
    spec = _spec(service)
    raw = spec.get("clusterIPs")
    if not isinstance(raw, list) or not raw:
        raw = [spec.get("clusterIP")]
    ips = [ip for ip in (_valid_ip(v) for v in raw) if ip]
    return list(dict.fromkeys(ips))


def policy(service: Obj) -> Policy:
    spec = _spec(service)
    if spec.get("sessionAffinity") != "ClientIP":
        return Policy()
    config = spec.get("sessionAffinityConfig")
    client_ip = config.get("clientIP") if isinstance(config, Mapping) else None
    timeout = client_ip.get("timeoutSeconds") if isinstance(client_ip, Mapping) else None
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0:
        timeout = DEFAULT_AFFINITY_SECONDS
    return Policy(affinity_seconds=float(timeout))


def service_ports(service: Obj) -> list[tuple[ServicePortName, Obj]]:
    """(name, spec port) for each port the proxy can serve (TCP or UDP, valid number)."""
    meta = _meta(service)
    ns, name = meta.get("namespace") or "default", meta.get("name") or ""
    out = []
    for port in _dicts(_spec(service).get("ports")):
        protocol = port.get("protocol") or TCP
        if protocol not in PROTOCOLS or _valid_port(port.get("port")) is None:
            continue
        out.append((ServicePortName(ns, name, port.get("name") or "", protocol), port))
    return out


def backends(endpoints: Obj | None, spn: ServicePortName) -> tuple[Backend, ...]:
    """The ready backends of one service port: each `addresses` entry of every subset,
    at the subset's port of the same name and protocol."""
    found: set[Backend] = set()
    for subset in _dicts((endpoints or {}).get("subsets")):
        numbers = [_valid_port(p.get("port")) for p in _dicts(subset.get("ports"))
                   if (p.get("name") or "") == spn.port and (p.get("protocol") or TCP) == spn.protocol]
        for number in numbers:
            if number is None:
                continue
            for address in _dicts(subset.get("addresses")):
                ip = _valid_ip(address.get("ip"))
                if ip:
                    found.add(Backend(ip, number))
    return tuple(sorted(found))


def _age_key(service: Obj) -> tuple[str, str, str]:
    meta = _meta(service)
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("namespace") or "default"),
            str(meta.get("name") or ""))


def desired_state(services: Iterable[Obj], endpoints: Iterable[Obj],
                  node_addresses: Iterable[str] = ()) -> Desired:
    """The listeners, policies and backends for these Services and Endpoints on a node
    whose NodePorts answer at `node_addresses`."""
    nodes = [ip for ip in dict.fromkeys(_valid_ip(a) for a in node_addresses) if ip]
    by_name: dict[tuple[str, str], Obj] = {}
    for ep in endpoints:
        meta = _meta(ep)
        by_name[(meta.get("namespace") or "default", meta.get("name") or "")] = ep

    listeners: dict[Listener, ServicePortName] = {}
    wanted_ips: set[str] = set()
    policies: dict[ServicePortName, Policy] = {}
    found: dict[ServicePortName, tuple[Backend, ...]] = {}
    conflicts: list[Conflict] = []

    def claim(listener: Listener, spn: ServicePortName) -> bool:
        holder = listeners.get(listener)
        if holder is not None and holder != spn:
            conflicts.append(Conflict(listener, holder, spn))
            return False
        listeners[listener] = spn
        return True

    # Oldest first, so that in a clash the Service that had the listener first keeps it.
    for service in sorted(services, key=_age_key):
        if (_meta(service).get("labels") or {}).get(SERVICE_PROXY_NAME_LABEL):
            continue
        spec = _spec(service)
        if spec.get("type") == "ExternalName":
            continue
        ips = cluster_ips(service)
        node_port_type = spec.get("type") in NODE_PORT_TYPES
        ports = service_ports(service)
        meta = _meta(service)
        ep = by_name.get((meta.get("namespace") or "default", meta.get("name") or ""))
        for spn, port in ports:
            wanted = [Listener(spn.protocol, ip, port["port"]) for ip in ips]
            node_port = _valid_port(port.get("nodePort")) if node_port_type else None
            if node_port is not None:
                wanted += [Listener(spn.protocol, ip, node_port) for ip in nodes]
            served = False
            for listener in wanted:
                if claim(listener, spn):
                    served = True
                    if listener.ip in ips:
                        wanted_ips.add(listener.ip)
            if served:
                policies[spn] = policy(service)
                found[spn] = backends(ep, spn)
    return Desired(listeners=listeners, cluster_ips=frozenset(wanted_ips), policies=policies,
                   backends=found, conflicts=tuple(conflicts))
