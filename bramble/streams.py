"""Relaying a long stream (a followed log) to an HTTP caller, on master and node alike.

A followed log can be silent for hours; nothing then tells the server that its caller
went away, and closing an upstream client session does not wake a pending read. So the
relay waits for the next chunk, the server's stop, or a periodic look at the caller's
transport - whichever comes first - and always cancels what it started.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

CHECK_INTERVAL = 5.0  # how often an idle stream looks whether its caller is still there


def gone(request: web.Request) -> bool:
    """The caller closed its connection."""
    transport = request.transport
    return transport is None or transport.is_closing()


async def while_connected(read: Callable[[], Awaitable[bytes | None]], request: web.Request,
                          stopping: asyncio.Event, *, name: str = "stream",
                          check_interval: float = CHECK_INTERVAL) -> AsyncIterator[bytes]:
    """What `read` returns until None (the end), the caller goes away or `stopping` is set."""
    stop = asyncio.create_task(stopping.wait(), name=f"{name}-stop")
    pending: asyncio.Task[bytes | None] | None = None

    async def next_chunk() -> bytes | None:
        return await read()

    try:
        while True:
            if pending is None:
                pending = asyncio.create_task(next_chunk(), name=f"{name}-chunk")
            done, _ = await asyncio.wait({pending, stop}, timeout=check_interval,
                                         return_when=asyncio.FIRST_COMPLETED)
            if pending not in done:
                if stop in done or gone(request):
                    return
                continue
            chunk, pending = pending.result(), None
            if chunk is None:
                return
            yield chunk
    finally:
        for task in (pending, stop):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (pending, stop) if t is not None),
                             return_exceptions=True)
