"""bramble's mDNS records and the choice of interfaces (bramble/mdns.py, pure parts)."""

from __future__ import annotations

import pytest

from bramble import mdns
from bramble.mdns import Interface, MasterAdvert, NodeAdvert, RecordError

CA = "ab" * 32


def test_master_record_round_trip() -> None:
    advert = MasterAdvert(cluster=mdns.cluster_id(CA), api_port=6443, version="0.1.0",
                          ca_sha256=CA)
    txt = advert.txt()
    assert txt == {"cluster": "abababababababab", "api_port": "6443", "version": "0.1.0",
                   "ca_sha256": CA}
    # zeroconf hands TXT back as bytes; addresses come sorted IPv4, routable v6, link-local.
    raw = {k.encode(): v.encode() for k, v in txt.items()}
    parsed = MasterAdvert.parse(raw, ["fe80::1%eth0", "fd00::5", "10.77.0.1"], "m._x")
    assert parsed.addresses == ("10.77.0.1", "fd00::5", "fe80::1%eth0")
    assert parsed.urls() == ["https://10.77.0.1:6443", "https://[fd00::5]:6443",
                             "https://[fe80::1%25eth0]:6443"]
    assert (parsed.cluster, parsed.api_port, parsed.ca_sha256) == (txt["cluster"], 6443, CA)


@pytest.mark.parametrize(("txt", "error"), [
    ({}, "no cluster, api_port, ca_sha256"),
    ({b"cluster": b"x", b"api_port": b"6443"}, "no ca_sha256"),
    ({b"cluster": b"x", b"api_port": b"port", b"ca_sha256": CA.encode()}, "not a number"),
    ({b"cluster": b"x", b"api_port": b"70000", b"ca_sha256": CA.encode()}, "out of range"),
    ({b"cluster": b"x", b"api_port": b"1", b"ca_sha256": b"12"}, "not a SHA-256"),
    ({b"cluster": b"x", b"api_port": b"1", b"ca_sha256": None}, "no ca_sha256"),
])
def test_master_record_refusals(txt: dict, error: str) -> None:
    with pytest.raises(RecordError, match=error):
        MasterAdvert.parse(txt)


def test_master_record_fingerprint_as_a_person_writes_it() -> None:
    parsed = MasterAdvert.parse({b"cluster": b"x", b"api_port": b"1",
                                 b"ca_sha256": ":".join(["AB"] * 32).encode()})
    assert parsed.ca_sha256 == CA


def test_node_record() -> None:
    advert = NodeAdvert(node="pi1.lan", version="0.1.0", state="pending")
    parsed = NodeAdvert.parse({k.encode(): v.encode() for k, v in advert.txt().items()},
                              ["10.77.0.2"], 10250, "pi1-lan._bramble-node._tcp.local.")
    assert (parsed.node, parsed.state, parsed.port) == ("pi1.lan", "pending", 10250)
    with pytest.raises(RecordError, match="state"):
        NodeAdvert.parse({b"node": b"pi1", b"state": b"evil"})
    with pytest.raises(RecordError, match="no node"):
        NodeAdvert.parse({b"state": b"joined"})
    assert mdns.instance_label("pi1.lan.example") == "pi1-lan-example"
    assert len(mdns.instance_label("x" * 100)) == 63


LO = Interface("lo", 1, True, True, ("127.0.0.1", "::1"))
ETH = Interface("eth0", 2, True, True, ("192.168.1.20", "fe80::1", "fd00::20"))
WLAN = Interface("wlan0", 3, True, True, ("192.168.2.7",))
DOWN = Interface("eth1", 4, False, True, ("10.0.0.1",))
NOMCAST = Interface("ppp0", 5, True, False, ("100.64.0.1",))
BRIDGE = Interface("cni-podman1", 6, True, True, ("10.42.3.1", "fe80::2"))
PODMAN = Interface("podman0", 7, True, True, ("10.88.0.1",))
VETH = Interface("veth1234", 8, True, True, ("fe80::3",))
# A bridge with an unusual name still carries a pod-range address.
ODD = Interface("pods", 9, True, True, ("10.42.9.1", "192.168.50.1"))
ALL = [LO, ETH, WLAN, DOWN, NOMCAST, BRIDGE, PODMAN, VETH, ODD]


@pytest.mark.parametrize(("kwargs", "ipv4", "ipv6"), [
    # The LAN: up, multicast, not a container bridge, not loopback, not the pod range.
    ({"exclude": ("10.42.0.0/16",)}, ("192.168.1.20", "192.168.2.7", "192.168.50.1"),
     (("fe80::1", 2), ("fd00::20", 2))),
    ({"exclude": ("10.42.0.0/16",), "ipv6": False},
     ("192.168.1.20", "192.168.2.7", "192.168.50.1"), ()),
    # Without exclusions, ODD's pod-range address slips in: that is what exclude is for.
    ({}, ("192.168.1.20", "192.168.2.7", "10.42.9.1", "192.168.50.1"),
     (("fe80::1", 2), ("fd00::20", 2))),
    # A server bound to one address advertises only that one.
    ({"only": ("192.168.2.7",)}, ("192.168.2.7",), ()),
    ({"only": ("fd00::20",)}, (), (("fd00::20", 2),)),
    ({"only": ("10.0.0.1",)}, (), ()),  # on an interface that is down
    # Loopback only when asked (tests); ::1 never (zeroconf cannot listen there).
    ({"only": ("127.0.0.1",)}, (), ()),
    ({"only": ("127.0.0.1",), "allow_loopback": True}, ("127.0.0.1",), ()),
])
def test_choose_interfaces(kwargs: dict, ipv4: tuple, ipv6: tuple) -> None:
    choice = mdns.choose_interfaces(ALL, **kwargs)
    assert (choice.ipv4, choice.ipv6) == (ipv4, ipv6)


def test_choice_for_zeroconf() -> None:
    choice = mdns.choose_interfaces([ETH, WLAN])
    # IPv4 by address, IPv6 by interface index (IPV6_JOIN_GROUP needs indexes).
    assert choice.zeroconf_interfaces() == ["192.168.1.20", "192.168.2.7", 2]
    assert choice.addresses() == ["192.168.1.20", "192.168.2.7", "fe80::1", "fd00::20"]
    assert not mdns.Choice()
    with pytest.raises(mdns.DiscoveryError, match="no LAN interface"):
        mdns.Responder(mdns.Choice())
