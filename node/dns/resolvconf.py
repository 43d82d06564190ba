"""The host's resolver settings, and upstream addresses, for the cluster DNS (pure).

`parse` reads /etc/resolv.conf text as glibc does (resolv.conf(5)): `nameserver` lines give
the upstreams (the first three valid addresses, IPv4 or IPv6, with a %scope for link-local
IPv6), the last `search` or `domain` line gives the search list. Lines starting with "#"
or ";" are comments, and so is anything after one of those on a line; unknown keywords
and bad addresses are skipped, never raised (a hand-edited file must not stop the agent).
Unlike glibc, no nameserver means no upstream (glibc would use 127.0.0.1, which on a node
is rarely a resolver): the responder then answers SERVFAIL for names outside the cluster.

The agent runs in the host's network namespace, so a loopback upstream such as
systemd-resolved's 127.0.0.53 works for the responder, where it would not for pods: that
is why pods get the responder and the responder gets the host's upstreams.

`upstreams` drops the responder's own addresses (the caller gives them), so it never
forwards a query to itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

MAX_NAMESERVERS = 3  # glibc's MAXNS: later nameserver lines are ignored
DNS_PORT = 53


@dataclass(frozen=True)
class ResolvConf:
    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()


def _address(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def parse(text: str) -> ResolvConf:
    nameservers: list[str] = []
    search: list[str] = []
    for line in text.splitlines():
        for mark in ("#", ";"):
            line = line.split(mark, 1)[0]
        words = line.split()
        if not words:
            continue
        keyword, args = words[0], words[1:]
        if keyword == "nameserver" and args:
            address = _address(args[0])
            if address and address not in nameservers and len(nameservers) < MAX_NAMESERVERS:
                nameservers.append(address)
        elif keyword in ("search", "domain"):
            # The last of either wins; "domain" takes one name.
            names = args[:1] if keyword == "domain" else args
            search = list(dict.fromkeys(n.rstrip(".").lower() for n in names if n.strip(".")))
    return ResolvConf(tuple(nameservers), tuple(search))


def parse_upstream(value: str) -> tuple[str, int]:
    """"ip", "ip:port", "[ipv6]:port" or a bare IPv6 address -> (ip, port).
    ValueError when it is none of these."""
    host, port = value.strip(), DNS_PORT
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            raise ValueError(f"bad upstream {value!r}: no closing ]")
        rest = host[end + 1:]
        host = host[1:end]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"bad upstream {value!r}")
            port = _port(rest[1:], value)
    elif host.count(":") == 1:
        host, raw = host.split(":")
        port = _port(raw, value)
    address = _address(host)
    if address is None:
        raise ValueError(f"bad upstream {value!r}: not an IP address")
    return address, port


def _port(raw: str, value: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"bad upstream {value!r}: bad port")
    return int(raw)


def upstreams(nameservers: Iterable[str], own: Iterable[str] = ()) -> tuple[str, ...]:
    """The nameservers that are not one of the responder's own addresses (compared as
    addresses: "::1" and "0:0::1" are the same)."""
    mine = {a for a in (_address(o) for o in own) if a}
    out = []
    for ns in nameservers:
        address = _address(ns)
        if address and address not in mine and address not in out:
            out.append(address)
    return tuple(out)
