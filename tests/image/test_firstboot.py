"""The first-boot script on a scratch root with a recording command runner: what it
writes, which commands it runs, and that a second run changes nothing more."""

from __future__ import annotations

import argparse
import stat
import tomllib
from collections.abc import Sequence
from pathlib import Path

import pytest

from bramble.image import cli, firstboot
from bramble.image.seed import seed
from bramble.image.settings import Settings, new_token, render
from bramble.master import pki

CMDLINE = "console=tty1 root=PARTUUID=12345678-02 rootwait init=/usr/lib/raspberrypi-sys-mods/firstboot\n"


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str], stdin: bytes | None) -> int:
        self.calls.append(tuple(argv))
        return 0


def fake_pi(root: Path, settings: Settings, *, memory: bool) -> None:
    boot = root / "boot/firmware"
    boot.mkdir(parents=True)
    (boot / "cmdline.txt").write_text(CMDLINE)
    (boot / "bramble.toml").write_text(render(settings))
    (root / "sys/fs/cgroup").mkdir(parents=True)
    (root / "sys/fs/cgroup/cgroup.controllers").write_text(
        "cpuset cpu io pids" + (" memory" if memory else "") + "\n")
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/serial-number").write_bytes(b"10000000a1b2c3d4\0")
    (root / "etc/NetworkManager/system-connections").mkdir(parents=True)
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\traspberrypi\n")
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/podman").write_text("")


def test_node_first_boot(tmp_path: Path) -> None:
    token = new_token()
    s = Settings(role="node", token=token, wifi_ssid="home", wifi_psk="correct horse",
                 wifi_country="GB", ssh_key="ssh-ed25519 AAAAC3 me@laptop")
    fake_pi(tmp_path, s, memory=False)
    run = Recorder()
    assert firstboot.main(["--root", str(tmp_path)], run=run) == 0

    # Memory cgroup: added to cmdline.txt, Raspberry Pi OS's init and PARTUUID kept.
    assert (tmp_path / "boot/firmware/cmdline.txt").read_text() == (
        CMDLINE.strip() + " cgroup_enable=memory cgroup_memory=1\n")
    assert run.calls[-1] == ("systemctl", "reboot", "--no-block")
    # Named from the serial number (last 8 hex digits).
    assert (tmp_path / "etc/hostname").read_text() == "bramble-a1b2c3d4\n"
    assert (tmp_path / "etc/hosts").read_text().splitlines() == [
        "127.0.0.1\tlocalhost", "127.0.1.1\tbramble-a1b2c3d4"]
    wifi = tmp_path / "etc/NetworkManager/system-connections/bramble-wifi.nmconnection"
    assert "ssid=home\n" in wifi.read_text() and "psk=correct horse\n" in wifi.read_text()
    assert stat.S_IMODE(wifi.stat().st_mode) == 0o600
    keys = tmp_path / "root/.ssh/authorized_keys"
    assert keys.read_text() == "ssh-ed25519 AAAAC3 me@laptop\n"
    env = tmp_path / "etc/bramble/bramble.env"
    assert f"BRAMBLE_JOIN_TOKEN={token}\n" in env.read_text()
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert ("systemctl", "enable", "bramble-node.service") in run.calls
    assert ("systemctl", "disable", "bramble-master.service") in run.calls
    assert not any("apt-get" in c for call in run.calls for c in call)  # podman present
    assert any(call[-1] == "bramble" and "--no-index" in call for call in run.calls)
    assert (tmp_path / firstboot.MARKER).is_file()

    # The secrets are off the card; every other setting is as it was.
    toml = tomllib.loads((tmp_path / "boot/firmware/bramble.toml").read_text())
    assert toml["secrets_removed"] is True
    assert (toml["token"], toml["wifi"]["psk"]) == ("", "")
    assert (toml["role"], toml["wifi"]["ssid"], toml["wifi"]["country"]) == ("node", "home", "GB")

    # Again (the marker removed): nothing doubles, no second cgroup edit, no reboot; the
    # blanked secrets mean "keep what the Pi has", not "none".
    (tmp_path / firstboot.MARKER).unlink()
    wifi_before = wifi.read_text()
    run2 = Recorder()
    (tmp_path / "sys/fs/cgroup/cgroup.controllers").write_text("cpu memory\n")
    assert firstboot.main(["--root", str(tmp_path)], run=run2) == 0
    assert (tmp_path / "boot/firmware/cmdline.txt").read_text().count("cgroup_enable") == 1
    assert keys.read_text().count("ssh-ed25519") == 1
    assert f"BRAMBLE_JOIN_TOKEN={token}\n" in env.read_text()
    assert wifi.read_text() == wifi_before
    assert run2.calls[-1] == ("systemctl", "start", "--no-block", "bramble-node.service")


