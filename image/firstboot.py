#!/usr/bin/python3
"""bramble's first boot on a Pi: /usr/lib/bramble/firstboot, run by bramble-firstboot.service.

Standard library only (it runs before bramble is installed) and Python 3.11+ (tomllib:
Raspberry Pi OS Bookworm and Debian 12 have 3.11). It reads bramble.toml from the boot
partition and makes the Pi what the file says. Invariants:
- every step is idempotent, so a rerun (rm the marker, reboot) is safe, and a failed run
  (no network for apt) is simply retried at the next boot: the marker
  /var/lib/bramble/firstboot.done is written only when everything succeeded;
- nothing depends on a PARTUUID or the disk id (Raspberry Pi OS's own first boot changes
  them) and Raspberry Pi OS's own init is never touched: cmdline.txt only gains tokens;
- all paths hang off `root` and all commands go through `run`, so tests drive it on a
  scratch directory with a recording runner;
- the secrets leave the card: once applied, the join token and the Wi-Fi password are
  blanked in bramble.toml (anyone holding the card could read its FAT partition; Raspberry
  Pi OS deletes its own userconf and wpa files the same way) and `secrets_removed = true`
  is added, so a rerun keeps what the Pi has (the token in the 0600 env file or the
  master's data dir, the Wi-Fi connection) instead of reading the blanks as "none".
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

MARKER = "var/lib/bramble/firstboot.done"
WHEELS = "usr/lib/bramble/wheels"
VENV = "opt/bramble/venv"
ENV_FILE = "etc/bramble/bramble.env"
UNITS = {"master": "bramble-master.service", "node": "bramble-node.service",
         "up": "bramble-up.service"}
MEMORY_CGROUP = ("cgroup_enable=memory", "cgroup_memory=1")

Runner = Callable[[Sequence[str], bytes | None], int]


class FirstBootError(Exception):
    pass


def say(message: str) -> None:
    print(f"bramble-firstboot: {message}", flush=True)


def run_command(argv: Sequence[str], stdin: bytes | None = None) -> int:
    say("running " + " ".join(argv))
    return subprocess.run(list(argv), input=stdin, check=False).returncode


def boot_dir(root: Path) -> Path:
    # /boot/firmware since Bookworm; /boot on older releases and plain Debian.
    for sub in ("boot/firmware", "boot"):
        if (root / sub / "bramble.toml").is_file():
            return root / sub
    raise FirstBootError("no bramble.toml in /boot/firmware or /boot")


def load_settings(path: Path) -> dict[str, str]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise FirstBootError(f"{path}: {err}") from err
    wifi, ssh = raw.get("wifi") or {}, raw.get("ssh") or {}
    removed = raw.get("secrets_removed", False)
    if not isinstance(removed, bool):
        raise FirstBootError(f"{path}: secrets_removed is true or false")
    s = {"role": raw.get("role", ""), "cluster": raw.get("cluster") or "bramble",
         "token": raw.get("token", ""), "hostname": raw.get("hostname", ""),
         "wifi_ssid": wifi.get("ssid", ""), "wifi_psk": wifi.get("psk", ""),
         "wifi_country": wifi.get("country", ""), "ssh_key": ssh.get("authorized_key", "")}
    if not all(isinstance(v, str) for v in s.values()):
        raise FirstBootError(f"{path}: every setting is a quoted string")
    # The same rules as bramble's image/settings.py (this script cannot import it).
    if s["role"] not in UNITS:
        raise FirstBootError(f"{path}: role must be one of {', '.join(UNITS)}")
    # Empty: a node waits for approval, a master makes its own (or, after first boot,
    # both keep the token they already have).
    if s["token"] and not re.fullmatch(r"[0-9a-f]{64}", s["token"]):
        raise FirstBootError(f"{path}: token must be 64 hex digits")
    for key in ("hostname", "cluster"):
        if s[key] and not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", s[key]):
            raise FirstBootError(f"{path}: {key} {s[key]!r} is not a hostname label")
    if any(ord(c) < 32 or ord(c) == 127 for v in s.values() for c in v):
        raise FirstBootError(f"{path}: a setting contains a control character")
    if s["wifi_ssid"] and not 1 <= len(s["wifi_ssid"].encode()) <= 32:
        raise FirstBootError(f"{path}: the Wi-Fi ssid has 1 to 32 bytes")
    if s["wifi_psk"] and not re.fullmatch(r"[\x20-\x7e]{8,63}", s["wifi_psk"]):
        raise FirstBootError(f"{path}: the Wi-Fi psk has 8 to 63 printable ASCII characters")
    s["secrets_removed"] = "yes" if removed else ""
    return s


_SECRET_LINE = re.compile(r'^(?P<key>\s*(?:token|psk)\s*=\s*)(?:"(?:[^"\\]|\\.)*"|\'[^\']*\')'
                          r'(?P<rest>\s*(?:#.*)?)$', re.M)


def remove_secrets(path: Path) -> bool:
    """Blank the token and the Wi-Fi password in bramble.toml, marking the file so a
    rerun knows; False (file untouched) when the edit cannot be proved right, e.g. a
    hand-written file laid out unlike ours."""
    text = path.read_text(encoding="utf-8-sig")
    before = tomllib.loads(text)
    if before.get("secrets_removed") is True:
        return True
    edited = _SECRET_LINE.sub(lambda m: m["key"] + '""' + m["rest"], text)
    edited = ("# First boot applied the join token and the Wi-Fi password and removed them\n"
              "# from this card; the Pi keeps them where only root can read them.\n"
              "secrets_removed = true\n\n" + edited)
    try:
        after = tomllib.loads(edited)
    except tomllib.TOMLDecodeError:
        return False
    want = {**before, "secrets_removed": True}
    if "token" in want:
        want["token"] = ""
    if isinstance(want.get("wifi"), dict) and "psk" in want["wifi"]:
        want["wifi"] = {**want["wifi"], "psk": ""}
    if after != want:
        return False
    _atomic(path, edited)
    return True


def memory_cgroup(root: Path, boot: Path) -> bool:
    """Enable the memory cgroup in cmdline.txt if the kernel runs without it; True when a
    reboot is needed for that."""
    controllers = root / "sys/fs/cgroup/cgroup.controllers"
    if controllers.is_file() and "memory" in controllers.read_text().split():
        return False
    cgroups = root / "proc/cgroups"
    if cgroups.is_file() and re.search(r"^memory\s+\d+\s+\d+\s+1$", cgroups.read_text(), re.M):
        return False
    cmdline = boot / "cmdline.txt"
    if not cmdline.is_file():
        say("warning: no cmdline.txt; enable the memory cgroup in the boot loader yourself")
        return False
    edited = with_memory_cgroup(cmdline.read_text())
    if edited is None:
        say("warning: the memory cgroup is asked for in cmdline.txt but the kernel has none")
        return False
    _atomic(cmdline, edited)
    say("enabled the memory cgroup in cmdline.txt: one more reboot")
    return True


def with_memory_cgroup(cmdline: str) -> str | None:
    """cmdline.txt with the memory cgroup enabled, or None when it already is. One line;
    every other token (root=, init=, PARTUUIDs) kept as it is. The image build makes the
    same edit (image/overlay.py imports this)."""
    tokens = cmdline.split()
    if all(t in tokens for t in MEMORY_CGROUP):
        return None
    return " ".join([*tokens, *(t for t in MEMORY_CGROUP if t not in tokens)]) + "\n"


def serial_number(root: Path) -> str:
    for path in (root / "proc/device-tree/serial-number", root / "sys/firmware/devicetree/"
                 "base/serial-number"):
        if path.is_file():
            serial = path.read_bytes().strip(b"\0\n ").decode(errors="ignore")
            if serial:
                return serial.lower()[-8:]
    cpuinfo = root / "proc/cpuinfo"
    if cpuinfo.is_file():
        m = re.search(r"^Serial\s*:\s*([0-9a-fA-F]+)", cpuinfo.read_text(), re.M)
        if m:
            return m.group(1).lower()[-8:]
    machine_id = root / "etc/machine-id"
    if machine_id.is_file() and machine_id.read_text().strip():
        return machine_id.read_text().strip()[:8]
    raise FirstBootError("no serial number and no machine id to name this Pi after")


def hostname(root: Path, s: dict[str, str], run: Runner) -> str:
    name = s["hostname"] or f"{s['cluster']}-{serial_number(root)}"
    _atomic(root / "etc/hostname", name + "\n")
    hosts = root / "etc/hosts"
    lines = hosts.read_text().splitlines() if hosts.is_file() else [
        "127.0.0.1\tlocalhost", "::1\t\tlocalhost ip6-localhost ip6-loopback"]
    lines = [line for line in lines if not line.startswith("127.0.1.1")]
    lines.append(f"127.0.1.1\t{name}")
    _atomic(hosts, "\n".join(lines) + "\n")
    run(["hostname", name], None)
    return name


def keyfile_string(value: str) -> str:
    """A string value in NetworkManager's keyfile format (a GLib key file): backslashes
    doubled (any other backslash sequence is an error to GLib), spaces at either end
    written as \\s (GLib drops whitespace around a value). Control characters never get
    here: load_settings refuses them."""
    escaped = value.replace("\\", "\\\\")
    core = escaped.strip(" ")
    if not core:
        return "\\s" * len(escaped)
    lead = len(escaped) - len(escaped.lstrip(" "))
    trail = len(escaped) - len(escaped.rstrip(" "))
    return "\\s" * lead + core + "\\s" * trail


def keyfile_ssid(ssid: str) -> str:
    """The ssid= value NetworkManager reads back as exactly these bytes: the plain text
    when that is unambiguous, else the list of byte values ("104;105;"), the form NM
    itself writes for such SSIDs. Not plain: bytes outside printable ASCII (NM's rule;
    UTF-8 names included), ';' (NM would read "1;2;" as bytes and unescape "\\;"), a
    backslash, and spaces at either end."""
    data = ssid.encode()
    if (all(0x20 <= b <= 0x7E and b not in b";\\" for b in data)
            and data == data.strip(b" ")):
        return ssid
    return "".join(f"{b};" for b in data)


def wpa_psk(ssid: str, passphrase: str) -> str:
    """The WPA pre-shared key from a passphrase, as wpa_passphrase computes it."""
    return hashlib.pbkdf2_hmac("sha1", passphrase.encode(), ssid.encode(), 4096, 32).hex()


def wifi(root: Path, s: dict[str, str], run: Runner) -> None:
    if not s["wifi_ssid"] or (s["secrets_removed"] and not s["wifi_psk"]):
        return  # wired, or set up by an earlier first boot (its password is off the card)
    if s["wifi_country"]:
        if run(["raspi-config", "nonint", "do_wifi_country", s["wifi_country"]], None) != 0:
            run(["iw", "reg", "set", s["wifi_country"]], None)
    run(["rfkill", "unblock", "wifi"], None)
    if (root / "etc/NetworkManager").is_dir():
        uid = uuid.uuid5(uuid.NAMESPACE_URL, "bramble-wifi:" + s["wifi_ssid"])
        security = (f"\n[wifi-security]\nkey-mgmt=wpa-psk\npsk={keyfile_string(s['wifi_psk'])}\n"
                    if s["wifi_psk"] else "\n")
        conf = (f"[connection]\nid=bramble-wifi\nuuid={uid}\ntype=wifi\nautoconnect=true\n\n"
                f"[wifi]\nmode=infrastructure\nssid={keyfile_ssid(s['wifi_ssid'])}\n{security}\n"
                f"[ipv4]\nmethod=auto\n\n[ipv6]\nmethod=auto\n")
        path = root / "etc/NetworkManager/system-connections/bramble-wifi.nmconnection"
        _atomic(path, conf, mode=0o600)
        run(["nmcli", "connection", "reload"], None)
        run(["nmcli", "connection", "up", "bramble-wifi"], None)
        return
    # wpa_supplicant (Raspberry Pi OS before Bookworm): the SSID as unquoted hex and the
    # key as the 64 hex digits wpa_passphrase derives, so nothing needs escaping (a quoted
    # passphrase holding both '"' and '#' would lose its tail to the comment stripper).
    network = f'network={{\n\tssid={s["wifi_ssid"].encode().hex()}\n'
    if s["wifi_psk"]:
        network += f"\tpsk={wpa_psk(s['wifi_ssid'], s['wifi_psk'])}\n}}\n"
    else:
        network += "\tkey_mgmt=NONE\n}\n"
    conf = ("ctrl_interface=DIR=/var/run/wpa_supplicant GROUP=netdev\nupdate_config=1\n"
            f"country={s['wifi_country']}\n\n{network}")
    _atomic(root / "etc/wpa_supplicant/wpa_supplicant.conf", conf, mode=0o600)


def ssh(root: Path, s: dict[str, str], run: Runner) -> None:
    if not s["ssh_key"]:
        return
    keys = root / "root/.ssh/authorized_keys"
    keys.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    present = keys.read_text().splitlines() if keys.is_file() else []
    if s["ssh_key"] not in present:
        _atomic(keys, "\n".join([*present, s["ssh_key"]]) + "\n", mode=0o600)
    run(["systemctl", "enable", "--now", "ssh.service"], None)


def packages(root: Path, role: str, run: Runner) -> None:
    missing = []
    # Only pods need Podman: a master-only Pi stays without it (and without the network
    # its installation needs).
    if role != "master" and not any((root / d / "podman").exists()
                                    for d in ("usr/bin", "usr/local/bin")):
        missing.append("podman")
    if run(["python3", "-c", "import ensurepip, venv"], None) != 0:
        missing.append("python3-venv")
    if not missing:
        return
    env_prefix = ["env", "DEBIAN_FRONTEND=noninteractive"]
    if (run([*env_prefix, "apt-get", "update"], None) != 0
            or run([*env_prefix, "apt-get", "install", "-y", *missing], None) != 0):
        raise FirstBootError(f"cannot install {' '.join(missing)} (no network?); "
                             f"trying again at the next boot")


def install_bramble(root: Path, run: Runner) -> None:
    venv, wheels = root / VENV, root / WHEELS
    if not (venv / "bin/python").exists() and run(["python3", "-m", "venv", str(venv)], None):
        raise FirstBootError("cannot make the venv " + str(venv))
    if run([str(venv / "bin/pip"), "install", "--no-index", "--find-links", str(wheels),
            "--upgrade", "bramble"], None):
        raise FirstBootError("cannot install bramble from " + str(wheels))


def role_setup(root: Path, s: dict[str, str], run: Runner) -> None:
    role = s["role"]
    env = ""
    if role == "node":
        # In the environment, not the arguments: /proc/PID/cmdline is world-readable,
        # /proc/PID/environ and this file (0600) are root's only.
        token = s["token"] or _env_value(root / ENV_FILE, "BRAMBLE_JOIN_TOKEN")
        env = f"BRAMBLE_JOIN_TOKEN={token}\n" if token else ""
    _atomic(root / ENV_FILE, "# Written by bramble-firstboot from bramble.toml\n" + env,
            mode=0o600)
    if role in ("master", "up") and s["token"]:
        # The master's own join token becomes the one in bramble.toml, so node cards
        # built with the same token join it (the token goes through stdin, not argv).
        if run([str(root / VENV / "bin/python"), "-m", "bramble.image.seed",
                str(root / "var/lib/bramble/master")], s["token"].encode()):
            raise FirstBootError("cannot set the master's join token")
    for other, unit in UNITS.items():
        if other != role:
            run(["systemctl", "disable", unit], None)
    if run(["systemctl", "enable", UNITS[role]], None):
        raise FirstBootError(f"cannot enable {UNITS[role]}")


def main(argv: Sequence[str] | None = None, run: Runner = run_command) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/", help=argparse.SUPPRESS)  # tests only
    args = parser.parse_args(argv)
    root = Path(args.root)
    try:
        boot = boot_dir(root)
        s = load_settings(boot / "bramble.toml")
        reboot = memory_cgroup(root, boot)
        name = hostname(root, s, run)
        wifi(root, s, run)
        ssh(root, s, run)
        packages(root, s["role"], run)
        install_bramble(root, run)
        role_setup(root, s, run)
    except FirstBootError as err:
        say(f"error: {err}")
        return 1
    _atomic(root / MARKER, time.strftime("%Y-%m-%dT%H:%M:%S%z\n"))
    try:
        removed = remove_secrets(boot / "bramble.toml")
    except (OSError, tomllib.TOMLDecodeError):
        removed = False
    if not removed:
        say("warning: could not remove the join token and Wi-Fi password from "
            "bramble.toml (laid out unlike the file bramble writes); delete them by hand")
    say(f"done: {name} is a bramble {s['role']}")
    if reboot:
        run(["systemctl", "reboot", "--no-block"], None)
    else:
        run(["systemctl", "start", "--no-block", UNITS[s["role"]]], None)
    return 0


def _env_value(path: Path, key: str) -> str:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return ""
    return next((line.partition("=")[2] for line in lines if line.startswith(key + "=")), "")


def _atomic(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
