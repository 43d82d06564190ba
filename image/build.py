"""`bramble image build`: a flashable image from a Raspberry Pi OS Lite (or Debian arm64)
image, edited in place in a copy - no loop mounts, no root (image/disk.py).

Steps: copy (or unxz) the base into OUTPUT.partial; find the FAT boot and ext4 root
partitions by content; grow the root when the payload does not fit; write into the root
what overlay.py lists - the wheels, the units, their enable links and the first-boot
script (owner root, modes set explicitly: debugfs would copy the builder's uid); write
bramble.toml (and `ssh` when a key is given) to the boot partition and add the memory
cgroup to cmdline.txt (saving the extra reboot first boot would otherwise need). Only a complete image is
renamed to OUTPUT: any error removes the partial file.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bramble.image import disk, overlay
from bramble.image.disk import ImageError
from bramble.image.settings import Settings, validate

log = logging.getLogger(__name__)

DEFAULT_PYTHON = "3.11"  # Raspberry Pi OS Bookworm and Debian 12
# Room the root keeps free after the payload: the venv (about twice the wheels), and
# apt installing Podman.
HEADROOM = 400 << 20


@dataclass(frozen=True)
class Request:
    base: Path
    output: Path
    settings: Settings
    wheels: Path | None = None  # a directory of ready wheels (tests, offline builds)
    headroom: int = HEADROOM  # free room the root keeps after the payload


# Collects the wheels into a directory for a Python version (wheels.collect normally).
WheelSource = Callable[[Path, str], list[Path]]


@dataclass(frozen=True)
class Injected:
    path: str
    mode: int
    kind: str = "file"  # file | dir | symlink
    target: str = ""


def build(req: Request, collect: WheelSource | None = None) -> list[Injected]:
    """Build the image; returns what was written into the root filesystem."""
    validate(req.settings)
    disk.require_tools(["sfdisk", "mcopy", "mtype", "debugfs", "dumpe2fs", "resize2fs"]
                       + (["xz"] if req.base.suffix == ".xz" else []))
    if not req.base.is_file():
        raise ImageError(f"{req.base}: no such file")
    if req.output.resolve() == req.base.resolve():
        raise ImageError("the output must not be the base image")
    req.output.parent.mkdir(parents=True, exist_ok=True)
    partial = req.output.with_name(req.output.name + ".partial")
    try:
        with tempfile.TemporaryDirectory(prefix="bramble-image-") as tmp:
            injected = _build(req, partial, Path(tmp), collect)
        partial.replace(req.output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return injected


def _build(req: Request, out: Path, tmp: Path, collect: WheelSource | None) -> list[Injected]:
    _copy_base(req.base, out)
    parts = disk.partitions(out)
    boot, root = disk.find_boot_and_root(out, parts)
    ext4 = disk.Ext4(out, root)
    fat = disk.Fat(out, boot)

    wheels_dir = tmp / "wheels"
    wheels_dir.mkdir()
    if req.wheels is not None:
        for w in req.wheels.glob("*.whl"):
            shutil.copy2(w, wheels_dir / w.name)
    else:
        if collect is None:
            from bramble.image.wheels import collect as collect_default
            collect = collect_default
        collect(wheels_dir, python_version(ext4) or DEFAULT_PYTHON)
    wheels = sorted(wheels_dir.glob("*.whl"))
    if not any(w.name.startswith("bramble-") for w in wheels):
        raise ImageError("no bramble-*.whl among the wheels to carry")

    items = overlay.root_items(wheels, req.settings.role)
    need = sum(len(i.data) for i in items) + req.headroom
    free = ext4.free_bytes()
    if free < need:
        log.info("growing the root partition", extra={"free": free, "need": need})
        # Plus the inode tables and group descriptors the new block groups bring.
        root = disk.grow_last_partition(out, root, parts, (need - free) * 21 // 20 + (16 << 20))
        ext4 = disk.Ext4(out, root)

    injected = _write_root(ext4, tmp, items)
    _write_boot(fat, tmp, req.settings)
    return injected


def _copy_base(base: Path, out: Path) -> None:
    if base.suffix == ".xz":
        with out.open("wb") as f:
            proc = subprocess.run(["xz", "-dc", str(base)], stdout=f,
                                       stderr=subprocess.PIPE, check=False)
        if proc.returncode != 0:
            raise ImageError(f"{base}: cannot decompress: {proc.stderr.decode().strip()}")
    else:
        shutil.copyfile(base, out)


def python_version(ext4: disk.Ext4) -> str | None:
    """The newest python3.N in the image's /usr/lib: the wheels must match it."""
    names = ext4.listdir("/usr/lib") or {}
    versions = [tuple(map(int, m.groups())) for n in names
                if (m := re.fullmatch(r"python(3)\.(\d+)", n))]
    return ".".join(map(str, max(versions))) if versions else None


def _write_root(ext4: disk.Ext4, tmp: Path, items: list[overlay.Item]) -> list[Injected]:
    cmds: list[str] = []
    injected: list[Injected] = []
    dirs: list[str] = []
    for item in items:
        dirs += [d for d in overlay.parents(item.path) if d not in dirs]
    for d in dirs:
        # mkdir of an existing directory only complains (filtered in disk.Ext4); the
        # ones this build creates get root's owner and mode 0755.
        cmds.append(f"mkdir {d}")
        if ext4.listdir(d) is None:
            cmds += [f"sif {d} uid 0", f"sif {d} gid 0", f"sif {d} mode 040755"]
            injected.append(Injected(d, 0o755, "dir"))
    files = tmp / "root"
    files.mkdir()
    for n, item in enumerate(items):
        # debugfs `write` refuses to replace: a rebuild over a bramble image replaces.
        cmds.append(f"rm {item.path}")
        if item.link:
            cmds.append(f"symlink {item.path} {item.link}")
            injected.append(Injected(item.path, 0o777, "symlink", item.link))
            continue
        local = files / str(n)
        local.write_bytes(item.data)
        cmds += [f'write "{local}" {item.path}', f"sif {item.path} uid 0",
                 f"sif {item.path} gid 0", f"sif {item.path} mode 0{0o100000 | item.mode:o}"]
        injected.append(Injected(item.path, item.mode))
    ext4.commands(cmds, tmp)
    return injected


def _write_boot(fat: disk.Fat, tmp: Path, s: Settings) -> None:
    boot = tmp / "boot"
    boot.mkdir()
    for name, data in overlay.boot_files(s, fat.read("cmdline.txt")).items():
        fat.write(name, data, boot)