@pytest.mark.parametrize(("role", "installs_podman"), [("master", False), ("up", True)])
def test_podman_only_where_pods_run_and_the_token_is_seeded(
        tmp_path: Path, role: str, installs_podman: bool) -> None:
    s = Settings(role=role, token=new_token(), hostname="boss")
    fake_pi(tmp_path, s, memory=True)
    (tmp_path / "usr/bin/podman").unlink()
    run = Recorder()
    assert firstboot.main(["--root", str(tmp_path)], run=run) == 0
    assert any(call[-2:] == ("-y", "podman") for call in run.calls) is installs_podman
    assert any("bramble.image.seed" in call for call in run.calls)
    assert (tmp_path / "etc/hostname").read_text() == "boss\n"


def test_bad_toml_fails_without_marker(tmp_path: Path) -> None:
    s = Settings(role="node", token=new_token())
    fake_pi(tmp_path, s, memory=True)
    (tmp_path / "boot/firmware/bramble.toml").write_text('role = "worker"\ntoken = "x"\n')
    assert firstboot.main(["--root", str(tmp_path)], run=Recorder()) == 1
    assert not (tmp_path / firstboot.MARKER).exists()


def test_seed_makes_the_toml_token_the_masters(tmp_path: Path) -> None:
    token = new_token()
    assert seed(tmp_path, token) is True
    assert seed(tmp_path, token) is False  # idempotent
    assert (tmp_path / "join-token").read_text().strip() == token
    known = pki.authenticate(pki.load_token_table(tmp_path), token)
    assert known is not None and known.user == pki.JOIN_USER
    # The master's own start keeps it (master/pki.py's _ensure_join_token).
    assert pki._ensure_join_token(tmp_path) == token  # noqa: SLF001
    # Another token replaces it: the old one no longer lets a node join.
    other = new_token()
    assert seed(tmp_path, other) is True
    assert pki.authenticate(pki.load_token_table(tmp_path), token) is None
    with pytest.raises(pki.PKIError, match="64 hex digits"):
        seed(tmp_path, "-not-a-token")


