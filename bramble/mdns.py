"""bramble on the LAN through multicast DNS: what its records say, which interfaces carry
them, and the one place that drives python-zeroconf.

- Records (pure): the master advertises `_bramble._tcp.local.` with TXT `cluster`,
  `api_port`, `version`, `ca_sha256` and the host name `bramble.local.`; a node agent
  advertises `_bramble-node._tcp.local.` with TXT `node`, `version`, `state`. `MasterAdvert`
  and `NodeAdvert` build and parse them; parsing refuses what does not fit (RecordError).
  Nothing in a record is trusted: anyone on the LAN can advertise anything. The join
  handshake (bramble/joinproof.py) is what proves a master; a record only says where to
  try.
- Interfaces (pure core, `choose_interfaces`): the LAN addresses, never the pod bridge
  (Podman's cni-podman*/podman* bridges, veths) nor loopback unless asked, nor addresses
  inside the cluster's pod/service ranges; IPv4 and IPv6 where present. zeroconf gets
  them as explicit addresses (IPv4) and interface indexes (IPv6): InterfaceChoice.Default
  crashes in a network namespace without a multicast route, and InterfaceChoice.All would
  also answer on the pod bridge.
- `Responder`: the only code that imports zeroconf (lazily: it costs ~4 MB, and only an
  agent or master that uses the LAN needs it). It runs on the caller's event loop through
  zeroconf's asyncio API; closing it sends goodbyes and is idempotent.

Liveness never comes from here: a Pi that loses power stays in other hosts' mDNS caches
until its records' TTL runs out. Nodes are alive when their heartbeats say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bramble.joinproof import is_hex64, normalize_sha256

log = logging.getLogger(__name__)

MASTER_SERVICE = "_bramble._tcp.local."
NODE_SERVICE = "_bramble-node._tcp.local."
HOST_NAME = "bramble.local."
# Interface names that are never the LAN: container bridges and the pods' ends of them.
VIRTUAL_PREFIXES = ("cni-podman", "podman", "veth", "docker", "br-", "virbr", "cni",
                    "flannel", "cali", "vxlan", "tun", "tap", "wg")
NODE_STATES = frozenset({"joining", "pending", "joined"})
RESOLVE_TIMEOUT_MS = 3000


class DiscoveryError(Exception):
    """mDNS cannot run here (no usable interface, sockets refused); the message says why."""


class RecordError(ValueError):
    """A record that is not a bramble record of the expected kind."""


# --- records ------------------------------------------------------------------------------

def _txt(properties: Mapping[Any, Any]) -> dict[str, str]:
    """zeroconf's TXT properties (bytes keys, bytes or None values) as text."""
    out: dict[str, str] = {}
    for key, value in properties.items():
        k = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
        if isinstance(value, bytes):
            out[k] = value.decode("utf-8", "replace")
        else:
            out[k] = "" if value is None else str(value)
    return out


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise RecordError(f"port {value!r} is not a number") from None
    if not 0 < port < 65536:
        raise RecordError(f"port {port} is out of range")
    return port


def url_host(address: str) -> str:
    """An address as the host part of a URL: IPv6 in brackets, its zone escaped."""
    if ":" not in address:
        return address
    return "[" + address.replace("%", "%25") + "]"


