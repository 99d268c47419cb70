"""Giving memory back after bulk work, so a long-running idle daemon stays small.

Sealing or applying thousands of operations, or importing a large file,
allocates tens of megabytes that Python frees but glibc's allocator keeps
mapped; the daemon then idles for days at its peak. ``malloc_trim`` returns
the free heap to the system. Elsewhere (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable
from functools import cache
from typing import cast

# Operations or records in one round or file above which trimming is worth its
# cost (a walk of the heap, a millisecond or two).
BULK = 1000


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return cast(Callable[[int], int], ctypes.CDLL(name).malloc_trim)
    except (OSError, AttributeError):
        return None


def after_bulk(count: int) -> None:
    """Call after work that touched `count` records or operations."""
    if count < BULK:
        return
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
