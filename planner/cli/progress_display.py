"""Rich progress on stderr while a long command works (plan, evaluate).

One line per stage with a spinner and the time elapsed, ticking while the stage runs (a
CP-SAT search on 100,000 GPUs takes minutes), removed when the command ends. Shown only
when stderr is a terminal and the command does not print JSON; otherwise nothing is
drawn (pipes, CI logs and `--json` stay clean). The timings themselves are logged by
`planner.progress` and shown with `planner -v`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from planner.progress import listening


@contextmanager
def progress_shown(enabled: bool = True) -> Iterator[None]:
    """Draw each stage, with its elapsed time, while the block runs."""
    if not enabled or not sys.stderr.isatty():
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("planner: {task.description}"), TimeElapsedColumn())
    tasks: dict[str, Any] = {}
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:

        def show(name: str, elapsed_s: float | None) -> None:
            if elapsed_s is None:
                tasks[name] = progress.add_task(name, total=None)
            elif name in tasks:
                progress.update(tasks.pop(name), total=1, completed=1)

        with listening(show):
            yield
