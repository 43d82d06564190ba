"""Image garbage collection: unused images go when the disk fills, as the kubelet's image GC.

On an SD card the images are usually what fills the disk: every rollout of a new tag
leaves the old one behind. When the filesystem holding Podman's storage is used above
`high` percent, images no container uses are removed - the oldest first - until usage
is back under `low` percent. An image younger than `min_age` is kept even if unused: it
was probably just pulled for a pod about to start.

Only images are collected. Old container generations are already pruned by each pod's
worker (pods/actions.py keeps the one `kubectl logs --previous` needs), and the
containers of deleted pods go with their pods.

The agent collects only in the Podman storage it owns: with `--podman-socket` (a shared
Podman), the images belong to someone else too and are never touched.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .runtime.podman import ContainerRuntimeError, PodmanRuntime
from .runtime.types import ImageInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    high: float = 85.0        # percent used that starts a collection
    low: float = 80.0         # percent used a collection aims for
    min_age: float = 120.0    # seconds: younger unused images are kept
    interval: float = 60.0    # seconds between looks at the disk


@dataclass(frozen=True)
class Disk:
    total: int
    used: int

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.total if self.total else 0.0


def to_remove(images: list[ImageInfo], in_use: set[str], disk: Disk, policy: Policy,
              now: float) -> list[ImageInfo]:
    """The images to remove (pure): none below `high`; else unused, old-enough images,
    oldest first, until the bytes freed bring usage under `low`."""
    if disk.total <= 0 or disk.percent < policy.high:
        return []
    goal = disk.used - int(disk.total * policy.low / 100.0)
    chosen: list[ImageInfo] = []
    freed = 0
    candidates = sorted((i for i in images if i.id not in in_use
                         and now - i.created >= policy.min_age),
                        key=lambda i: (i.created, i.id))
    for image in candidates:
        if freed >= goal:
            break
        chosen.append(image)
        freed += image.size
    return chosen


def disk_of(path: Path) -> Disk:
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    return Disk(total=total, used=total - st.f_bfree * st.f_frsize)


async def collect(runtime: PodmanRuntime, storage: Path, policy: Policy,
                  now: Callable[[], float]) -> list[ImageInfo]:
    """One look at the disk, and a collection if it is too full. Returns what went."""
    disk = await asyncio.to_thread(disk_of, storage)
    if disk.percent < policy.high:
        return []
    images, in_use = await runtime.images(), await runtime.images_in_use()
    removed = []
    for image in to_remove(images, in_use, disk, policy, now()):
        try:
            await runtime.remove_image(image.id)
        except ContainerRuntimeError as err:
            # In use after all (a container created meanwhile): keep it.
            log.info("image kept", extra={"image": image.id[:12], "error": str(err)})
            continue
        removed.append(image)
    if removed:
        log.info("images removed under disk pressure", extra={
            "disk_used_percent": round(disk.percent, 1), "images": len(removed),
            "bytes": sum(i.size for i in removed)})
    return removed


async def run(runtime: PodmanRuntime, storage: Path, policy: Policy,
              now: Callable[[], float]) -> None:
    """The root task: look every `policy.interval` seconds; a failed look is logged."""
    while True:
        try:
            await collect(runtime, storage, policy, now)
        except (ContainerRuntimeError, OSError) as err:
            log.warning("image garbage collection failed", extra={"error": str(err)})
        await asyncio.sleep(policy.interval)
