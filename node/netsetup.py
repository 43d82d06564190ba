"""The agent's cluster-network parts, made at start and run as root tasks.

Once the Node has its podCIDR and the Podman network exists (node/agent.py), this makes:
- the Services informer (always: containers get {NAME}_SERVICE_HOST variables from it)
  and the Endpoints informer (for the proxy and the DNS), sharing one change signal;
- the Nodes informer and `PodRoutes` (node/podnet.py): host-gw routes and NAT exceptions;
- the userspace service proxy (node/proxy/): ClusterIPs made local on this host,
  NodePorts on the node's LAN address and loopback;
- the cluster DNS (node/dns/) at the pod gateway - the first address of the podCIDR,
  which every pod routes through anyway - forwarding other names to the host's resolvers,
  answering only this node's pods. If it cannot bind, pods get none and ClusterFirst
  falls back to the host's resolver.

`NodeNetwork.tasks()` are the coroutines the agent supervises; the proxy and DNS are fed
the complete Service and Endpoints sets after the first lists and after every burst of
changes, so an Endpoints change is served as soon as the watch delivers it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bramble.client import Client

from .dns import ClusterDNS, DNSOptions, parse_resolv_conf, usable_upstreams
from .informer import Informer
from .podnet import PodRoutes
from .proxy import Proxier, ProxyOptions
from .proxy import address as proxy_address

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NetworkOptions:
    pod_routes: bool = True
    service_proxy: bool = True
    cluster_dns: bool = True
    cluster_domain: str = "cluster.local"
    resolv_conf: Path = Path("/etc/resolv.conf")


@dataclass
class NodeNetwork:
    pod_cidr: str
    services: Informer
    endpoints: Informer | None = None
    nodes: Informer | None = None
    routes: PodRoutes | None = None
    proxier: Proxier | None = None
    dns: ClusterDNS | None = None
    dns_servers: tuple[str, ...] = ()  # what pods get as nameserver (none: the host's)
    host_search: tuple[str, ...] = ()  # the host's search domains, appended for pods
    changes: asyncio.Event = field(default_factory=asyncio.Event)

    def tasks(self) -> dict[str, Coroutine[Any, Any, None]]:
        """The root tasks to supervise, by name."""
        tasks = {"services-informer": self.services.run()}
        if self.endpoints is not None:
            tasks["endpoints-informer"] = self.endpoints.run()
            tasks["service-proxy-dns"] = self._serve_services()
        if self.nodes is not None and self.routes is not None:
            tasks["nodes-informer"] = self.nodes.run()
            tasks["pod-routes"] = self.routes.run()
        return tasks

    async def _serve_services(self) -> None:
        assert self.endpoints is not None
        await self.services.synced.wait()
        await self.endpoints.synced.wait()
        while True:
            self.changes.clear()
            services, endpoints = self.services.values(), self.endpoints.values()
            if self.dns is not None:
                self.dns.update(services, endpoints)
            if self.proxier is not None:
                await self.proxier.apply(services, endpoints)  # logs what it cannot serve
            await self.changes.wait()


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def pod_gateway(cidr: str) -> str:
    """netavark's default gateway of a subnet: its first address."""
    return str(next(ipaddress.ip_network(cidr, strict=False).hosts()))


async def start_network(client: Client, name: str, pod_cidr: str, host_ip: str,
                        stack: AsyncExitStack, options: NetworkOptions) -> NodeNetwork:
    resolv = parse_resolv_conf(await asyncio.to_thread(_read_text, options.resolv_conf))
    changes = asyncio.Event()
    net = NodeNetwork(pod_cidr, Informer(client, "/api/v1/services", notify=changes),
                      host_search=tuple(resolv.search), changes=changes)
    if options.service_proxy or options.cluster_dns:
        net.endpoints = Informer(client, "/api/v1/endpoints", notify=changes)
    if options.pod_routes:
        net.nodes = Informer(client, "/api/v1/nodes")
        net.routes = PodRoutes(name, pod_cidr, net.nodes)
    if options.service_proxy:
        addresses = tuple(dict.fromkeys((host_ip, "127.0.0.1")))
        net.proxier = Proxier(ProxyOptions(node_addresses=addresses),
                              ensure_address=proxy_address.ensure_address,
                              remove_address=proxy_address.remove_address)
        stack.push_async_callback(net.proxier.close)
    if options.cluster_dns:
        gateway = pod_gateway(pod_cidr)
        # Only this node's pods (and the node) are answered: the gateway is routable from
        # the whole LAN, and an open forwarding resolver is an amplifier.
        dns = ClusterDNS(usable_upstreams(resolv.nameservers, own=[gateway]), DNSOptions(
            domain=options.cluster_domain, allow=(pod_cidr, "127.0.0.0/8")))
        try:
            await dns.start([gateway])
        except OSError as err:
            log.warning("cannot serve cluster DNS; pods use the host's resolver",
                        extra={"address": gateway, "error": str(err)})
            await dns.close()
        else:
            stack.push_async_callback(dns.close)
            net.dns, net.dns_servers = dns, (gateway,)
    return net
