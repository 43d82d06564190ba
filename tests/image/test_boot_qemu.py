"""Tier 2 of the SD-card images (slow, opt-in: BRAMBLE_SLOW=1 ./dev test): the arm64 image
`bramble image build` makes boots on an emulated arm64 machine and bramble starts.

The base image is laid out as Raspberry Pi OS's (FAT "bootfs" with cmdline.txt, ext4
"rootfs") around a debootstrapped Debian arm64 root with Podman - no Raspberry Pi OS image
can be downloaded here. The build then adds bramble, its aarch64 wheels and the units
through debugfs and mtools, exactly as for a card, with role "up" (master and node agent in
one process: READY=1 only once the node agent joined). qemu boots Debian's own kernel and
initramfs from that root with no network; a test-only unit reports on the serial console
once multi-user.target is reached, then powers off.

Costs: the arm64 root, once (debootstrap through qemu-user, cached under
~/.cache/bramble/roots); then one emulated boot (TCG on two cores: minutes).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bramble.image import build as image_build
from bramble.image.settings import Settings, new_token
from tests.image import roots
from tests.image.test_image_build import make_base

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(roots.qemu_problem() is not None,
                                 reason=roots.qemu_problem() or "")]

# What a Raspberry Pi OS Lite has that matters here, plus Debian's kernel (qemu boots it).
ARM64_PACKAGES = (*roots.BASE_PACKAGES, "linux-image-arm64", "podman", "catatonit",
                  "netavark", "aardvark-dns", "iptables", "iproute2", "kmod")
# As Raspberry Pi OS mounts its FAT partition (by label here: no PARTUUID to depend on).
FSTAB = "LABEL=bootfs /boot/firmware vfat defaults 0 0\n"
CMDLINE = "console=serial0,115200 console=tty1 root=LABEL=rootfs rootfstype=ext4 rootwait\n"


def test_arm64_up_card_boots_in_qemu(tmp_path: Path) -> None:
    from bramble.image.wheels import collect

    arm64_root = roots.debian_root("aarch64", ARM64_PACKAGES)
    kernel, initrd = roots.kernel_and_initrd(arm64_root)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    collect(wheels, "3.11", arch="aarch64")

    # The base image: the cached root plus what an OS image has and a debootstrap lacks
    # (fstab for the FAT partition), plus the test-only report unit.
    with roots.scratch_root(arm64_root, tmp_path / "scratch") as root:
        (root / "etc/fstab").write_text(FSTAB)
        (root / "boot/firmware").mkdir(parents=True, exist_ok=True)
        roots.install_report(root)
        used = int(subprocess.run(["du", "-sm", str(root)], capture_output=True, text=True,
                                  check=True).stdout.split()[0])
        base = make_base(tmp_path / "base", rootdir=root, root_mib=used + 64, cmdline=CMDLINE)
    shutil.rmtree(tmp_path / "scratch")

    token = new_token()
    card = tmp_path / "card.img"
    # The default headroom makes the build grow the root partition, as on a full base.
    image_build.build(image_build.Request(base, card, Settings(role="up", token=token,
                                                               hostname="pi-one"),
                                          wheels=wheels))
    base.unlink()

    boot = roots.boot_qemu(card, kernel, initrd)
    report = roots.console_report(boot.console)
    context = boot.console[-30000:]
    assert not boot.timed_out and report is not None, context

    fb = report["units"]["bramble-firstboot.service"]
    assert (fb["ActiveState"], fb["Result"]) == ("active", "success"), context
    assert report["marker"] and report["hostname"] == "pi-one"
    up = report["units"]["bramble-up.service"]
    # READY=1 from bramble up: the master listens and the node agent joined it.
    assert (up["ActiveState"], up["SubState"]) == ("active", "running"), context
    assert up["StatusText"].startswith("serving"), up
    assert up["cmdline"][1:3] == ["/opt/bramble/venv/bin/bramble", "up"], up
    assert report["nodes"][0] == 0 and "pi-one" in report["nodes"][1], report["nodes"]
    assert report["failed"] == [], context