def _address_order(address: str) -> tuple[int, str]:
    """IPv4 first, then routable IPv6, then link-local IPv6 (it needs a zone)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 4:
        return 0, address
    return (2 if ip.is_link_local else 1), address


@dataclass(frozen=True)
class MasterAdvert:
    """What a master says about itself on the LAN."""

    cluster: str
    api_port: int
    version: str
    ca_sha256: str
    addresses: tuple[str, ...] = ()
    instance: str = ""

    def txt(self) -> dict[str, str]:
        return {"cluster": self.cluster, "api_port": str(self.api_port),
                "version": self.version, "ca_sha256": self.ca_sha256}

    @classmethod
    def parse(cls, properties: Mapping[Any, Any], addresses: Iterable[str] = (),
              instance: str = "") -> MasterAdvert:
        txt = _txt(properties)
        missing = [k for k in ("cluster", "api_port", "ca_sha256") if not txt.get(k)]
        if missing:
            raise RecordError(f"not a bramble master record: no {', '.join(missing)}")
        ca = normalize_sha256(txt["ca_sha256"])
        if not is_hex64(ca):
            raise RecordError(f"ca_sha256 {txt['ca_sha256']!r} is not a SHA-256 in hex")
        ordered = tuple(sorted(set(addresses), key=_address_order))
        return cls(cluster=txt["cluster"], api_port=_port(txt["api_port"]),
                   version=txt.get("version", ""), ca_sha256=ca, addresses=ordered,
                   instance=instance)

    def urls(self) -> list[str]:
        """Where to reach the API, best first."""
        return [f"https://{url_host(a)}:{self.api_port}" for a in self.addresses]


@dataclass(frozen=True)
class NodeAdvert:
    """What a node agent says about itself on the LAN."""

    node: str
    version: str
    state: str  # joining | pending | joined
    addresses: tuple[str, ...] = ()
    port: int = 0
    instance: str = ""

    def txt(self) -> dict[str, str]:
        return {"node": self.node, "version": self.version, "state": self.state}

    @classmethod
    def parse(cls, properties: Mapping[Any, Any], addresses: Iterable[str] = (),
              port: int = 0, instance: str = "") -> NodeAdvert:
        txt = _txt(properties)
        if not txt.get("node"):
            raise RecordError("not a bramble node record: no node")
        state = txt.get("state", "")
        if state not in NODE_STATES:
            raise RecordError(f"unknown node state {state!r}")
        ordered = tuple(sorted(set(addresses), key=_address_order))
        return cls(node=txt["node"], version=txt.get("version", ""), state=state,
                   addresses=ordered, port=port, instance=instance)


def instance_label(name: str) -> str:
    """A service instance label for a host or node name: one DNS label (no dots, at most
    63 bytes); the full name travels in the TXT record."""
    return name.replace(".", "-")[:63] or "bramble"


def cluster_id(ca_sha256: str) -> str:
    """The cluster's id: the first 16 hex digits of its CA's fingerprint. Stable for the
    cluster's life (the CA is never replaced silently) and needs no file of its own; two
    clusters on one LAN differ in it."""
    return normalize_sha256(ca_sha256)[:16]


# --- interfaces ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Interface:
    """One network interface as the host reports it."""

    name: str
    index: int
    up: bool
    multicast: bool
    addresses: tuple[str, ...]  # IPv4 and IPv6, IPv6 without a zone


@dataclass(frozen=True)
class Choice:
    """The interfaces mDNS runs on: IPv4 by address, IPv6 by (address, interface index)."""

    ipv4: tuple[str, ...] = ()
    ipv6: tuple[tuple[str, int], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.ipv4 or self.ipv6)

    def zeroconf_interfaces(self) -> list[str | int]:
        indexes = sorted({index for _, index in self.ipv6})
        return [*self.ipv4, *indexes]

    def addresses(self) -> list[str]:
        """The addresses to put in our own records."""
        return [*self.ipv4, *(a for a, _ in self.ipv6)]


def choose_interfaces(interfaces: Iterable[Interface], *,
                      exclude: Sequence[str] = (), only: Sequence[str] = (),
                      ipv6: bool = True, allow_loopback: bool = False) -> Choice:
    """The LAN addresses to run mDNS on (pure).

    `exclude`: networks (CIDRs) whose addresses are never the LAN (the pod and service
    ranges). `only`: when non-empty, just these addresses (a master bound to one address
    advertises only where it listens). Loopback only with `allow_loopback` (tests)."""
    excluded = [ipaddress.ip_network(n, strict=False) for n in exclude]
    wanted = {ipaddress.ip_address(a.split("%", 1)[0]) for a in only}
    v4: list[str] = []
    v6: list[tuple[str, int]] = []
    for iface in sorted(interfaces, key=lambda i: i.index):
        if not iface.up:
            continue
        if iface.name.startswith(VIRTUAL_PREFIXES):
            continue
        for text in iface.addresses:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
            if ip.is_loopback and not allow_loopback:
                continue
            if not ip.is_loopback and not iface.multicast:
                continue
            if wanted and ip not in wanted:
                continue
            if any(ip in net for net in excluded if net.version == ip.version):
                continue
            if ip.version == 4:
                if str(ip) not in v4:
                    v4.append(str(ip))
            elif ipv6 and not ip.is_loopback:  # zeroconf cannot listen on ::1
                v6.append((str(ip), iface.index))
    return Choice(tuple(v4), tuple(v6))


def host_interfaces() -> list[Interface]:
    """This host's interfaces (blocking but quick; psutil reads netlink and /sys)."""
    import psutil

    stats = psutil.net_if_stats()
    out = []
    for name, addrs in psutil.net_if_addrs().items():
        st = stats.get(name)
        try:
            index = socket.if_nametoindex(name)
        except OSError:
            continue
        flags = set((getattr(st, "flags", "") or "").split(",")) if st else set()
        addresses = tuple(a.address.split("%", 1)[0] for a in addrs
                          if a.family in (socket.AF_INET, socket.AF_INET6))
        out.append(Interface(name=name, index=index, up=bool(st and st.isup),
                             multicast="multicast" in flags or name == "lo",
                             addresses=addresses))
    return out


def interfaces_for_bind(bind: str, *, exclude: Sequence[str] = (),
                        allow_loopback: bool = False) -> Choice:
    """Where a server bound to `bind` can be reached: every LAN address for a wildcard
    (IPv6 too only for "::", which aiohttp binds dual-stack), else that one address."""
    only: tuple[str, ...] = ()
    if bind not in ("0.0.0.0", "::", ""):
        only = (bind,)
    return choose_interfaces(host_interfaces(), exclude=exclude, only=only,
                             ipv6=bind in ("::", "") or ":" in bind,
                             allow_loopback=allow_loopback)


# --- the zeroconf owner ---------------------------------------------------------------------

