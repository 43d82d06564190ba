"""The node agent on the LAN: it advertises itself as `_bramble-node._tcp.local.` (TXT: node
name, version, state joining|pending|joined), so it appears at the master with no
configuration, and it finds masters (`_bramble._tcp.local.`) when started without
--master.

`NodeDiscovery` is the agent's only way to mDNS (through bramble.mdns.Responder, the only
code that imports zeroconf). It lives for the agent's life: joining reads `masters()` and
waits on `changed`; afterwards it keeps advertising the node as joined.

Which interfaces: with --master, the one address this host reaches the master from (and
none when that is loopback: a master on this host needs no LAN); without it, every LAN
address (`bramble.mdns.choose_interfaces`: not the pod bridge, not the pod/service ranges).

Invariants: a master record is untrusted - it says only where to try the join handshake
(node/join.py), which proves the master. Liveness is never read from here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from bramble import __version__, mdns

log = logging.getLogger(__name__)

# Never the LAN: the default pod and service ranges.
EXCLUDE = ("10.42.0.0/16", "10.43.0.0/16")


def lan_choice(master_address: str | None = None, *,
               exclude: Sequence[str] = EXCLUDE) -> mdns.Choice:
    """The interfaces to use (blocking but quick: call it in a thread)."""
    if master_address:
        ip = master_address.split("%", 1)[0]
        if ip.startswith("127.") or ip == "::1":
            return mdns.Choice()
        return mdns.choose_interfaces(mdns.host_interfaces(), only=(ip,), exclude=exclude)
    return mdns.choose_interfaces(mdns.host_interfaces(), exclude=exclude)


class NodeDiscovery:
    """Browse for masters and advertise this node, on `choice`."""

    def __init__(self, node: str, choice: mdns.Choice, *, port: int = 0,
                 browse: bool = True) -> None:
        self.node = node
        self.choice = choice
        self.port = port
        self.state = "joining"
        self.changed = asyncio.Event()  # set whenever the set of masters changes
        self._browse = browse
        self._masters: dict[str, mdns.MasterAdvert] = {}
        self._responder: mdns.Responder | None = None
        self._announcing: asyncio.Task[None] | None = None
        self._key = ""

    async def start(self) -> None:
        """Open the sockets and browse at once; announce the node in the background
        (probing and announcing take ~1.6 s, which joining need not wait for)."""
        responder = mdns.Responder(self.choice)
        responder.start()
        self._responder = responder
        if self._browse:
            responder.browse(mdns.MASTER_SERVICE, self._on_master)
        self._announcing = asyncio.create_task(self._announce(responder),
                                               name="mdns-announce-node")

    async def _announce(self, responder: mdns.Responder) -> None:
        announced = self.state
        advert = mdns.NodeAdvert(node=self.node, version=__version__, state=announced)
        try:
            self._key = await responder.advertise(mdns.NODE_SERVICE,
                                                  mdns.instance_label(self.node), self.port,
                                                  advert.txt())
        except mdns.DiscoveryError as err:
            log.warning("cannot advertise the node on the LAN", extra={"error": str(err)})
            return
        log.info("advertising the node on the LAN",
                 extra={"node": self.node, "addresses": ",".join(self.choice.addresses()),
                        "browsing": self._browse})
        if self.state != announced:  # it changed while announcing
            await self._update()

    async def set_state(self, state: str) -> None:
        """Say what the node is now; never waits for the first announcement (which
        carries the newest state when it completes)."""
        if state == self.state:
            return
        self.state = state
        if self._announcing is not None and self._announcing.done():
            await self._update()

    async def _update(self) -> None:
        if self._responder is None or not self._key:
            return
        advert = mdns.NodeAdvert(node=self.node, version=__version__, state=self.state)
        try:
            await self._responder.update(self._key, advert.txt())
        except mdns.DiscoveryError as err:  # what others see is informational only
            log.warning("cannot update the node's mDNS record", extra={"error": str(err)})

    def _on_master(self, instance: str, resolved: mdns.Resolved | None) -> None:
        if resolved is None:
            if self._masters.pop(instance, None) is not None:
                self.changed.set()
            return
        try:
            advert = mdns.MasterAdvert.parse(resolved.properties, resolved.addresses,
                                             instance)
        except mdns.RecordError as err:
            log.info("ignoring an mDNS record that is not a bramble master",
                     extra={"instance": instance, "error": str(err)})
            return
        if not advert.addresses:
            return
        if self._masters.get(instance) != advert:
            self._masters[instance] = advert
            log.info("master seen on the LAN", extra={
                "instance": instance, "cluster": advert.cluster,
                "addresses": ",".join(advert.addresses), "api_port": advert.api_port})
            self.changed.set()

    def masters(self, cluster: str = "") -> list[mdns.MasterAdvert]:
        """The masters seen now (of `cluster` only, when given), in a stable order; a
        later change sets `changed` again (reading clears it)."""
        self.changed.clear()
        found = [m for m in self._masters.values() if not cluster or m.cluster == cluster]
        return sorted(found, key=lambda m: (m.cluster, m.instance))

    async def wait_changed(self, timeout: float) -> None:  # noqa: ASYNC109 - a poll bound
        """Until the masters change after the last `masters()`, or `timeout` passes."""
        try:
            await asyncio.wait_for(self.changed.wait(), timeout)
        except TimeoutError:
            pass

    async def aclose(self) -> None:
        announcing, self._announcing = self._announcing, None
        if announcing is not None:
            announcing.cancel()
            await asyncio.gather(announcing, return_exceptions=True)
        responder, self._responder = self._responder, None
        if responder is not None:
            await responder.aclose()
