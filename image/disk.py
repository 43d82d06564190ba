"""A disk image file's partitions, edited without mounting anything and without root.

The FAT boot partition goes through mtools (`-i IMG@@OFFSET`), the ext4 root through
debugfs (`IMG?offset=OFFSET`), the table through sfdisk. These tools are blocking
programs; callers are the synchronous image build. debugfs exits 0 even when a command
fails, so every run's stderr is checked line by line: anything but the expected "already
exists" of an idempotent mkdir is an error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

SECTOR = 512
FAT_TYPES = {"b", "c", "e", "6", "ef",  # MBR: FAT32 (CHS/LBA), FAT16 LBA, FAT16, EFI
             "c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7"}
LINUX_TYPES = {"83", "0fc63daf-8483-4772-8e79-3d69d8477de4",
               "b921b045-1df0-41c3-af44-4c6f280d3fae"}  # GPT: Linux, Linux root (arm64)
TOOLS = {"sfdisk": "fdisk", "mcopy": "mtools", "debugfs": "e2fsprogs",
         "dumpe2fs": "e2fsprogs", "resize2fs": "e2fsprogs", "xz": "xz-utils"}


class ImageError(Exception):
    """An image that cannot be used or changed; the message says why and what to do."""


@dataclass(frozen=True)
class Partition:
    number: int
    start: int  # bytes
    size: int  # bytes
    type: str

    @property
    def end(self) -> int:
        return self.start + self.size


def require_tools(names: Iterable[str]) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        packages = sorted({TOOLS.get(n, n) for n in missing})
        raise ImageError(f"missing {', '.join(missing)}: install the Debian packages "
                         f"{' '.join(packages)}")


def run(argv: Sequence[str], *, input: bytes | None = None, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(argv), input=input, capture_output=True, check=False,
                          env={**os.environ, **(env or {})})


def partitions(image: Path) -> list[Partition]:
    proc = run(["sfdisk", "-J", str(image)])
    if proc.returncode != 0:
        raise ImageError(f"{image} is not a disk image with a partition table "
                         f"({proc.stderr.decode().strip() or 'sfdisk failed'})")
    table = json.loads(proc.stdout)["partitiontable"]
    sector = int(table.get("sectorsize", SECTOR))
    out = []
    for p in table.get("partitions", []):
        number = int(re.sub(r"^.*?(\d+)$", r"\1", p["node"]))
        out.append(Partition(number, int(p["start"]) * sector, int(p["size"]) * sector,
                             str(p["type"]).lower()))
    return out


def find_boot_and_root(image: Path, parts: list[Partition]) -> tuple[Partition, Partition]:
    """The FAT boot partition and the ext4 root, checked by their contents' magic."""
    size = image.stat().st_size
    for p in parts:
        if p.end > size:
            raise ImageError(f"partition {p.number} ends past the end of {image}: the "
                             f"file is truncated (an interrupted download or copy?)")
    with image.open("rb") as f:
        def is_fat(p: Partition) -> bool:
            f.seek(p.start)
            sector = f.read(512)
            return sector[510:512] == b"\x55\xaa" and (sector[82:87] == b"FAT32"
                                                       or sector[54:59] in (b"FAT16", b"FAT12"))

        def is_ext4(p: Partition) -> bool:
            f.seek(p.start + 1080)
            return f.read(2) == b"\x53\xef"

        boot = next((p for p in parts if p.type in FAT_TYPES and is_fat(p)), None)
        root = next((p for p in parts if p.type in LINUX_TYPES and is_ext4(p)), None)
    if boot is None:
        raise ImageError(f"{image} has no FAT boot partition: this is not a Raspberry Pi "
                         f"OS (or Debian for Raspberry Pi) image")
    if root is None:
        raise ImageError(f"{image} has no ext4 root partition")
    return boot, root


class Fat:
    """The FAT partition through mtools."""

    def __init__(self, image: Path, part: Partition) -> None:
        self.target = f"{image}@@{part.start}"
        # mtools refuses images whose geometry fields look odd (Pi OS's do).
        self._env = {"MTOOLS_SKIP_CHECK": "1", "MTOOLS_NO_VFAT": "0"}

    def _mtool(self, *argv: str, input: bytes | None = None) -> bytes:
        proc = run([argv[0], "-i", self.target, *argv[1:]], input=input, env=self._env)
        if proc.returncode != 0:
            err = proc.stderr.decode().strip()
            if "Disk full" in err or "No free" in err:
                raise ImageError("the boot (FAT) partition is full: free some room on it")
            raise ImageError(f"{argv[0]} on the boot partition failed: {err}")
        return proc.stdout

    def read(self, name: str) -> bytes | None:
        proc = run(["mtype", "-i", self.target, f"::{name}"], env=self._env)
        return proc.stdout if proc.returncode == 0 else None

    def write(self, name: str, data: bytes, local_dir: Path) -> None:
        local = local_dir / name
        local.write_bytes(data)
        self._mtool("mcopy", "-o", str(local), f"::{name}")


