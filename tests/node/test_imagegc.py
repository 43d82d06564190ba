"""Image garbage collection: the pure choice, and one collection in real Podman storage."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from bramble.node import imagegc
from bramble.node.imagegc import Disk, Policy, to_remove
from bramble.node.runtime.types import ImageInfo
from tests.node.conftest import short_dir, started_node
from tests.node.test_runtime import new_pod, run

MB = 1 << 20
NOW = 10_000.0


def image(id_: str, size_mb: int, age: float) -> ImageInfo:
    return ImageInfo(id=id_, names=(f"localhost/{id_}:1",), size=size_mb * MB,
                     created=NOW - age)


OLD, MID, NEW, USED, FRESH = (image("old", 30, 9000), image("mid", 30, 5000),
                              image("new", 30, 1000), image("used", 30, 9500),
                              image("fresh", 30, 10))
ALL = [NEW, OLD, USED, FRESH, MID]


@pytest.mark.parametrize(("used_mb", "expected"), [
    # 1000 MB disk, high 85%, low 80%.
    (840, []),                # 84% < 85%: nothing
    (850, [OLD, MID]),        # 85%: free 850-800 = 50 MB: old (30 < 50), then mid (60)
    (870, [OLD, MID, NEW]),   # free 70 MB: 30 + 30 + 30 (oldest first)
    (990, [OLD, MID, NEW]),   # free 190 MB: all the unused, old-enough ones are not enough
])
def test_unused_old_enough_images_go_oldest_first(used_mb: int, expected: list) -> None:
    # "used" (in use) and "fresh" (10 s old < min_age 120 s) are never candidates.
    chosen = to_remove(ALL, {"used"}, Disk(total=1000 * MB, used=used_mb * MB), Policy(), NOW)
    assert chosen == expected


def test_an_unknown_disk_size_collects_nothing() -> None:
    assert to_remove(ALL, set(), Disk(total=0, used=0), Policy(high=0, low=0), NOW) == []


@pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")
async def test_a_collection_removes_only_unused_images(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    async with started_node(short_dir(tmp_path_factory, "gc")) as node:
        uid, sandbox = await new_pod(node)
        await run(node, uid, sandbox, "c", "sleep", "60")
        before = {i.id: i for i in await node.runtime.images()}
        in_use = await node.runtime.images_in_use()
        entry_id = (await node.runtime.image_id(node.entry_image)).removeprefix("sha256:")
        busybox_id = (await node.runtime.image_id(node.image)).removeprefix("sha256:")
        assert busybox_id in in_use and entry_id not in in_use

        # Not full: nothing happens.
        calm = Policy(high=100.0, low=99.0, min_age=0)
        assert await imagegc.collect(node.runtime, Path(node.data_dir), calm, time.time) == []
        # "Full": every unused image goes, the busybox one (in use) stays.
        full = Policy(high=0.0, low=0.0, min_age=0)
        removed = await imagegc.collect(node.runtime, Path(node.data_dir), full, time.time)
        assert entry_id in {i.id for i in removed}
        after = {i.id for i in await node.runtime.images()}
        assert busybox_id in after and entry_id not in after
        assert after == set(before) - {i.id for i in removed}
        assert in_use <= after  # nothing a container uses went
