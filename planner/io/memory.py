"""Give memory freed by finished batches back to the operating system.

Reading streams batches whose temporary arrays are freed right away, but neither Arrow's
mimalloc pool nor glibc's heap returns freed pages on its own: after ingesting 10 million
calls about 700 MB of freed memory stayed resident (measured, benchmarks/ingest_scale.py).
Releasing it between batches keeps peak memory near the live data.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

import pyarrow as pa


def release_freed_memory() -> None:
    """Return unused Arrow pool memory and trim the C heap (glibc only; no-op elsewhere)."""
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
        return trim
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None
