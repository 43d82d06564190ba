"""The flat pod network on this host: the podCIDR, the host-gw routes and NAT exceptions.

node/network.py decides; this module is the one owner of the host's routing state:
- `wait_pod_cidr` waits for the master's node IPAM to give this Node its spec.podCIDR
  (the agent's Podman network is then made with exactly that subnet);
- `PodRoutes.run` keeps the kernel's routes of protocol 77 and our iptables NAT
  exceptions equal to what the Nodes want, after every change of the Node set and every
  `resync` seconds (someone may flush routes; a failed command is retried then, sooner
  after a failure). It reads back what the kernel holds before each change, so a
  restarted agent adopts the routes its predecessor left and removes stale ones.
- IPv4 forwarding is switched on (the pod bridge and the LAN are different links).

Stopping leaves routes and rules in place: pods keep talking while the agent restarts.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from bramble.client import Client, ClientError
from bramble.kube.errors import StatusError

from . import hostcmd, network
from .informer import Informer

log = logging.getLogger(__name__)

IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


async def wait_pod_cidr(client: Client, name: str, *, poll: float = 0.25) -> str:
    """This Node's spec.podCIDR, once the master has assigned one (the Node must exist)."""
    loop = asyncio.get_running_loop()
    next_log = loop.time()
    while True:
        try:
            node = await client.request("GET", f"/api/v1/nodes/{name}")
            cidr = network.pod_cidr(node)
            if cidr is not None:
                return cidr
        except (ClientError, StatusError, OSError) as err:
            log.debug("cannot read the Node yet", extra={"error": str(err)})
        if loop.time() >= next_log:  # say so at once, then every half minute
            log.info("waiting for the master to assign this node a pod subnet",
                     extra={"node": name})
            next_log = loop.time() + 30
        await asyncio.sleep(poll)


async def enable_forwarding(path: Path = IP_FORWARD) -> None:
    def enable() -> None:
        if path.read_text().strip() != "1":
            path.write_text("1\n")
            log.info("enabled IPv4 forwarding")
    try:
        await asyncio.to_thread(enable)
    except OSError as err:  # bramble doctor reports it too
        log.warning("cannot enable IPv4 forwarding; pods on other Pis are unreachable",
                    extra={"error": str(err)})


class PodRoutes:
    """Keeps this host's routes and NAT exceptions in step with the Nodes."""

    def __init__(self, name: str, pod_cidr: str, nodes: Informer, *,
                 resync: float = 60.0, retry: float = 5.0) -> None:
        self.name = name
        self.pod_cidr = pod_cidr
        self.nodes = nodes
        self.resync = resync
        self.retry = retry
        # The routes the last pass put in place when all its commands worked, else None.
        self.applied: list[network.Route] | None = None

    async def run(self) -> None:
        await self.nodes.synced.wait()
        await enable_forwarding()
        full = True
        while True:
            ok = await self.sync(full=full)
            try:
                async with asyncio.timeout(self.resync if ok else self.retry):
                    await self.nodes.changed()
                full = False
            except TimeoutError:
                full = True  # the periodic pass (or the retry): read the kernel again

    async def sync(self, *, full: bool = True) -> bool:
        """One pass; False when some command failed (it is retried soon). Unless `full`,
        a pass whose routes are the ones applied last reads nothing from the kernel:
        Nodes change with every status report, their routes hardly ever."""
        nodes = self.nodes.values()
        own = next((n for n in nodes if (n.get("metadata") or {}).get("name") == self.name),
                   None)
        address = network.internal_ip(own) if own is not None else None
        if address is None:
            return True  # not registered yet: nothing can be decided
        desired = network.desired_routes(self.name, address, nodes)
        if not full and desired == self.applied:
            return True
        ok = await self._routes(desired)
        ok = await self._nat(network.nat_exceptions(self.pod_cidr, desired)) and ok
        self.applied = desired if ok else None
        return ok

    async def _routes(self, desired: list[network.Route]) -> bool:
        ok = True
        for family in ("-4", "-6"):
            shown = await hostcmd.run("ip", family, "route", "show", "proto",
                                      network.ROUTE_PROTO)
            if not shown.ok:
                log.warning("cannot list routes", extra={"error": shown.err})
                return False
            current = network.parse_routes(shown.out)
            wanted = [r for r in desired if (":" in r.dest) == (family == "-6")]
            add, delete = network.route_changes(wanted, current)
            for op, routes in (("replace", add), ("del", delete)):
                for route in routes:
                    done = await hostcmd.run(*network.ip_route_args(op, route))
                    if done.ok:
                        log.info("route %s", "added" if op == "replace" else "removed",
                                 extra={"dest": route.dest, "via": route.via,
                                        "node": route.node})
                    else:
                        ok = False
                        log.warning("cannot change a pod route", extra={
                            "op": op, "dest": route.dest, "via": route.via,
                            "error": done.err})
        return ok

    async def _nat(self, desired: list[network.NatException]) -> bool:
        shown = await hostcmd.run("iptables", "-w", "5", "-t", "nat", "-S", "POSTROUTING")
        if not shown.ok:
            log.warning("cannot list the NAT rules", extra={"error": shown.err})
            return False
        add, delete = network.nat_changes(desired, network.parse_nat_rules(shown.out))
        ok = True
        for op, exceptions in (("-I", add), ("-D", delete)):
            for exception in exceptions:
                done = await hostcmd.run(*network.iptables_args(op, network.nat_rule(exception)))
                if not done.ok:
                    ok = False
                    log.warning("cannot change a NAT exception", extra={
                        "op": op, "source": exception.source, "dest": exception.dest,
                        "error": done.err})
        return ok
