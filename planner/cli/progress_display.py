"""A rich status line on stderr while a long command works (plan, evaluate).

Shown only when stderr is a terminal and the command does not print JSON; otherwise
nothing is drawn (pipes, CI logs and `--json` stay clean). Stage timings themselves are
logged by `planner.progress` and shown with `planner -v`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from planner.progress import listening


@contextmanager
def progress_shown(enabled: bool = True) -> Iterator[None]:
    """Draw the current stage and the time spent so far while the block runs."""
    if not enabled or not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    console = Console(stderr=True)
    start = time.perf_counter()
    with console.status("planner: starting", spinner="dots") as status:

        def show(name: str, elapsed_s: float | None) -> None:
            total = time.perf_counter() - start
            if elapsed_s is None:
                status.update(f"planner: {name} ({total:.0f} s so far)")

        with listening(show):
            yield
