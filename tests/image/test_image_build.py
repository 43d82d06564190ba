"""Tier 0 of the SD-card images: build from a small "Raspberry Pi OS-like" base image made
here (MBR, FAT32 boot with cmdline.txt/config.txt, ext4 root), then read the result back
with the same tools a person would trust: mtools, debugfs, e2fsck -fn, fsck.vfat -n.
No root, no mounts, no network (the wheels are stand-ins; the real download is `slow`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from dataclasses import replace
from importlib import resources
from pathlib import Path

import pytest

from bramble.image import build as image_build
from bramble.image import overlay
from bramble.image.disk import ImageError, partitions
from bramble.image.settings import Settings, SettingsError, new_token

TOOLS = ("sfdisk", "mkfs.vfat", "mkfs.ext4", "mcopy", "mtype", "debugfs", "e2fsck",
         "fsck.vfat", "dumpe2fs", "resize2fs", "xz")
pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                                reason="needs mtools, dosfstools, e2fsprogs, fdisk, xz-utils")

MiB = 1 << 20
CMDLINE = ("console=serial0,115200 console=tty1 root=PARTUUID=12345678-02 rootfstype=ext4 "
           "fsck.repair=yes rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n")
CONFIG = "# Raspberry Pi config.txt\narm_64bit=1\ndtparam=audio=on\n"
ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}


def sh(*argv: str, input: bytes | None = None) -> bytes:
    proc = subprocess.run(argv, input=input, capture_output=True, env=ENV, check=False)
    assert proc.returncode == 0, (argv, proc.stderr.decode())
    return proc.stdout


def make_base(dir: Path, *, boot_mib: int = 64, root_mib: int = 48, with_fat: bool = True,
              fill_boot: bool = False, rootdir: Path | None = None,
              cmdline: str = CMDLINE) -> Path:
    """A small disk image laid out as Raspberry Pi OS's: boot (type c, label bootfs) at
    sector 8192, root (type 83, label rootfs) after it. The root filesystem is a stand-in
    unless `rootdir` gives a real one (tier 2 boots that)."""
    dir.mkdir(parents=True, exist_ok=True)
    if rootdir is None:
        rootdir = dir / "rootfs"
        (rootdir / "etc").mkdir(parents=True)
        (rootdir / "etc/hostname").write_text("raspberrypi\n")
        (rootdir / "etc/hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\traspberrypi\n")
        (rootdir / "usr/lib/python3.11").mkdir(parents=True)
        (rootdir / "usr/lib/raspberrypi-sys-mods").mkdir(parents=True)
        (rootdir / "usr/lib/raspberrypi-sys-mods/firstboot").write_text("#!/bin/sh\n")
    root = dir / "root.ext4"
    mkfs = ["mkfs.ext4", "-q", "-F", "-L", "rootfs", "-E", "root_owner=0:0", "-d",
            str(rootdir), str(root), f"{root_mib}M"]
    if os.getuid() != 0 and shutil.which("fakeroot"):
        mkfs.insert(0, "fakeroot")
    sh(*mkfs)
    image = dir / "base.img"
    boot_start, root_start = 8192, 8192 + boot_mib * 2048
    with image.open("wb") as f:
        f.truncate(root_start * 512 + root_mib * MiB)
    if with_fat:
        table = f"label: dos\nstart={boot_start}, size={boot_mib * 2048}, type=c\n"
    else:
        table = f"label: dos\nstart={boot_start}, size={boot_mib * 2048}, type=83\n"
    table += f"start={root_start}, type=83\n"
    sh("sfdisk", "--no-reread", "--no-tell-kernel", str(image), input=table.encode())
    if with_fat:
        boot = dir / "boot.vfat"
        sh("mkfs.vfat", "-F", "32", "-n", "bootfs", "-C", str(boot), str(boot_mib * 1024))
        (dir / "cmdline.txt").write_text(cmdline)
        (dir / "config.txt").write_text(CONFIG)
        sh("mcopy", "-i", str(boot), str(dir / "cmdline.txt"), str(dir / "config.txt"), "::")
        if fill_boot:
            free = int(re.search(rb"([\d ]+) bytes free", sh("mdir", "-i", str(boot), "::"))
                       .group(1).replace(b" ", b""))
            (dir / "filler").write_bytes(b"\0" * free)
            sh("mcopy", "-i", str(boot), str(dir / "filler"), "::")
        sh("dd", f"if={boot}", f"of={image}", "bs=1M", f"seek={boot_start * 512}",
           "oflag=seek_bytes", "conv=notrunc,sparse", "status=none")
    sh("dd", f"if={root}", f"of={image}", "bs=1M", f"seek={root_start * 512}",
       "oflag=seek_bytes", "conv=notrunc,sparse", "status=none")
    root.unlink()  # only the image is needed; a real root is large
    return image


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_base(tmp_path_factory.mktemp("base"))


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    d = tmp_path / "wheels"
    d.mkdir()
    (d / "bramble-0.1.0-py3-none-any.whl").write_bytes(b"PK stand-in " * 100)
    (d / "aiohttp-3.9.0-cp311-cp311-manylinux_2_17_aarch64.whl").write_bytes(b"PK" * 5000)
    return d


SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB4 me@laptop"


def settings(**kw: str) -> Settings:
    return replace(Settings(role="node", token=new_token(), hostname="pi-3",
                            wifi_ssid="home net", wifi_psk="correct horse",
                            wifi_country="GB", ssh_key=SSH_KEY), **kw)


def part_offsets(image: Path) -> tuple[int, int]:
    boot, root = partitions(image)[:2]
    return boot.start, root.start


def debugfs(image: Path, offset: int, request: str) -> str:
    return sh("debugfs", "-R", request, f"{image}?offset={offset}").decode()


def test_build_and_read_back(base: Path, wheels: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "pi.img"
    s = settings()
    injected = image_build.build(image_build.Request(base, out, s, wheels=wheels,
                                                     headroom=MiB))
    assert out.is_file() and not list(out.parent.glob("*.partial"))
    boot_off, root_off = part_offsets(out)

    # Both filesystems are clean.
    sh("e2fsck", "-fn", f"{out}?offset={root_off}")
    boot_copy = tmp_path / "boot.vfat"
    sh("dd", f"if={out}", f"of={boot_copy}", "bs=1M", f"skip={boot_off}", "iflag=skip_bytes",
       "count=64", "status=none")
    sh("fsck.vfat", "-n", str(boot_copy))

    # The boot partition: bramble.toml with every setting, cmdline.txt with Raspberry Pi
    # OS's own init (and PARTUUID) kept and the memory cgroup added, config.txt untouched.
    fat = f"{out}@@{boot_off}"
    toml_text = sh("mtype", "-i", fat, "::bramble.toml").decode()
    cfg = tomllib.loads(toml_text)
    assert cfg == {"role": "node", "cluster": "bramble", "token": s.token, "hostname": "pi-3",
                   "wifi": {"ssid": "home net", "psk": "correct horse", "country": "GB"},
                   "ssh": {"authorized_key": SSH_KEY}}
    assert toml_text.count("\n# ") >= 10  # each setting explained
    cmdline = sh("mtype", "-i", fat, "::cmdline.txt").decode()
    assert cmdline == CMDLINE.strip() + " cgroup_enable=memory cgroup_memory=1\n"
    assert sh("mtype", "-i", fat, "::config.txt").decode() == CONFIG
    assert "::/ssh" in sh("mdir", "-b", "-i", fat, "::").decode().split()

    # The root: every injected file with its content, mode and owner; the enable links.
    files = {i.path: i for i in injected}
    firstboot = resources.files("bramble.image").joinpath("firstboot.py").read_text()
    expect_content = {
        "/usr/lib/bramble/firstboot": firstboot,
        "/etc/systemd/system/bramble-node.service":
            resources.files("bramble.systemd").joinpath("bramble-node.service").read_text(),
    }
    for w in wheels.iterdir():
        expect_content[f"/usr/lib/bramble/wheels/{w.name}"] = w.read_bytes().decode()
    for unit in overlay.UNITS:
        assert f"/etc/systemd/system/{unit}" in files
    for path, content in expect_content.items():
        assert debugfs(out, root_off, f"cat {path}") == content
    for item in injected:
        stat = debugfs(out, root_off, f"stat {item.path}")
        assert re.search(r"User:\s+0\s+Group:\s+0", stat), item.path
        mode = int(re.search(r"Mode:\s+(\d+)", stat).group(1), 8)
        assert mode == item.mode, item.path
        if item.kind == "symlink":
            assert "Type: symlink" in stat and f'Fast link dest: "{item.target}"' in stat
    assert files["/usr/lib/bramble/firstboot"].mode == 0o755
    wants = debugfs(out, root_off, "ls -p /etc/systemd/system/multi-user.target.wants")
    enabled = {f.split("/")[5] for f in wants.splitlines() if f.count("/") >= 5} - {".", ".."}
    assert enabled == {"bramble-firstboot.service", "bramble-node.service"}
    # Raspberry Pi OS's own first boot is still there; the base image is untouched.
    assert debugfs(out, root_off, "cat /usr/lib/raspberrypi-sys-mods/firstboot") == "#!/bin/sh\n"
    assert "::/bramble.toml" not in sh("mdir", "-b", "-i", f"{base}@@{boot_off}", "::").decode()


def test_rebuild_over_a_bramble_image_and_xz(base: Path, wheels: Path, tmp_path: Path) -> None:
    first = tmp_path / "a.img"
    image_build.build(image_build.Request(base, first, settings(), wheels=wheels,
                                          headroom=MiB))
    sh("xz", "-k", "-0", "-T1", str(first))
    out = tmp_path / "b.img"
    image_build.build(image_build.Request(Path(f"{first}.xz"), out,
                                          settings(role="master", hostname=""),
                                          wheels=wheels, headroom=MiB))
    boot_off, root_off = part_offsets(out)
    sh("e2fsck", "-fn", f"{out}?offset={root_off}")
    wants = debugfs(out, root_off, "ls -p /etc/systemd/system/multi-user.target.wants")
    # The node unit's link from the first build stays; firstboot disables it on the Pi.
    assert "bramble-master.service" in wants
    cmdline = sh("mtype", "-i", f"{out}@@{boot_off}", "::cmdline.txt").decode()
    assert cmdline.count("cgroup_enable=memory") == 1


def test_grows_the_root_when_the_payload_does_not_fit(base: Path, wheels: Path,
                                                      tmp_path: Path) -> None:
    out = tmp_path / "grown.img"
    image_build.build(image_build.Request(base, out, settings(), wheels=wheels,
                                          headroom=100 * MiB))
    before, after = partitions(base)[1], partitions(out)[1]
    assert after.start == before.start and after.size >= before.size + 60 * MiB
    # The partition lies inside the file and the filesystem fills exactly the partition
    # (resize2fs on "IMG?offset=" once left it running past the end of the image).
    assert out.stat().st_size >= after.end
    header = sh("dumpe2fs", "-h", f"{out}?offset={after.start}").decode()
    size = int(re.search(r"Block size:\s+(\d+)", header).group(1))
    assert int(re.search(r"Block count:\s+(\d+)", header).group(1)) * size == after.size
    assert int(re.search(r"Free blocks:\s+(\d+)", header).group(1)) * size >= 100 * MiB
    # Checked as the kernel sees it: the partition alone, not the file from an offset.
    alone = tmp_path / "root.ext4"
    sh("dd", f"if={out}", f"of={alone}", "bs=1M", f"skip={after.start}", f"count={after.size}",
       "iflag=skip_bytes,count_bytes", "status=none")
    sh("e2fsck", "-fn", str(alone))
    for w in wheels.iterdir():
        assert debugfs(alone, 0, f"cat /usr/lib/bramble/wheels/{w.name}") == w.read_text()
    assert debugfs(alone, 0, "cat /etc/hostname") == "raspberrypi\n"


def assert_build_fails(base: Path, wheels: Path, tmp_path: Path, error: type[Exception],
                       match: str, s: Settings | None = None, **kw: int) -> None:
    """The build raises `error` and leaves neither the output nor a partial file behind."""
    out = tmp_path / "out.img"
    with pytest.raises(error, match=match):
        image_build.build(image_build.Request(base, out, s or settings(), wheels=wheels, **kw))
    assert not out.exists()
    assert not list(out.parent.glob(out.name + "*"))


@pytest.mark.parametrize("case", ["not-an-image", "truncated"])
def test_not_an_image(case: str, base: Path, wheels: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.img"
    if case == "not-an-image":
        bad.write_bytes(b"this is a holiday photo, not a disk" * 1000)
    else:
        bad.write_bytes(base.read_bytes()[: 20 * MiB])
    assert_build_fails(bad, wheels, tmp_path, ImageError, "not a disk image|truncated")


def test_no_fat_partition(wheels: Path, tmp_path: Path) -> None:
    bad = make_base(tmp_path / "nofat", with_fat=False)
    assert_build_fails(bad, wheels, tmp_path, ImageError, "no FAT boot partition")


def test_full_boot_partition(wheels: Path, tmp_path: Path) -> None:
    full = make_base(tmp_path / "full", fill_boot=True)
    assert_build_fails(full, wheels, tmp_path, ImageError, "full", headroom=MiB)


@pytest.mark.parametrize(("kw", "message"), [
    ({"role": "worker"}, "role 'worker'"),
    ({"token": "secret"}, "64 hex digits"),
    ({"hostname": "Pi_3"}, "hostname"),
    ({"wifi_country": ""}, "country"),
    ({"wifi_psk": "short"}, "8 to 63"),
    ({"ssh_key": "not a key"}, "OpenSSH"),
])
def test_bad_settings(kw: dict[str, str], message: str, base: Path, wheels: Path,
                      tmp_path: Path) -> None:
    assert_build_fails(base, wheels, tmp_path, SettingsError, message, settings(**kw))


def test_no_bramble_wheel(base: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_build_fails(base, empty, tmp_path, ImageError, "bramble-")


@pytest.mark.slow
def test_real_wheels_for_aarch64(tmp_path: Path) -> None:
    """The real thing: bramble's wheel built here, its dependencies from PyPI (cached)."""
    from bramble.image.wheels import collect

    names = [w.name for w in collect(tmp_path, "3.11")]
    assert any(n.startswith("bramble-") for n in names)
    compiled = [n for n in names if n.startswith(("orjson-", "cryptography-", "psutil-"))]
    assert len(compiled) == 3 and all("aarch64" in n for n in compiled), names
