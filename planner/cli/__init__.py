"""The `planner` command line: one module per verb, each registering its commands here.

Heavy libraries (ortools, kubernetes, vllm) are imported inside commands so that
`planner --help` stays instant. Expected errors (`PlannerError`) become a single
`Error:` line on stderr and the error's exit code; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from planner import __version__
from planner.errors import PlannerError

app = typer.Typer(
    name="planner",
    help="Plan GPU allocations for multi-LLM agentic workflows from their invocation logs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"planner {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the planner version and exit.",
            callback=_show_version,
            is_eager=True,
        ),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log what each stage does to stderr.")
    ] = False,
) -> None:
    """Plan GPU allocations for multi-LLM agentic workflows from their invocation logs."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _register() -> None:
    # Each verb module adds its commands to `app` when imported.
    from planner.cli import (  # noqa: F401
        apply,
        cluster,
        evaluate,
        ingest,
        plan,
        profile,
        profile_store,
        render,
        replan,
        replay,
    )


_register()


def main() -> None:
    """Console-script entry: run the app, turning expected errors into one line.

    Click's standalone mode already reports usage errors (exit 2) and aborts; only
    `PlannerError` needs translating. Other exceptions are bugs and keep their traceback.
    """
    try:
        app()
    except PlannerError as exc:
        typer.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
