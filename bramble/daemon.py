"""How every bramble daemon runs in the foreground: one place for the process-wide parts.

Logs in logfmt on stderr, the allocator tuned for a small machine, and SIGTERM/SIGINT
that only set an event: the daemon's own `serve(..., shutdown, started)` does the graceful
stop, as in hypercorn's `serve(..., shutdown_trigger)`, so tests can embed the same code.

Under systemd (Type=notify, bramble/sdnotify.py) the daemon says READY=1 when `serve`
resolves its `started` future - the master listens, the agent has joined - and STOPPING=1
when the stop begins; a named task feeds the watchdog from the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from bramble.log import setup as setup_logging
from bramble.memory import tune_allocator
from bramble.sdnotify import Notifier

log = logging.getLogger(__name__)

Serve = Callable[[asyncio.Event, "asyncio.Future[Any]"], Awaitable[None]]
# The variables only this process may use: children (Podman) must not answer for it.
_NOTIFY_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def run_until_signal(serve: Serve) -> None:
    """Run `serve(shutdown, started)` until it returns; SIGTERM and SIGINT set `shutdown`."""
    setup_logging(os.environ.get("BRAMBLE_LOG_LEVEL", "info"))
    tune_allocator()
    notifier = Notifier(os.environ)
    for name in _NOTIFY_ENV:
        os.environ.pop(name, None)

    async def main() -> None:
        shutdown = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, shutdown.set)
        await serve_notified(serve, shutdown, notifier)

    try:
        asyncio.run(main())
    finally:
        notifier.close()


async def serve_notified(serve: Serve, shutdown: asyncio.Event, notifier: Notifier) -> None:
    """`serve` with systemd told about it: READY=1 when `started` resolves, WATCHDOG=1 all
    along (starting may take long: a first CA, a wait for approval), STOPPING=1 when
    `shutdown` is set or `serve` ends."""
    loop = asyncio.get_running_loop()
    started: asyncio.Future[Any] = loop.create_future()
    notifier.status("starting")
    watchdog = asyncio.create_task(notifier.feed_watchdog(), name="systemd-watchdog")
    stop_seen = asyncio.create_task(shutdown.wait(), name="systemd-stopping")

    def on_started(future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            notifier.ready(_describe(future.result()))

    def on_stop(_: asyncio.Task[Any]) -> None:
        notifier.stopping("stopping")

    started.add_done_callback(on_started)
    stop_seen.add_done_callback(on_stop)
    try:
        await serve(shutdown, started)
    finally:
        if not stop_seen.done():
            stop_seen.remove_done_callback(on_stop)
            notifier.stopping("stopping")
        for task in (watchdog, stop_seen):
            task.cancel()
        await asyncio.gather(watchdog, stop_seen, return_exceptions=True)
        if not started.done():
            started.cancel()


def _describe(running: Any) -> str:
    """STATUS= text for `systemctl status` from what `serve` put into `started`."""
    parts = []
    for attr, label in (("url", "API"), ("name", "node")):
        value = getattr(running, attr, None)
        if isinstance(value, str) and value:
            parts.append(f"{label} {value}")
    return "serving" + (f" ({', '.join(parts)})" if parts else "")
