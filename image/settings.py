"""bramble.toml: the settings a person edits on the boot partition (pure).

The file is the interface between `bramble image build` and the Pi's first boot: build
renders it with a comment above each setting, firstboot.py reads it with tomllib. Both
sides validate with the same rules (firstboot.py repeats them: it runs without bramble).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass

ROLES = ("master", "node", "up")
# A hostname label (RFC 1123), as Raspberry Pi OS accepts it.
_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# The master's own join tokens are 64 hex digits (master/pki.py).
_TOKEN = re.compile(r"^[0-9a-f]{64}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


class SettingsError(ValueError):
    """A setting a person must fix; the message names it."""


@dataclass(frozen=True)
class Settings:
    role: str
    token: str
    cluster: str = "bramble"
    hostname: str = ""
    wifi_ssid: str = ""
    wifi_psk: str = ""
    wifi_country: str = ""
    ssh_key: str = ""


def new_token() -> str:
    return secrets.token_hex(32)


def validate(s: Settings) -> Settings:
    if s.role not in ROLES:
        raise SettingsError(f"role {s.role!r} is not one of {', '.join(ROLES)}")
    if not _TOKEN.match(s.token):
        raise SettingsError("the join token must be 64 hex digits (the master's "
                            "join-token file has it; omit --token to make one)")
    if not _HOSTNAME.match(s.cluster):
        raise SettingsError(f"cluster name {s.cluster!r} must be a hostname label "
                            f"(a-z, 0-9, '-')")
    if s.hostname and not _HOSTNAME.match(s.hostname):
        raise SettingsError(f"hostname {s.hostname!r} must be a hostname label "
                            f"(a-z, 0-9, '-', at most 63)")
    if s.wifi_psk and not s.wifi_ssid:
        raise SettingsError("a Wi-Fi password needs a Wi-Fi network name (--wifi-ssid)")
    if s.wifi_ssid:
        if not 1 <= len(s.wifi_ssid.encode()) <= 32:
            raise SettingsError("a Wi-Fi network name has 1 to 32 bytes")
        if s.wifi_psk and not re.fullmatch(r"[\x20-\x7e]{8,63}", s.wifi_psk):
            raise SettingsError("a WPA Wi-Fi password has 8 to 63 characters, printable "
                                "ASCII only (letters, digits, spaces and punctuation)")
        if not _COUNTRY.match(s.wifi_country):
            raise SettingsError("Wi-Fi needs the country the Pi is in, e.g. --wifi-country "
                                "GB (the radio's legal channels depend on it)")
    for name, value in (("Wi-Fi network name", s.wifi_ssid), ("Wi-Fi password", s.wifi_psk),
                        ("SSH key", s.ssh_key)):
        if any(ord(c) < 32 for c in value):
            raise SettingsError(f"the {name} contains a control character or line break")
    if s.ssh_key and not re.match(r"^(ssh-|ecdsa-|sk-)\S+ \S+", s.ssh_key):
        raise SettingsError("the SSH key is not an OpenSSH public key line "
                            "(ssh-ed25519 AAAA... comment)")
    return s


def _q(value: str) -> str:
    # A JSON string is a valid TOML basic string for what validate() lets through.
    return json.dumps(value, ensure_ascii=False)


def render(s: Settings) -> str:
    """bramble.toml with a comment explaining each setting."""
    return f"""\
# bramble.toml - how this Pi joins its bramble cluster.
#
# Read ONCE, on the Pi's first boot (by /usr/lib/bramble/firstboot). Edit it from any
# computer after flashing the card; to apply a change on a Pi that has booted already:
#   sudo rm /var/lib/bramble/firstboot.done && sudo reboot

# What this Pi runs:
#   "master" - the control plane (one per cluster; https://bramble.local shows its page)
#   "node"   - runs the cluster's pods (flash the same node image to any number of cards)
#   "up"     - both, on a one-Pi cluster
role = {_q(s.role)}

# The cluster's name. Pis without a hostname below name themselves after it and their
# serial number, e.g. {s.cluster}-1a2b3c4d.
cluster = {_q(s.cluster)}

# The join token: a shared secret that lets nodes join the master without anyone
# approving them. Every card of one cluster must carry the same token; keep it secret.
# First boot keeps it where only root can read it and blanks it here (the Wi-Fi
# password too), so a card taken out of a running Pi gives nothing away.
token = {_q(s.token)}

# This Pi's hostname (and node name). Empty: "<cluster>-<serial number>".
hostname = {_q(s.hostname)}

[wifi]
# Leave ssid empty on a wired (Ethernet) Pi.
ssid = {_q(s.wifi_ssid)}
# The WPA password (8 to 63 characters).
psk = {_q(s.wifi_psk)}
# Two-letter country code (GB, US, DE, ...): it decides which radio channels are legal.
country = {_q(s.wifi_country)}

[ssh]
# One OpenSSH public key line (ssh-ed25519 AAAA... you@laptop), allowed to log in as
# root; also turns the SSH server on. Empty: SSH stays as the OS image had it.
authorized_key = {_q(s.ssh_key)}
"""
