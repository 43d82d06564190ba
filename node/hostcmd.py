"""Host commands (`ip`, `iptables`) run without blocking the event loop.

The agent changes the host's network with the distributions' own tools rather than
netlink from Python: they are what an admin debugs with, and they handle the kernel's
corner cases. Output is small, so it is read whole.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.code == 0


async def run(*argv: str) -> Result:
    """Run argv; a missing program is exit code 127 with the reason in `err`."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
    except OSError as err:
        return Result(127, "", f"cannot run {argv[0]}: {err}")
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(errors="replace"),
                  err.decode(errors="replace").strip())
