"""Who may use the status page: sessions, one-time login links, CSRF, the login rate limit.

Everything lives in memory: a master restart logs everyone out, which is fine for a home
lab and keeps secrets off the SD card.

Invariants:
- Session ids, CSRF tokens and link codes are 256 random bits (`secrets`), compared in
  constant time; a session id is looked up through its sha256, so neither dict lookups nor
  logs handle the raw id.
- A session ends after IDLE seconds without a request, on logout, or when the master stops.
- A one-time link is redeemed at most once and only within LINK_TTL seconds.
- The tables are bounded (MAX_SESSIONS, MAX_LINKS, MAX_CLIENTS): when full, the oldest go,
  so a flood of logins or links cannot grow the master's memory.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bramble.master.api.auth import Identity

COOKIE = "bramble_session"
CSRF_HEADER = "X-CSRF-Token"
IDLE = 12 * 3600.0
LINK_TTL = 600.0
MAX_SESSIONS = 256
MAX_LINKS = 64
LOGIN_FAILURES = 5  # per client address ...
LOGIN_WINDOW = 60.0  # ... within this many seconds, then 429 until the oldest ages out
MAX_CLIENTS = 1024


def new_secret() -> str:
    """256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two secrets; a missing one never matches."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass
class Session:
    identity: Identity
    csrf: str = field(repr=False)
    last_used: float


class Sessions:
    def __init__(self, clock: Callable[[], float] = time.monotonic, idle: float = IDLE,
                 limit: int = MAX_SESSIONS) -> None:
        self.clock = clock
        self.idle = idle
        self.limit = limit
        self._items: OrderedDict[str, Session] = OrderedDict()  # by digest, oldest use first

    def __len__(self) -> int:
        return len(self._items)

    def create(self, identity: Identity) -> tuple[str, Session]:
        """A new session: (the id for the cookie, the session)."""
        self._expire()
        while len(self._items) >= self.limit:
            self._items.popitem(last=False)
        sid = new_secret()
        session = Session(identity, new_secret(), self.clock())
        self._items[_digest(sid)] = session
        return sid, session

    def get(self, sid: str | None, *, touch: bool = True) -> Session | None:
        """The live session of a cookie value, else None. `touch` counts this as use; an
        open event stream checks without touching, so an idle page still expires."""
        if not sid:
            return None
        self._expire()
        key = _digest(sid)
        session = self._items.get(key)
        if session is None:
            return None
        if touch:
            session.last_used = self.clock()
            self._items.move_to_end(key)
        return session

    def drop(self, sid: str | None) -> None:
        if sid:
            self._items.pop(_digest(sid), None)

    def _expire(self) -> None:
        now = self.clock()
        while self._items:
            key, oldest = next(iter(self._items.items()))
            if now - oldest.last_used <= self.idle:
                break
            del self._items[key]


@dataclass(frozen=True)
class _Link:
    identity: Identity
    expires: float


class OneTimeLinks:
    """Codes for `bramble dashboard`: each logs in once, within `ttl` seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, ttl: float = LINK_TTL,
                 limit: int = MAX_LINKS) -> None:
        self.clock = clock
        self.ttl = ttl
        self.limit = limit
        self._items: OrderedDict[str, _Link] = OrderedDict()  # by digest, oldest first

    def issue(self, identity: Identity) -> str:
        self._expire()
        while len(self._items) >= self.limit:
            self._items.popitem(last=False)
        code = new_secret()
        self._items[_digest(code)] = _Link(identity, self.clock() + self.ttl)
        return code

    def redeem(self, code: str) -> Identity | None:
        """The identity the code was issued for, once; None when unknown, used or expired."""
        self._expire()
        link = self._items.pop(_digest(code), None)
        return link.identity if link is not None else None

    def _expire(self) -> None:
        now = self.clock()
        for key in [k for k, link in self._items.items() if link.expires <= now]:
            del self._items[key]


class LoginLimiter:
    """At most LOGIN_FAILURES failed logins per client address per LOGIN_WINDOW seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 failures: int = LOGIN_FAILURES, window: float = LOGIN_WINDOW,
                 limit: int = MAX_CLIENTS) -> None:
        self.clock = clock
        self.failures = failures
        self.window = window
        self.limit = limit
        self._failed: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str) -> int:
        """0 when `client` may try to log in now, else the seconds until it may."""
        times = self._recent(client)
        if len(times) < self.failures:
            return 0
        return max(1, int(times[0] + self.window - self.clock()) + 1)

    def failed(self, client: str) -> None:
        times = self._recent(client)
        times.append(self.clock())
        self._failed[client] = times
        self._failed.move_to_end(client)
        while len(self._failed) > self.limit:
            self._failed.popitem(last=False)

    def succeeded(self, client: str) -> None:
        self._failed.pop(client, None)

    def _recent(self, client: str) -> deque[float]:
        times = self._failed.get(client) or deque(maxlen=self.failures)
        cutoff = self.clock() - self.window
        while times and times[0] <= cutoff:
            times.popleft()
        return times


def origin_allowed(origin: str | None, host: str | None) -> bool:
    """A POST's Origin, when the browser sent one, must be this master's own origin
    (`https://` + the Host the request came to). Browsers send Origin on every
    cross-site POST, so a missing one means a same-origin request or a non-browser
    client; the CSRF token still has to match either way."""
    if origin is None:
        return True
    return bool(host) and origin == f"https://{host}"
