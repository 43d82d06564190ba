"""Pod garbage collection: which terminated pods go first."""

from __future__ import annotations

from typing import Any

import pytest

from bramble.master.controllers.podgc import gc_order, terminated_surplus


def pod(name: str, phase: str, created: str = "2024-05-01T12:00:00Z",
        reason: str = "") -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if reason:
        status["reason"] = reason
    return {"metadata": {"name": name, "creationTimestamp": created}, "status": status}


PODS = [
    pod("new-done", "Succeeded", "2024-05-01T12:00:03Z"),
    pod("running", "Running", "2024-05-01T11:00:00Z"),  # never counted
    pod("old-failed", "Failed", "2024-05-01T12:00:01Z"),
    pod("evicted", "Failed", "2024-05-01T12:00:05Z", reason="Evicted"),  # first, though new
    pod("b-same-time", "Succeeded", "2024-05-01T12:00:02Z"),
    pod("a-same-time", "Succeeded", "2024-05-01T12:00:02Z"),  # ties: by name
]


@pytest.mark.parametrize(("threshold", "deleted"), [
    (5, []),  # 5 terminated, threshold 5: nothing
    (4, ["evicted"]),  # 5 - 4 = 1
    (2, ["evicted", "old-failed", "a-same-time"]),  # 5 - 2 = 3
    (0, []),  # 0 keeps everything
])
def test_terminated_surplus(threshold: int, deleted: list[str]) -> None:
    got = terminated_surplus(PODS, threshold)
    assert [p["metadata"]["name"] for p in got] == deleted


def test_gc_order() -> None:
    ordered = sorted(PODS, key=gc_order)
    assert [p["metadata"]["name"] for p in ordered][:2] == ["evicted", "running"]
