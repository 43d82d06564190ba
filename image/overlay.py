"""What a bramble SD card adds to an OS: the one description both writers use.

`root_items` lists everything that goes into the root filesystem (the units, their enable
links, the first-boot script, the wheels) and `boot_files` everything that goes onto the
boot partition (bramble.toml, cmdline.txt with the memory cgroup, `ssh`). Both are pure.
Two writers consume them: build.py writes them into an image's ext4 with debugfs, and
`write_tree` below into a directory - the test roots that boot in systemd-nspawn and
qemu (tests/image/) - so what boots in a test is what goes onto a card.

Invariants: paths are absolute; parent directories are implied and made root-owned 0755;
every item is owned by root; writing twice gives the same tree (files and links replaced).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from bramble.image.firstboot import with_memory_cgroup
from bramble.image.settings import Settings, render

UNIT_DIR = "/etc/systemd/system"
WANTS = f"{UNIT_DIR}/multi-user.target.wants"
FIRSTBOOT_UNIT = "bramble-firstboot.service"
UNITS = (FIRSTBOOT_UNIT, "bramble-master.service", "bramble-node.service",
         "bramble-up.service")
FIRSTBOOT = "/usr/lib/bramble/firstboot"
WHEELS = "/usr/lib/bramble/wheels"


@dataclass(frozen=True)
class Item:
    """A file (`data`) or, when `link` is set, a symlink; owned by root."""

    path: str
    mode: int
    data: bytes = b""
    link: str = ""


def root_items(wheels: Sequence[Path], role: str) -> list[Item]:
    """Everything for the root filesystem: files first, then the enable links (the first
    boot unit and the role's unit; firstboot disables the other roles on the Pi)."""
    units = resources.files("bramble.systemd")
    items = [Item(f"{UNIT_DIR}/{name}", 0o644, units.joinpath(name).read_bytes())
             for name in UNITS]
    items.append(Item(FIRSTBOOT, 0o755,
                      resources.files("bramble.image").joinpath("firstboot.py").read_bytes()))
    items += [Item(f"{WHEELS}/{w.name}", 0o644, w.read_bytes()) for w in sorted(wheels)]
    for unit in (FIRSTBOOT_UNIT, f"bramble-{role}.service"):
        items.append(Item(f"{WANTS}/{unit}", 0o777, link=f"{UNIT_DIR}/{unit}"))
    return items


def parents(path: str) -> list[str]:
    """The directories above `path`, outermost first: /a/b/c -> /a, /a/b."""
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def boot_files(s: Settings, cmdline: bytes | None) -> dict[str, bytes]:
    """Files for the boot partition by name, given its current cmdline.txt (None: none)."""
    files = {}
    if cmdline is not None and (new := with_memory_cgroup(cmdline.decode())) is not None:
        files["cmdline.txt"] = new.encode()
    files["bramble.toml"] = render(s).encode()
    if s.ssh_key:
        files["ssh"] = b""  # Raspberry Pi OS's sshswitch turns SSH on
    return files


def write_tree(root: Path, items: Sequence[Item]) -> None:
    """Write the items below the directory `root` (a root filesystem tree)."""
    as_root = os.geteuid() == 0
    for item in items:
        dest = root / item.path.lstrip("/")
        for parent in parents(item.path):
            d = root / parent.lstrip("/")
            if not d.is_dir():
                d.mkdir(mode=0o755)
                if as_root:
                    os.chown(d, 0, 0)
        if dest.is_symlink() or dest.exists():
            dest.unlink()
        if item.link:
            dest.symlink_to(item.link)
            if as_root:
                os.lchown(dest, 0, 0)
            continue
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, item.mode)
        with os.fdopen(fd, "wb") as f:
            f.write(item.data)
        os.chmod(dest, item.mode)  # past the umask
        if as_root:
            os.chown(dest, 0, 0)


def write_boot_dir(boot: Path, s: Settings) -> None:
    """The boot partition's files into a directory (the FAT folder of a test root)."""
    cmdline = boot / "cmdline.txt"
    files = boot_files(s, cmdline.read_bytes() if cmdline.is_file() else None)
    for name, data in files.items():
        (boot / name).write_bytes(data)
