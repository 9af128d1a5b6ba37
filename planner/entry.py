"""The console script's entry: signals are handled from the first instruction on.

Importing the CLI (typer, pandas, numpy) takes a second or more; an interrupt during that
time would print a KeyboardInterrupt traceback (SIGINT) or kill the process unreported
(SIGTERM). Nothing has been read or written yet, so the early handler just says so and
exits with 128 + the signal number. Each command then installs its own handlers
(`planner.io.signals.interrupts_raise`, through `planner.cli.failures.PlannerGroup`).
"""

from __future__ import annotations

import os
import signal
from types import FrameType


def _early_exit(signum: int, frame: FrameType | None) -> None:
    os.write(2, b"interrupted, nothing changed\n")
    os._exit(128 + signum)


def main() -> None:
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, _early_exit)
    from planner.cli import main as cli_main

    cli_main()
