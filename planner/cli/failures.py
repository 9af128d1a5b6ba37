"""How every command ends: one `Error:` line and an exit code, or an interrupt message.

`PlannerGroup` is the Typer group class of the `planner` app, so this holds for the
console script and for in-process runs (`CliRunner`, tests) alike:

- `PlannerError` (bad input, bad config, infeasible): `Error: <message>`, exit 2 or 3.
- an operating-system error (permission denied, no such file, disk full) that no reader
  turned into a `PlannerError` yet: the same, naming the path and the cause, exit 2.
- SIGINT or SIGTERM: "interrupted, nothing changed" (or what did change), exit 130/143.
  The handlers are installed for the whole command (`planner.io.signals`).
- anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from planner.errors import PlannerError

# errnos that describe the machine or the user's files, never planner's logic
_ENVIRONMENT_ERRNOS = frozenset(
    {
        errno.EACCES,
        errno.EPERM,
        errno.ENOENT,
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EROFS,
        errno.EISDIR,
        errno.ENOTDIR,
        errno.ENAMETOOLONG,
        errno.ELOOP,
        errno.EIO,
    }
)


def os_error_message(exc: OSError) -> str:
    """`<path>: permission denied (...)`-style line for an environment OSError."""
    where = exc.filename if exc.filename is not None else "a file"
    cause = {
        errno.EACCES: "permission denied; check the file's and its folders' permissions",
        errno.EPERM: "operation not permitted; check the file's permissions",
        errno.ENOENT: "no such file or directory; check the path",
        errno.ENOSPC: "no space left on the device; free space or write elsewhere",
        errno.EDQUOT: "disk quota exceeded; free space or write elsewhere",
        errno.EROFS: "read-only file system; write elsewhere",
    }.get(exc.errno or 0, f"{exc.strerror or exc}; check the path")
    return f"{where}: {cause}"


class PlannerGroup(TyperGroup):
    """The app's group: expected failures become one line and an exit code."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click.Context
        from planner.io.signals import (
            Interrupted,
            check_interrupted,
            interrupts_raise,
            received,
        )

        try:
            with interrupts_raise():
                try:
                    result = super().invoke(ctx)
                    check_interrupted()
                    return result
                except Exception as exc:
                    # An interrupt whose exception a library turned into another one
                    # (an import cut short becomes ImportError) is still the interrupt.
                    interrupt = received()
                    if interrupt is None or isinstance(exc, typer.Exit):
                        raise
                    raise interrupt from None
        except PlannerError as exc:
            _fail(f"Error: {exc}", exc.exit_code)
        except Interrupted as exc:
            _fail(exc.message, exc.exit_code)
        except OSError as exc:
            if exc.errno not in _ENVIRONMENT_ERRNOS:
                raise
            _fail(f"Error: {os_error_message(exc)}", PlannerError.exit_code)


def _fail(line: str, code: int) -> None:
    typer.echo(line, err=True)
    sys.stderr.flush()
    raise typer.Exit(code)
