"""Stage timing and progress, observed without printing.

A job wraps each stage in `stage(name)`: the stage's wall time is logged at INFO level
(`planner -v` shows "planner.progress: search: 1.42 s"), and listeners are told when a
stage starts and ends. The CLI registers a listener that draws a rich status line on a
terminal (`planner.cli.progress_display`); libraries, notebooks and tests register none,
so nothing is drawn there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_LOG = logging.getLogger(__name__)

#: (stage name, wall seconds once it ended, or None when it starts)
Listener = Callable[[str, float | None], None]
_listeners: list[Listener] = []


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the block as stage `name`: log its wall time and tell the listeners."""
    for listener in tuple(_listeners):
        listener(name, None)
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        _LOG.info("%s: %.2f s", name, elapsed)
        for listener in tuple(_listeners):
            listener(name, elapsed)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Register `listener` for the stages run inside the block."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)
