"""The first-boot script on a scratch root with a recording command runner: what it
writes, which commands it runs, and that a second run changes nothing more."""

from __future__ import annotations

import argparse
import stat
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
    assert f"BRAMBLE_NODE_ARGS=--token {token}\n" in env.read_text()
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert ("systemctl", "enable", "bramble-node.service") in run.calls
    assert ("systemctl", "disable", "bramble-master.service") in run.calls
    assert not any("apt-get" in c for call in run.calls for c in call)  # podman present
    assert any(call[-1] == "bramble" and "--no-index" in call for call in run.calls)
    assert (tmp_path / firstboot.MARKER).is_file()

    # Again (the marker removed): nothing doubles, no second cgroup edit, no reboot.
    (tmp_path / firstboot.MARKER).unlink()
    run2 = Recorder()
    (tmp_path / "sys/fs/cgroup/cgroup.controllers").write_text("cpu memory\n")
    assert firstboot.main(["--root", str(tmp_path)], run=run2) == 0
    assert (tmp_path / "boot/firmware/cmdline.txt").read_text().count("cgroup_enable") == 1
    assert keys.read_text().count("ssh-ed25519") == 1
    assert run2.calls[-1] == ("systemctl", "start", "--no-block", "bramble-node.service")


def test_master_installs_podman_and_seeds_the_token(tmp_path: Path) -> None:
    s = Settings(role="master", token=new_token(), hostname="boss")
    fake_pi(tmp_path, s, memory=True)
    (tmp_path / "usr/bin/podman").unlink()
    run = Recorder()
    assert firstboot.main(["--root", str(tmp_path)], run=run) == 0
    assert any(call[-2:] == ("-y", "podman") for call in run.calls)
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
