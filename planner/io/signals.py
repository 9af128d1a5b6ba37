"""SIGINT and SIGTERM as exceptions, and a critical section they cannot split.

`interrupts_raise()` makes both signals raise `Interrupted` in the main thread (SIGTERM
otherwise kills the process without running any cleanup). The output writer
(`planner.io.output`) removes its staging directory on the way out and defers the
signals while it swaps the new output in, so an interrupt leaves the old complete output
or the new complete output. `note_change` records when something outside the process did
change (output swapped in, cluster objects applied), so the message says what is true.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived. A BaseException, so `except Exception` never swallows it."""

    def __init__(self, signum: int, changed: str | None) -> None:
        self.signum = signum
        self.changed = changed
        super().__init__(self.message)

    @property
    def exit_code(self) -> int:
        """128 + signal number, as a shell reports a process killed by it."""
        return 128 + self.signum

    @property
    def message(self) -> str:
        if self.changed is None:
            return "interrupted, nothing changed"
        return f"interrupted; {self.changed}"


_changed: list[str] = []
_received: list[int] = []  # signals received since interrupts_raise() was entered


def received() -> Interrupted | None:
    """The interrupt that arrived (even if some library swallowed its exception), or None.

    A handler's exception can be lost: raised during an import it becomes an ImportError
    that a library's `except ImportError` fallback catches. Callers check this before
    anything irreversible (the output swap) and when a command fails.
    """
    if not _received:
        return None
    return Interrupted(_received[0], "; ".join(_changed) if _changed else None)


def check_interrupted() -> None:
    """Raise the interrupt that arrived earlier, if one did."""
    interrupt = received()
    if interrupt is not None:
        raise interrupt


def note_change(what: str) -> None:
    """Record a change that an interrupt from now on can no longer undo."""
    _changed.append(what)


def _raise(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    raise Interrupted(signum, "; ".join(_changed) if _changed else None)


@contextmanager
def interrupts_raise() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise `Interrupted` (main thread only).

    The previous handlers come back on exit. Libraries that reset SIGINT to its default
    action (CP-SAT did, after each solve, until planner turned its signal catching off)
    would silently undo this; re-entering the block re-installs the handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    _changed.clear()
    _received.clear()
    for s in SIGNALS:
        signal.signal(s, _raise)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Block SIGINT and SIGTERM for the block; one that arrived is delivered after it."""
    main = threading.current_thread() is threading.main_thread()
    if not main or not hasattr(signal, "pthread_sigmask"):  # Windows has no signal masks
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
