"""The `planner` command line: one module per verb (`*_cmd.py`), each registering its
commands on `app` (or its `profile` and `cluster` groups).

A command parses its flags into a typed request, calls a job (`planner.jobs`) and prints
(`planner.summaries`). Heavy libraries (pandas, OR-Tools, kubernetes, vLLM) load inside
commands, so `planner --help` stays instant. Expected errors (`PlannerError`) become one
`Error:` line on stderr and the error's exit code, inside the app, so tests run commands
in-process with typer's CliRunner; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from planner import __version__
from planner.cli.failures import PlannerGroup


def _group(help_text: str) -> typer.Typer:
    return typer.Typer(
        cls=PlannerGroup,  # one error line, exit codes, interrupts (cli/failures.py)
        help=help_text,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )


app = _group("Plan GPU allocations for multi-LLM agentic workflows from their invocation logs.")
profile_app = _group(
    "Performance profiles: predict latency and throughput of a model on a GPU shape."
)
cluster_app = _group("Describe the GPU cluster plans are placed on.")
model_app = _group("Model catalog: add models from Hugging Face configs.")
app.add_typer(profile_app, name="profile")
app.add_typer(cluster_app, name="cluster")
app.add_typer(model_app, name="model")


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
        apply_cmd,
        characterise_cmd,
        cluster_cmd,
        evaluate_cmd,
        ingest_cmd,
        model_cmd,
        plan_cmd,
        profile_cmd,
        profile_store_cmd,
        render_cmd,
        replan_cmd,
        replay_cmd,
        report_cmd,
    )


_register()


def main() -> None:
    """Console-script entry."""
    app()
