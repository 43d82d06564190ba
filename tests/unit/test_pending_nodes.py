"""Pending join requests (master/api/joinapi.py PendingBook) and `bramble nodes` rows."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from bramble import joinproof
from bramble.cli.membership import node_rows
from bramble.kube.errors import Conflict, NotFound
from bramble.master.api import joinapi
from bramble.master.api.joinapi import PendingBook, TooManyRequests

CA = "cd" * 32
K1, K2 = "1" * 64, "2" * 64
WALL = datetime(2026, 6, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def book() -> tuple[PendingBook, Clock]:
    clock = Clock()
    return PendingBook(CA, clock, lambda: WALL), clock


def test_request_approve_take() -> None:
    b, _ = book()
    req, added = b.request("pi4", K1, "10.0.0.4")
    assert added and req.fingerprint == joinproof.pending_fingerprint("pi4", K1, CA)
    assert b.request("pi4", K1, "10.0.0.4")[1] is False  # a poll refreshes, adds nothing
    assert b.take("pi4", K1) is None  # not approved yet
    assert b.approve("pi4").approved
    assert b.take("pi4", K2) is None  # another key
    assert b.take("pi4", K1) is not None
    assert b.take("pi4", K1) is None  # handed out once
    assert b.items() == []


def test_ambiguous_names_need_the_fingerprint() -> None:
    b, _ = book()
    first, _ = b.request("pi4", K1, "")
    second, _ = b.request("pi4", K2, "")
    with pytest.raises(Conflict):
        b.approve("pi4")
    with pytest.raises(NotFound):
        b.approve("pi4", "AAAA-AAAA-AAAA")
    assert b.approve("pi4", second.fingerprint.lower()) is second
    assert not first.approved
    with pytest.raises(NotFound):
        b.approve("pi9")
    assert b.drop("pi4") == 2 and b.items() == []


def test_expiry() -> None:
    b, clock = book()
    b.request("idle", K1, "")
    b.request("approved", K2, "")
    b.approve("approved")
    clock.now += joinapi.PENDING_IDLE + 1  # an hour without a poll: the idle one goes
    assert b.expire()
    assert [r.node for r in b.items()] == ["approved"]
    clock.now += joinapi.APPROVED_TTL  # an approval not collected within a day goes too
    assert b.expire() and b.items() == []
    assert not b.expire()


def test_bounded() -> None:
    b, _ = book()
    for i in range(joinapi.MAX_PENDING):
        b.request(f"pi{i}", K1, "")
    with pytest.raises(TooManyRequests):
        b.request("one-more", K1, "")
    b.request("pi0", K1, "")  # polls of known requests still work


def test_persistence_round_trip() -> None:
    b, _ = book()
    b.request("pi4", K1, "10.0.0.4")
    b.request("pi5", K2, "")
    b.approve("pi5")
    raw = orjson.loads(b.dump())
    assert {r["node"] for r in raw} == {"pi4", "pi5"}
    assert "touched" not in raw[0] and "fingerprint" not in raw[0]
    again, _ = book()
    again.load(raw + [{"node": "Bad_Name", "key": K1}, {"node": "x", "key": "short"}, "junk"])
    assert [(r.node, r.approved, r.fingerprint) for r in again.items()] == \
        [(r.node, r.approved, r.fingerprint) for r in b.items()]


def test_node_rows() -> None:
    when = datetime(2026, 6, 1, 0, 10, tzinfo=UTC)
    nodes = [{"metadata": {"name": "pi1", "creationTimestamp": "2026-06-01T00:00:00Z"},
              "status": {"conditions": [{"type": "Ready", "status": "True"}],
                         "addresses": [{"type": "InternalIP", "address": "10.77.0.2"}],
                         "nodeInfo": {"kubeletVersion": "v1.30.0"}}}]
    pending = [{"name": "pi4", "fingerprint": "ABCD-EFGH-JKLM", "peer": "10.77.0.5",
                "requested": "2026-06-01T00:09:00Z", "approved": False}]
    seen = [{"name": "pi1", "addresses": ["10.77.0.2"], "firstSeen": "2026-06-01T00:00:00Z"},
            {"name": "pi4", "addresses": ["10.77.0.5"], "firstSeen": "2026-06-01T00:09:00Z"},
            {"name": "pi7", "addresses": ["10.77.0.8"], "firstSeen": "2026-06-01T00:05:00Z",
             "version": "0.1.0"}]
    assert node_rows(nodes, pending, seen, when) == [
        ["pi1", "Ready", "", "10.77.0.2", "10m", "v1.30.0"],
        ["pi4", "Pending", "ABCD-EFGH-JKLM", "10.77.0.5", "60s", "<none>"],
        ["pi7", "Discovered", "", "10.77.0.8", "5m", "0.1.0"],  # runs, has not asked
    ]
