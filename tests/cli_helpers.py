"""Run `planner` commands in-process, as a user would, with their exit codes."""

from __future__ import annotations

from collections.abc import Mapping

from typer.testing import CliRunner

from planner.cli import app


def invoke(*args: str, env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `planner ARGS`; a bug's traceback is re-raised."""
    result = CliRunner().invoke(app, list(args), env=dict(env or {}))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr
