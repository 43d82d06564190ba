"""Tier 1 of the SD-card images: a Debian root carrying exactly what `bramble image build`
puts on a card (image/overlay.py) boots in systemd-nspawn.

The first boot runs bramble-firstboot once: it installs bramble into /opt/bramble/venv
from the wheels the card carries (host-architecture wheels here), seeds the master's join
token, and the master unit reaches active through READY=1 (its status text comes from
bramble's own sd_notify). A second boot skips first boot; no unit fails. The boot
partition is a directory bind-mounted at /boot/firmware, as the FAT partition is on a Pi.

Root only; the Debian root is built once (debootstrap, about a minute, needs the Debian
mirror) and cached under ~/.cache/bramble/roots; the wheels under ~/.cache/bramble/wheels.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bramble.image import overlay
from bramble.image.settings import Settings, new_token
from tests.image import roots

pytestmark = pytest.mark.skipif(roots.nspawn_problem() is not None,
                                reason=roots.nspawn_problem() or "")

# A Raspberry Pi OS cmdline.txt (write_boot_dir adds the memory cgroup, as the build does).
CMDLINE = ("console=serial0,115200 console=tty1 root=PARTUUID=12345678-02 rootfstype=ext4 "
           "rootwait init=/usr/lib/raspberrypi-sys-mods/firstboot\n")


@pytest.fixture(scope="module")
def debian_root() -> Path:
    return roots.debian_root(roots.host_arch())


@pytest.fixture(scope="module")
def host_wheels(debian_root: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from bramble.image.wheels import collect

    versions = sorted((int(m.group(1)), m.group(0)) for p in (debian_root / "usr/lib").iterdir()
                      if (m := re.fullmatch(r"python3\.(\d+)", p.name)))
    return collect(tmp_path_factory.mktemp("wheels"), versions[-1][1].removeprefix("python"),
                   arch=roots.host_arch())


def test_master_card_boots_twice(debian_root: Path, host_wheels: list[Path],
                                 tmp_path: Path) -> None:
    token = new_token()
    boot_dir, report_dir = tmp_path / "bootfs", tmp_path / "report"
    boot_dir.mkdir()
    report_dir.mkdir()
    (boot_dir / "cmdline.txt").write_text(CMDLINE)
    overlay.write_boot_dir(boot_dir, Settings(role="master", token=token))
    binds = {boot_dir: "/boot/firmware", report_dir: roots.REPORT_DIR}

    with roots.scratch_root(debian_root, tmp_path / "scratch") as root:
        overlay.write_tree(root, overlay.root_items(host_wheels, "master"))
        roots.install_report(root)
        boots = [roots.boot_nspawn(root, binds) for _ in range(2)]
        journal = roots.journal(root)
        join_token = (root / "var/lib/bramble/master/join-token").read_text().strip()
    reports = roots.reports(report_dir)
    context = f"console:\n{boots[-1].console}\njournal:\n{journal}"
    assert not any(b.timed_out for b in boots), context
    assert len(reports) == 2, context
    first, second = reports

    # First boot: bramble-firstboot ran and wrote its marker; the master runs bramble
    # from the venv first boot made, and said READY=1 with its status.
    fb = first["units"]["bramble-firstboot.service"]
    assert (fb["ActiveState"], fb["Result"]) == ("active", "success"), context
    assert first["marker"] and first["firstboot_runs"] == 1
    for report in reports:
        master = report["units"]["bramble-master.service"]
        assert (master["ActiveState"], master["SubState"]) == ("active", "running"), context
        assert master["StatusText"].startswith("serving (API https://"), master
        python, script, command = master["cmdline"][:3]
        assert (python.startswith("/opt/bramble/venv/bin/python")
                and (script, command) == ("/opt/bramble/venv/bin/bramble", "master")), master
        assert master["UnitFileState"] == "enabled"
        for other in ("bramble-node.service", "bramble-up.service"):
            assert report["units"][other]["ActiveState"] == "inactive", other
            assert report["units"][other]["UnitFileState"] == "disabled", other
        # The API answers the admin kubeconfig the master wrote.
        assert report["api"][0] == 0 and "kube-system" in report["api"][1], report["api"]
        assert report["failed"] == [], context
        # Named after the cluster and the machine's id (no Pi serial number in nspawn).
        assert re.fullmatch(r"bramble-[0-9a-f]{8}", report["hostname"])
    # The master's join token is the one in bramble.toml (nodes built with it can join).
    assert join_token == token

    # Second boot: first boot skipped (its condition on the marker), nothing redone.
    fb2 = second["units"]["bramble-firstboot.service"]
    assert (fb2["ConditionResult"], fb2["ActiveState"]) == ("no", "inactive"), fb2
    assert second["marker"] == first["marker"] and second["firstboot_runs"] == 1
    # cmdline.txt kept every token (Raspberry Pi OS's init and PARTUUID included).
    assert (boot_dir / "cmdline.txt").read_text() == (
        CMDLINE.strip() + " cgroup_enable=memory cgroup_memory=1\n")
