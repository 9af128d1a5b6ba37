"""`planner characterise`: the workload study of a trace, as tables or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.cli import app
from planner.cli.flags import MappingOpt


@app.command()
def characterise(
    path: Annotated[
        Path,
        typer.Argument(
            help="A trace file or a directory of them (any format `planner ingest` reads).",
            show_default=False,
        ),
    ],
    mapping: MappingOpt = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the study as JSON (a public contract: docs/characterise.md)."
        ),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Also write the JSON to this file (atomically)."),
    ] = None,
) -> None:
    """Study how the traced workflows use their LLMs: calls, fan-out, depth, graph shapes,
    where the time goes, failures, prefix reuse, token lengths, burstiness, share stability
    and, where agents are named, per-role figures and role path patterns."""
    from planner.jobs.characterising import characterise_job
    from planner.summaries import study_summary

    done = characterise_job(path, mapping, output)
    typer.echo(done.study_json if as_json else study_summary(done.study), nl=False)
