"""The master on the LAN: it advertises its API as `_bramble._tcp.local.` (TXT: cluster id,
API port, version, CA fingerprint), answers for the host name `bramble.local` (so a phone
reaches https://bramble.local), and records the node agents it sees (`_bramble-node._tcp`).

`SeenNodes` is what the API lists (`bramble nodes` shows agents that run but have not
joined); `run()` is the master's "mdns" root task and the only master code that talks to
zeroconf (through bramble.mdns.Responder). A LAN without multicast, or a host without a
usable interface, is not a reason to stop the master: `run()` logs it and tries again
later, since a Pi's network often comes up after the master starts.

Invariants: what is seen is untrusted and informational (anyone can advertise a node);
it never decides readiness or membership, which come from heartbeats and the join
handshake. Entries go when their instance says goodbye or its records expire, and the
table is bounded.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from bramble import __version__, mdns

log = logging.getLogger(__name__)

MAX_SEEN = 512  # a LAN with more bramble agents than this is not a Pi cluster
RETRY_SECONDS = (2.0, 5.0, 15.0, 30.0, 60.0)
# How often the interfaces are looked at again: a Pi's DHCP lease (or a cable plugged in)
# changes the addresses the records must carry.
RECHECK_SECONDS = 60.0


@dataclass(frozen=True)
class SeenNode:
    instance: str
    node: str
    state: str
    version: str
    addresses: tuple[str, ...]
    port: int
    first_seen: str  # RFC 3339
    last_seen: str

    def as_json(self) -> dict[str, object]:
        return {"name": self.node, "state": self.state, "version": self.version,
                "addresses": list(self.addresses), "port": self.port,
                "instance": self.instance, "firstSeen": self.first_seen,
                "lastSeen": self.last_seen}


def _rfc3339(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SeenNodes:
    """Node agents seen on the LAN, by mDNS instance name."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.clock = clock
        self._items: dict[str, SeenNode] = {}

    def record(self, instance: str, resolved: mdns.Resolved | None) -> None:
        if resolved is None:
            self._items.pop(instance, None)
            return
        try:
            advert = mdns.NodeAdvert.parse(resolved.properties, resolved.addresses,
                                           resolved.port, instance)
        except mdns.RecordError as err:
            log.debug("ignoring an mDNS node record", extra={"instance": instance,
                                                             "error": str(err)})
            return
        now = _rfc3339(self.clock())
        old = self._items.get(instance)
        if old is None and len(self._items) >= MAX_SEEN:
            return
        seen = SeenNode(instance=instance, node=advert.node, state=advert.state,
                        version=advert.version, addresses=advert.addresses, port=advert.port,
                        first_seen=old.first_seen if old else now, last_seen=now)
        self._items[instance] = seen if old is None else replace(seen, first_seen=old.first_seen)
        if old is None:
            log.info("node agent seen on the LAN", extra={"node": advert.node,
                                                          "state": advert.state,
                                                          "addresses": ",".join(advert.addresses)})

    def items(self) -> list[SeenNode]:
        return sorted(self._items.values(), key=lambda s: (s.node, s.instance))


@dataclass(frozen=True)
class Advertisement:
    """What this master advertises (all known once the API listens)."""

    api_port: int
    ca_sha256: str
    bind: str
    # Never the LAN: the pod and service ranges (their bridges are skipped by name too).
    exclude: tuple[str, ...] = ("10.42.0.0/16", "10.43.0.0/16")
    instance: str = ""
    # Tests on loopback only; a real master never advertises 127.0.0.1.
    allow_loopback: bool = False

    def advert(self, addresses: Sequence[str]) -> mdns.MasterAdvert:
        return mdns.MasterAdvert(cluster=mdns.cluster_id(self.ca_sha256),
                                 api_port=self.api_port, version=__version__,
                                 ca_sha256=self.ca_sha256, addresses=tuple(addresses))


async def run(ad: Advertisement, seen: SeenNodes, *,
              retry: Sequence[float] = RETRY_SECONDS, recheck: float = RECHECK_SECONDS) -> None:
    """Advertise and browse until cancelled; start over when the LAN addresses change,
    and after a failure, a little later."""
    if _loopback(ad.bind) and not ad.allow_loopback:
        log.info("the API listens on loopback only: not advertising it on the LAN",
                 extra={"bind": ad.bind})
        await asyncio.Event().wait()  # a root task: stay until cancelled
    attempt = 0
    while True:
        try:
            await _serve(ad, seen, recheck)
            attempt = 0
        except mdns.DiscoveryError as err:
            delay = retry[min(attempt, len(retry) - 1)]
            attempt += 1
            log.warning("mDNS discovery is not running; trying again",
                        extra={"error": str(err), "retry_in": delay})
            await asyncio.sleep(delay)


def _loopback(bind: str) -> bool:
    try:
        return ipaddress.ip_address(bind).is_loopback
    except ValueError:
        return bind == "localhost"


def _choice(ad: Advertisement) -> mdns.Choice:
    return mdns.interfaces_for_bind(ad.bind, exclude=ad.exclude,
                                    allow_loopback=ad.allow_loopback)


async def _serve(ad: Advertisement, seen: SeenNodes, recheck: float) -> None:
    """Run until cancelled, or return when the interfaces changed."""
    choice = await asyncio.to_thread(_choice, ad)
    instance = mdns.instance_label(ad.instance or socket.gethostname().split(".")[0])
    advert = ad.advert(choice.addresses())
    async with mdns.Responder(choice) as responder:
        started = time.monotonic()
        name = await responder.advertise(mdns.MASTER_SERVICE, instance, ad.api_port,
                                         advert.txt(), server=mdns.HOST_NAME)
        responder.browse(mdns.NODE_SERVICE, seen.record)
        log.info("advertising the master on the LAN",
                 extra={"instance": name, "host": mdns.HOST_NAME.rstrip("."),
                        "addresses": ",".join(choice.addresses()),
                        "cluster": advert.cluster,
                        "announce_seconds": round(time.monotonic() - started, 2)})
        try:
            # No event tells of new addresses (netlink would, at more code than it's worth).
            while True:
                await asyncio.sleep(recheck)
                if await asyncio.to_thread(_choice, ad) != choice:
                    break
            log.info("LAN addresses changed; advertising again")
        finally:
            for instance_name in [s.instance for s in seen.items()]:
                seen.record(instance_name, None)
