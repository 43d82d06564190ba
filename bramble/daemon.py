"""How every bramble daemon runs in the foreground: one place for the process-wide parts.

Logs in logfmt on stderr, the allocator tuned for a small machine, and SIGTERM/SIGINT
that only set an event: the daemon's own `serve(..., shutdown)` does the graceful stop,
as in hypercorn's `serve(..., shutdown_trigger)`, so tests can embed the same code.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable

from bramble.log import setup as setup_logging
from bramble.memory import tune_allocator


def run_until_signal(serve: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `serve(shutdown)` until it returns; SIGTERM and SIGINT set `shutdown`."""
    setup_logging(os.environ.get("BRAMBLE_LOG_LEVEL", "info"))
    tune_allocator()

    async def main() -> None:
        shutdown = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, shutdown.set)
        await serve(shutdown)

    asyncio.run(main())
