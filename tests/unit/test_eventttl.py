"""When an Event expires."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bramble.master.controllers.eventttl import last_seen, seconds_left

T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("event", "expected"), [
    ({"lastTimestamp": "2026-01-01T00:00:10Z", "firstTimestamp": "2026-01-01T00:00:00Z"},
     T0 + 10),                                     # the last repeat counts
    ({"eventTime": "2026-01-01T00:00:05.500000Z"}, T0 + 5.5),   # events.k8s.io style
    ({"firstTimestamp": "2026-01-01T00:00:03Z"}, T0 + 3),
    ({"metadata": {"creationTimestamp": "2026-01-01T00:00:01Z"}}, T0 + 1),
    ({"lastTimestamp": None, "metadata": {}}, None),
    ({"lastTimestamp": "yesterday"}, None),
])
def test_last_seen(event: dict, expected: float | None) -> None:
    assert last_seen(event) == expected


@pytest.mark.parametrize(("event", "now", "left"), [
    ({"lastTimestamp": "2026-01-01T00:00:00Z"}, T0 + 600, 3000.0),   # 3600 - 600
    ({"lastTimestamp": "2026-01-01T00:00:00Z"}, T0 + 3600, 0.0),     # due exactly now
    ({"lastTimestamp": "2026-01-01T00:00:00Z"}, T0 + 7200, -3600.0),  # overdue
    ({}, T0, 0.0),                                  # no time at all: due now
])
def test_seconds_left(event: dict, now: float, left: float) -> None:
    assert seconds_left(event, 3600, now) == left