class Ext4:
    """The ext4 root through debugfs."""

    def __init__(self, image: Path, part: Partition) -> None:
        self.target = f"{image}?offset={part.start}"

    def free_bytes(self) -> int:
        proc = run(["dumpe2fs", "-h", self.target])
        fields = dict(re.findall(r"^([A-Za-z ]+):\s+(\S+)", proc.stdout.decode(), re.M))
        try:
            return int(fields["Free blocks"]) * int(fields["Block size"])
        except (KeyError, ValueError):
            raise ImageError(f"cannot read the root filesystem: "
                             f"{proc.stderr.decode().strip()}") from None

    def listdir(self, path: str) -> dict[str, int] | None:
        """Names in a directory with their mode; None when it does not exist."""
        proc = run(["debugfs", "-R", f"ls -p {path}", self.target])
        if b"File not found" in proc.stderr or proc.returncode != 0:
            return None
        out = {}
        for line in proc.stdout.decode(errors="replace").splitlines():
            fields = line.split("/")
            if len(fields) >= 6 and fields[5] not in (".", ".."):
                out[fields[5]] = int(fields[2], 8)
        return out

    def commands(self, cmds: Sequence[str], local_dir: Path) -> None:
        """Run debugfs commands in one write session; raise on any error line."""
        script = local_dir / "debugfs.cmds"
        script.write_text("\n".join(cmds) + "\n")
        proc = run(["debugfs", "-w", "-f", str(script), self.target])
        errors = [line for line in proc.stderr.decode(errors="replace").splitlines()
                  if line.strip() and not line.startswith("debugfs ")
                  and "already exists" not in line
                  and "File not found by ext2_lookup" not in line]
        if proc.returncode != 0 or errors:
            text = "; ".join(errors) or f"debugfs exited with {proc.returncode}"
            if "Could not allocate" in text or "No free space" in text:
                raise ImageError("the root filesystem is full")
            raise ImageError(f"writing the root filesystem failed: {text}")


def grow_last_partition(image: Path, part: Partition, parts: list[Partition],
                        extra: int) -> Partition:
    """Make the image file and its last partition `extra` bytes larger, and the ext4 in it.

    resize2fs cannot grow a filesystem inside an image file in place: given
    "IMG?offset=N" it still sets the FILE's size to the new filesystem size, ignoring the
    offset (e2fsprogs 1.47), which cuts the end of the partition off (or, when the file
    is shorter, writes a byte into it). So the partition is copied into a file of its
    own beside the image, grown there, and copied back whole."""
    if part.end < max(p.end for p in parts):
        raise ImageError("the root filesystem is full and is not the last partition, so "
                         "it cannot grow: use a base image with more free room")
    extra = -(-extra // (4 << 20)) * (4 << 20)  # whole 4 MiB: keeps alignment
    with image.open("r+b") as f:
        f.truncate(max(image.stat().st_size, part.end + extra))
    proc = run(["sfdisk", "--no-reread", "--no-tell-kernel", "-N", str(part.number),
                str(image)], input=b", +\n")
    if proc.returncode != 0:
        raise ImageError(f"cannot grow partition {part.number}: {proc.stderr.decode()}")
    grown = next(p for p in partitions(image) if p.number == part.number)
    alone = image.with_name(f".{image.name}.root-{os.getpid()}")
    try:
        with image.open("rb") as src, alone.open("wb") as dst:
            _copy_range(src, part.start, dst, 0, part.size)
            dst.truncate(grown.size)
        proc = run(["resize2fs", str(alone), f"{grown.size // 1024}K"])
        if proc.returncode != 0:
            raise ImageError(f"cannot grow the root filesystem: "
                             f"{proc.stderr.decode().strip()}")
        if alone.stat().st_size != grown.size:
            raise ImageError("resize2fs left the root filesystem at an unexpected size")
        with alone.open("rb") as src, image.open("r+b") as dst:
            _copy_range(src, 0, dst, grown.start, grown.size)
    finally:
        alone.unlink(missing_ok=True)
    return grown


def _copy_range(src: BinaryIO, src_at: int, dst: BinaryIO, dst_at: int, length: int) -> None:
    """Copy `length` bytes between two files in the kernel (copy_file_range)."""
    done = 0
    while done < length:
        n = os.copy_file_range(src.fileno(), dst.fileno(), length - done,
                               src_at + done, dst_at + done)
        if n == 0:
            raise ImageError("the image ended in the middle of its root partition")
        done += n
