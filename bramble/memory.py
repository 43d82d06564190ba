"""Keep a long-running bramble daemon's memory close to what it really uses.

glibc's malloc raises its mmap threshold every time a large block is freed (up to 32 MiB),
so after the first few 1 MiB LIST responses every later one comes from the heap, where
freed memory fragments and is never given back: a master that served a few large lists
would sit at twice the RSS it needs. Pinning the threshold keeps large buffers in their
own mappings, returned to the system when freed, and a single malloc arena per process
stops the executor threads from each growing their own. On a Pi with 1 GB this is the
difference between a master that fits and one that does not.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_allocator(mmap_threshold: int = 128 * 1024, arenas: int = 2) -> bool:
    """Apply the settings above; False (and nothing changed) when libc is not glibc."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = (mallopt(_M_MMAP_THRESHOLD, mmap_threshold) == 1
          and mallopt(_M_TRIM_THRESHOLD, 2 * mmap_threshold) == 1
          and mallopt(_M_ARENA_MAX, arenas) == 1)
    if not ok:
        log.debug("mallopt refused a setting; keeping the allocator's defaults")
    return ok
