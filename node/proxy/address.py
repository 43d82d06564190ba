"""ClusterIPs as local addresses: the proxy listens on them, so they must exist here.

Each ClusterIP the proxy serves is put, as a /32 (/128), on a dummy link (`bramble0`,
created when missing), as kube-proxy's IPVS mode does with kube-ipvs0: the kernel then
delivers traffic to it locally, whether it comes from a pod through the pod bridge or
from the node itself. The link is left down: the local route exists anyway. A kernel
built without the dummy driver (some VMs; Raspberry Pi OS has it) gets the addresses on
`lo` instead, which behaves the same for local delivery.

The Proxier receives these functions as hooks (tests pass none and use loopback
addresses, and never touch the host's network). Both are idempotent; they run `ip` as a
subprocess without blocking the event loop and raise AddressError when it fails.
"""

from __future__ import annotations

import ipaddress

from .. import hostcmd
from .errors import AddressError

LINK = "bramble0"
FALLBACK_LINK = "lo"


async def _ip(*args: str) -> tuple[int, str]:
    result = await hostcmd.run("ip", *args)
    if result.code == 127:  # no iproute2
        raise AddressError(result.err)
    return result.code, result.err


def _cidr(ip: str) -> tuple[str, str]:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError as err:
        raise AddressError(f"not an IP address: {ip!r}") from err
    return ("-6", f"{address}/128") if address.version == 6 else ("-4", f"{address}/32")


async def ensure_link(link: str = LINK) -> str:
    """Create the dummy link if missing; returns the link to put addresses on."""
    code, err = await _ip("link", "add", link, "type", "dummy")
    if not code or "File exists" in err:
        return link
    if "Unknown device type" in err or "not supported" in err.lower():
        return FALLBACK_LINK
    raise AddressError(f"cannot create dummy link {link}: {err}")


async def ensure_address(ip: str, link: str = LINK) -> str:
    """Make `ip` a local address (on `link`, else on lo); returns the link used."""
    version, cidr = _cidr(ip)
    target = await ensure_link(link)
    # `replace` succeeds whether or not the address is there already; nodad: an IPv6
    # address would otherwise stay tentative (unusable) on a link that is down.
    extra = ("nodad",) if version == "-6" else ()
    code, err = await _ip(version, "addr", "replace", cidr, "dev", target, *extra)
    if code:
        raise AddressError(f"cannot add {cidr} to {target}: {err}")
    return target


async def remove_address(ip: str, link: str = LINK) -> None:
    """Take `ip` off `link` (or off lo, where ensure_address may have put it); nothing to
    do when it is not there."""
    version, cidr = _cidr(ip)
    code, err = await _ip(version, "addr", "del", cidr, "dev", link)
    if code and "Cannot find device" in err:
        code, err = await _ip(version, "addr", "del", cidr, "dev", FALLBACK_LINK)
    gone = ("Address not found", "Cannot assign requested address", "Cannot find device",
            "does not exist")
    if code and not any(s in err for s in gone):
        raise AddressError(f"cannot remove {cidr}: {err}")
