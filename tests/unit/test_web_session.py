"""Status page sessions, one-time links, the login limit and the Origin check
(master/web/session.py), on a fake clock."""

from __future__ import annotations

import pytest

from bramble.master.api.auth import Identity
from bramble.master.web.routes import _link_host
from bramble.master.web.session import (
    LoginLimiter,
    OneTimeLinks,
    Sessions,
    origin_allowed,
    same,
)

ADMIN = Identity("admin", ("system:masters",))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sessions_expire_after_idle_time_not_while_used() -> None:
    clock = Clock()
    sessions = Sessions(clock, idle=100)
    sid, s = sessions.create(ADMIN)
    assert len(sid) == 43 and len(s.csrf) == 43  # 256 bits, URL-safe base64
    assert sid != s.csrf
    clock.now += 90
    assert sessions.get(sid) is s  # used: the idle time starts again
    clock.now += 90
    assert sessions.get(sid, touch=False) is s
    clock.now += 11  # 101 s since the last use (a look without touching does not count)
    assert sessions.get(sid) is None
    assert len(sessions) == 0


def test_sessions_unknown_dropped_and_bounded() -> None:
    sessions = Sessions(Clock(), limit=2)
    a, _ = sessions.create(ADMIN)
    assert sessions.get("") is None and sessions.get(None) is None
    assert sessions.get(a + "x") is None
    b, _ = sessions.create(ADMIN)
    sessions.get(a)  # a is now the most recently used
    c, _ = sessions.create(ADMIN)  # full: the least recently used (b) goes
    assert sessions.get(b) is None
    assert sessions.get(a) is not None and sessions.get(c) is not None
    sessions.drop(a)
    assert sessions.get(a) is None


def test_one_time_links_work_once_and_expire() -> None:
    clock = Clock()
    links = OneTimeLinks(clock, ttl=600)
    code = links.issue(ADMIN)
    assert links.redeem(code) == ADMIN
    assert links.redeem(code) is None  # used
    late = links.issue(ADMIN)
    clock.now += 600
    assert links.redeem(late) is None  # expired
    assert links.redeem("made-up") is None


def test_links_bounded() -> None:
    links = OneTimeLinks(Clock(), limit=2)
    first = links.issue(ADMIN)
    links.issue(ADMIN)
    links.issue(ADMIN)
    assert links.redeem(first) is None  # the oldest went


def test_login_limiter_five_failures_a_minute() -> None:
    clock = Clock()
    limiter = LoginLimiter(clock, failures=5, window=60)
    for _ in range(5):
        assert limiter.retry_after("10.0.0.1") == 0
        limiter.failed("10.0.0.1")
        clock.now += 1
    # failures at 1000..1004; now 1005: the first ages out at 1060 -> 56 s to wait
    assert limiter.retry_after("10.0.0.1") == 56
    assert limiter.retry_after("10.0.0.2") == 0  # per client
    clock.now = 1060.5
    assert limiter.retry_after("10.0.0.1") == 0
    limiter.succeeded("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 0


@pytest.mark.parametrize(("origin", "host", "ok"), [
    (None, "pi:6443", True),  # same-origin fetches may omit it; CSRF token still needed
    ("https://pi:6443", "pi:6443", True),
    ("http://pi:6443", "pi:6443", False),  # not our scheme
    ("https://evil.example", "pi:6443", False),
    ("null", "pi:6443", False),
    ("https://pi:6443", None, False),
])
def test_origin(origin: str | None, host: str | None, ok: bool) -> None:
    assert origin_allowed(origin, host) is ok


def test_constant_time_compare() -> None:
    assert same("abc", "abc")
    assert not same("abc", "abd")
    assert not same("", "") and not same(None, "x")


@pytest.mark.parametrize(("host", "addresses", "expected"), [
    ("127.0.0.1:6443", ("192.168.1.10",), "192.168.1.10:6443"),
    ("localhost:6443", ("192.168.1.10",), "192.168.1.10:6443"),
    ("[::1]:6443", ("fd00::1",), "[fd00::1]:6443"),
    ("127.0.0.1:6443", (), "127.0.0.1:6443"),  # loopback-only master (tests)
    ("bramble.local:6443", ("192.168.1.10",), "bramble.local:6443"),
    ("192.168.1.10:6443", ("192.168.1.11",), "192.168.1.10:6443"),
])
def test_link_host(host: str, addresses: tuple[str, ...], expected: str) -> None:
    assert _link_host(host, addresses) == expected