def test_cli_generates_and_prints_the_token(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    seen = {}
    monkeypatch.setattr("bramble.image.build.build", lambda req: seen.setdefault("req", req))
    args = parser.parse_args(["image", "build", "--base", "x.img", "--role", "node",
                              "-o", str(tmp_path / "n.img")])
    assert cli.run(args) == 0
    token = seen["req"].settings.token
    out = capsys.readouterr().out
    assert out.count(token) == 2 and "join token" in out


# --- Wi-Fi credentials as NetworkManager and wpa_supplicant read them ------------------------

def glib_unescape(value: str) -> str:
    """What GLib's key-file reader makes of a string value (g_key_file_get_string): the
    escapes \\s \\n \\t \\r \\\\; any other backslash sequence is an error."""
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c == "\\":
            nxt = value[i + 1]  # a trailing backslash is an error too (IndexError)
            out.append({"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def nm_read_ssid(value: str) -> bytes:
    """NetworkManager's keyfile reader for ssid= (libnm-core nm-keyfile.c get_bytes): a
    value of only digits, spaces and ';' that parses as "N;N;..." is a byte list; anything
    else is a GLib string in which "\\;" means ';'."""
    if value and set(value) <= set("0123456789; ") and value.rstrip(" ").endswith(";"):
        parts = [p.strip() for p in value.rstrip(" ").split(";")[:-1]]
        if all(p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts):
            return bytes(int(p) for p in parts)
    return glib_unescape(value).replace("\\;", ";").encode()


@pytest.mark.parametrize(("ssid", "written"), [
    ("home", "home"),
    ("home net", "home net"),                   # inner spaces are kept by GLib
    ("#1 [guest]=x", "#1 [guest]=x"),           # only a line's first '#' starts a comment
    ("2024", "2024"),                           # digits without ';' are not a byte list
    ("Café", "67;97;102;195;169;"),             # not ASCII: bytes C a f 0xc3 0xa9
    ("a;b", "97;59;98;"),                       # ';' -> byte list (NM would unescape \;)
    ("12;34;", "49;50;59;51;52;59;"),           # plain, NM would read bytes 12 and 34
    ("back\\slash", "98;97;99;107;92;115;108;97;115;104;"),  # '\\' is 92
    (" lead", "32;108;101;97;100;"),            # GLib drops leading whitespace
    ("trail ", "116;114;97;105;108;32;"),
])
def test_keyfile_ssid(ssid: str, written: str) -> None:
    assert firstboot.keyfile_ssid(ssid) == written
    assert nm_read_ssid(written) == ssid.encode()


@pytest.mark.parametrize(("psk", "written"), [
    ("correct horse", "correct horse"),
    ('semi;colon#"quote"', 'semi;colon#"quote"'),  # ';' only splits lists, '"' is plain
    ("back\\slash\\n", "back\\\\slash\\\\n"),      # \ doubled: "\n" stays two characters
    ("  two leading", "\\s\\stwo leading"),        # GLib drops leading whitespace: \s
    ("trailing  ", "trailing\\s\\s"),
    ("        ", "\\s" * 8),
])
def test_keyfile_psk(psk: str, written: str) -> None:
    assert firstboot.keyfile_string(psk) == written
    assert glib_unescape(written) == psk


def test_wpa_psk_matches_wpa_passphrase() -> None:
    # IEEE 802.11i-2004, H.4.1: passphrase "password", SSID "IEEE".
    assert firstboot.wpa_psk("IEEE", "password") == (
        "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e")


@pytest.mark.parametrize("network_manager", [True, False])
def test_wifi_files_with_awkward_credentials(tmp_path: Path, network_manager: bool) -> None:
    psk = ' p#ss"\\word '
    s = Settings(role="node", token=new_token(), wifi_ssid="Café;1", wifi_psk=psk,
                 wifi_country="FR")
    fake_pi(tmp_path, s, memory=True)
    if not network_manager:
        (tmp_path / "etc/NetworkManager/system-connections").rmdir()
        (tmp_path / "etc/NetworkManager").rmdir()
    assert firstboot.main(["--root", str(tmp_path)], run=Recorder()) == 0
    if network_manager:
        conf = (tmp_path / "etc/NetworkManager/system-connections/"
                "bramble-wifi.nmconnection").read_text()
        values = dict(line.split("=", 1) for line in conf.splitlines() if "=" in line)
        assert nm_read_ssid(values["ssid"]) == "Café;1".encode()
        assert glib_unescape(values["psk"]) == psk
    else:
        conf = (tmp_path / "etc/wpa_supplicant/wpa_supplicant.conf").read_text()
        assert f"\tssid={'Café;1'.encode().hex()}\n" in conf
        assert f"\tpsk={firstboot.wpa_psk('Café;1', psk)}\n" in conf
        assert "country=FR\n" in conf


@pytest.mark.parametrize(("wifi", "message"), [
    ('ssid = "home"\npsk = "short"\ncountry = "GB"', "8 to 63"),
    ('ssid = "home"\npsk = "pässwörter"\ncountry = "GB"', "printable ASCII"),
    ('ssid = "' + "x" * 33 + '"\ncountry = "GB"', "1 to 32 bytes"),
])
def test_bad_wifi_in_toml(tmp_path: Path, wifi: str, message: str) -> None:
    s = Settings(role="node", token=new_token())
    fake_pi(tmp_path, s, memory=True)
    toml = tmp_path / "boot/firmware/bramble.toml"
    toml.write_text(toml.read_text().split("[wifi]")[0] + "[wifi]\n" + wifi + "\n")
    with pytest.raises(firstboot.FirstBootError, match=message):
        firstboot.load_settings(toml)


@pytest.mark.parametrize(("text", "removed"), [
    # The file bramble writes (comments and all): both secrets blanked.
    (render(Settings(role="node", token="ab" * 32, wifi_ssid="home", wifi_psk="pass word#1")),
     True),
    # Hand-written, single quotes, a trailing comment, no Wi-Fi table at all.
    ("role = 'node'\ntoken = '" + "cd" * 32 + "'  # from the master\n", True),
    # Escapes inside the password.
    ('role = "node"\ntoken = ""\n[wifi]\nssid = "x"\npsk = "a\\"b\\\\c d e f"\n', True),
    # Laid out so the line edit cannot be proved right (a multi-line string): untouched.
    ('role = "node"\ntoken = """\n' + "ef" * 32 + '"""\n', False),
])
def test_remove_secrets(tmp_path: Path, text: str, removed: bool) -> None:
    path = tmp_path / "bramble.toml"
    path.write_text(text)
    before = tomllib.loads(text)
    assert firstboot.remove_secrets(path) is removed
    after = tomllib.loads(path.read_text())
    if not removed:
        assert path.read_text() == text
        return
    assert after.pop("secrets_removed") is True
    assert after.get("token", "") == "" and after.get("wifi", {}).get("psk", "") == ""
    before.pop("token", None)
    after.pop("token", None)
    for table in (before, after):
        table.get("wifi", {}).pop("psk", None)
    assert after == before
    assert firstboot.remove_secrets(path) is True  # once is enough
