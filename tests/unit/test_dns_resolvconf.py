"""resolv.conf parsing (as glibc reads it), upstream addresses, and dropping our own."""

from __future__ import annotations

import pytest

from bramble.node.dns.resolvconf import ResolvConf, parse, parse_upstream, upstreams

PARSE_CASES = [
    # (id, text, nameservers, search)
    ("empty", "", (), ()),
    ("systemd-resolved's stub",
     "# This is /run/systemd/resolve/stub-resolv.conf\nnameserver 127.0.0.53\n"
     "options edns0 trust-ad\nsearch lan\n", ("127.0.0.53",), ("lan",)),
    ("at most three nameservers (glibc MAXNS), duplicates once",
     "nameserver 192.168.1.1\nnameserver 192.168.1.1\nnameserver 1.1.1.1\n"
     "nameserver 2606:4700:4700::1111\nnameserver 8.8.8.8\n",
     ("192.168.1.1", "1.1.1.1", "2606:4700:4700::1111"), ()),
    ("link-local IPv6 with its scope", "nameserver fe80::1%eth0\n", ("fe80::1%eth0",), ()),
    ("bad addresses and hostnames skipped",
     "nameserver dns.example\nnameserver 300.1.1.1\nnameserver\nnameserver 10.0.0.1\n",
     ("10.0.0.1",), ()),
    ("comments: whole lines and the rest of a line",
     "; old\n# nameserver 9.9.9.9\nnameserver 10.0.0.1 # the router\nsearch a.example ; b\n",
     ("10.0.0.1",), ("a.example",)),
    ("the last search or domain line wins",
     "search a.example b.example\ndomain c.example\n", (), ("c.example",)),
    ("domain then search", "domain c.example\nsearch a.example b.example\n", (),
     ("a.example", "b.example")),
    ("trailing dots, case, the root and repeats",
     "search Home.Arpa. . lan home.arpa\n", (), ("home.arpa", "lan")),
    ("tabs and leading spaces", "  nameserver\t10.0.0.2  \n\tsearch\tlan\n", ("10.0.0.2",),
     ("lan",)),
    ("unknown keywords ignored", "sortlist 10.0.0.0/8\nlookup file bind\nnameserver ::1\n",
     ("::1",), ()),
]


@pytest.mark.parametrize(("case", "text", "nameservers", "search"), PARSE_CASES,
                         ids=[c[0] for c in PARSE_CASES])
def test_parse(case: str, text: str, nameservers: tuple, search: tuple) -> None:
    assert parse(text) == ResolvConf(nameservers, search)


UPSTREAM_CASES = [
    ("10.0.0.1", ("10.0.0.1", 53)),
    ("10.0.0.1:5353", ("10.0.0.1", 5353)),
    ("::1", ("::1", 53)),
    ("[::1]", ("::1", 53)),
    ("[fd00::1]:5353", ("fd00::1", 5353)),
    ("2001:db8:0::1", ("2001:db8::1", 53)),
    (" 127.0.0.1:53 ", ("127.0.0.1", 53)),
]


@pytest.mark.parametrize(("text", "address"), UPSTREAM_CASES)
def test_parse_upstream(text: str, address: tuple[str, int]) -> None:
    assert parse_upstream(text) == address


@pytest.mark.parametrize("text", ["", "dns.example", "10.0.0.1:0", "10.0.0.1:65536",
                                  "10.0.0.1:x", "[::1", "[::1]5353", "[::1]:", "1.2.3:53"])
def test_bad_upstreams(text: str) -> None:
    with pytest.raises(ValueError, match="bad upstream"):
        parse_upstream(text)


UPSTREAMS_CASES = [
    # (nameservers, our own addresses, what is left)
    (("10.42.3.1", "192.168.1.1"), ("10.42.3.1",), ("192.168.1.1",)),
    (("fd00:42:3::1", "192.168.1.1"), ("fd00:42:3:0::1",), ("192.168.1.1",)),  # same address
    (("10.42.3.1",), ("10.42.3.1",), ()),  # only ourselves: no upstream (SERVFAIL)
    (("127.0.0.53", "bogus", "127.0.0.53"), (), ("127.0.0.53",)),
]


@pytest.mark.parametrize(("nameservers", "own", "left"), UPSTREAMS_CASES)
def test_upstreams_never_include_ourselves(nameservers: tuple, own: tuple, left: tuple) -> None:
    assert upstreams(nameservers, own) == left