@dataclass(frozen=True)
class Resolved:
    """A service instance as resolved from the LAN (untrusted)."""

    instance: str
    port: int
    server: str
    addresses: tuple[str, ...]  # IPv6 link-local ones carry the zone they were seen on
    properties: dict[str, str] = field(default_factory=dict)


OnChange = Callable[[str, Resolved | None], None]


class Responder:
    """One zeroconf instance on chosen interfaces: advertises services and browses types.

    `async with Responder(choice) as r:` then `await r.advertise(...)` and `r.browse(...)`.
    Callbacks run on the event loop; `None` means the instance said goodbye (or its
    records expired - which is no statement about the host being down)."""

    def __init__(self, choice: Choice) -> None:
        if not choice:
            raise DiscoveryError("no LAN interface to run mDNS on (only loopback, the pod "
                                 "bridge or nothing is up)")
        self.choice = choice
        self._zc: Any = None
        self._infos: dict[str, Any] = {}
        self._browsers: list[Any] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def __aenter__(self) -> Responder:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def start(self) -> None:
        from zeroconf import IPVersion
        from zeroconf.asyncio import AsyncZeroconf

        version = (IPVersion.All if self.choice.ipv4 and self.choice.ipv6 else
                   IPVersion.V6Only if self.choice.ipv6 else IPVersion.V4Only)
        try:
            # Creates and binds the sockets now (non-blocking, no network round trip);
            # the engine then runs on the running loop.
            self._zc = AsyncZeroconf(interfaces=self.choice.zeroconf_interfaces(),
                                     ip_version=version)
        except (OSError, RuntimeError) as err:
            raise DiscoveryError(f"cannot start mDNS on {self.choice.addresses()}: {err}") \
                from err

    async def advertise(self, service: str, instance: str, port: int,
                        properties: Mapping[str, str], *, server: str | None = None,
                        addresses: Sequence[str] | None = None) -> str:
        """Register `instance` of `service` (renamed "name (2)" if the LAN has one) and
        announce it; returns the key to `update`/`withdraw` it with. `server` is the host
        name the records point at: zeroconf answers its A/AAAA queries too."""
        from zeroconf import Error, ServiceInfo

        assert self._zc is not None, "start() first"
        try:
            info = ServiceInfo(service, f"{instance}.{service}", port=port,
                               properties=dict(properties), server=server,
                               parsed_addresses=list(addresses or self.choice.addresses()))
            # Probing and announcing take ~1.6 s; the second await waits for the
            # announcement to go out.
            await (await self._zc.async_register_service(info, allow_name_change=True))
        except (Error, OSError, ValueError) as err:
            raise DiscoveryError(f"cannot advertise {instance}.{service}: {err}") from err
        self._infos[info.name] = info
        return str(info.name)

    async def update(self, key: str, properties: Mapping[str, str]) -> None:
        from zeroconf import Error, ServiceInfo

        old = self._infos[key]
        info = ServiceInfo(old.type, old.name, port=old.port, properties=dict(properties),
                           server=old.server, parsed_addresses=old.parsed_addresses())
        try:
            await (await self._zc.async_update_service(info))
        except (Error, OSError) as err:
            raise DiscoveryError(f"cannot update {old.name}: {err}") from err
        self._infos[key] = info

    def browse(self, service: str, on_change: OnChange) -> None:
        """Follow instances of `service`: `on_change(instance, Resolved | None)`."""
        from zeroconf import ServiceStateChange
        from zeroconf.asyncio import AsyncServiceBrowser

        assert self._zc is not None, "start() first"

        def handler(zeroconf: Any, service_type: str, name: str,
                    state_change: ServiceStateChange) -> None:
            if self._closed:
                return
            if state_change is ServiceStateChange.Removed:
                on_change(name, None)
                return
            task = asyncio.get_running_loop().create_task(
                self._resolve(service_type, name, on_change), name=f"mdns-resolve {name}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        self._browsers.append(AsyncServiceBrowser(self._zc.zeroconf, [service],
                                                  handlers=[handler]))

    async def _resolve(self, service: str, name: str, on_change: OnChange) -> None:
        from zeroconf.asyncio import AsyncServiceInfo

        info = AsyncServiceInfo(service, name)
        from zeroconf import Error

        try:
            found = await info.async_request(self._zc.zeroconf, RESOLVE_TIMEOUT_MS)
        except (Error, OSError, RuntimeError) as err:  # closing under us, a socket gone
            log.debug("mDNS resolve failed", extra={"instance": name, "error": str(err)})
            return
        if not found or self._closed:
            return
        on_change(name, Resolved(instance=name, port=int(info.port or 0),
                                 server=str(info.server or ""),
                                 addresses=tuple(info.parsed_scoped_addresses()),
                                 properties=_txt(info.properties or {})))

    async def aclose(self) -> None:
        """Stop browsing, say goodbye for what we advertised, close the sockets. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for browser in self._browsers:
            await browser.async_cancel()
        self._browsers.clear()
        if self._zc is not None:
            zc, self._zc = self._zc, None
            with contextlib.suppress(OSError):
                await zc.async_close()  # unregisters everything (goodbye packets) first
