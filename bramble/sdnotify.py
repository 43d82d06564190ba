"""systemd's notification protocol (sd_notify), without a dependency.

A unit with Type=notify passes $NOTIFY_SOCKET: an AF_UNIX datagram socket, a path or an
abstract name written with a leading '@'. Each message is a datagram of newline-separated
KEY=VALUE lines: READY=1 once serving, STATUS=... for `systemctl status`, WATCHDOG=1 at
least every $WATCHDOG_USEC, STOPPING=1 when shutting down. Without $NOTIFY_SOCKET (a
terminal, a test, another supervisor) every call is a no-op; a failed send is logged and
never stops a daemon. Sending is one non-blocking sendto on a local datagram socket, so
it is safe to call from the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


def _address(value: str) -> str | bytes | None:
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()  # Linux abstract namespace
    if value.startswith("/"):
        return value
    return None  # vsock addresses and the like: not ours to support


class Notifier:
    """Talks to $NOTIFY_SOCKET (read once, at construction). Close is idempotent."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = _address(env.get("NOTIFY_SOCKET", ""))
        self._sock: socket.socket | None = None
        self.watchdog_interval = _watchdog_interval(env)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *lines: str) -> bool:
        """Send one message; True when it was sent."""
        if self._address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(lines).encode(), self._address)
        except OSError as err:
            log.warning("cannot notify systemd", extra={"error": str(err)})
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, status: str) -> bool:
        return self.notify(f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str = "") -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    async def feed_watchdog(self) -> None:
        """Send WATCHDOG=1 at half the watchdog interval until cancelled; returns at once
        when systemd set no watchdog. It runs on the event loop on purpose: a loop stuck
        in a blocking call stops feeding, and systemd restarts the daemon."""
        if self.watchdog_interval is None or not self.enabled:
            return
        while True:
            self.watchdog()
            await asyncio.sleep(self.watchdog_interval / 2)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Seconds from $WATCHDOG_USEC, if the watchdog is meant for this process."""
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None  # inherited from a parent that is the one being watched
    return usec / 1_000_000
