"""`planner ingest`: read traces and print the Aggregate LLM Pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from planner.cli import app

if TYPE_CHECKING:
    from planner.types.apl import AggregatePipeline


@app.command()
def ingest(
    path: Annotated[
        Path,
        typer.Argument(
            help="A trace file or a directory of them: Parquet, CSV, JSONL or OTLP/JSON "
            "spans, optionally gzipped (directories are read recursively).",
            show_default=False,
        ),
    ],
    mapping: Annotated[
        Path | None,
        typer.Option(
            "--mapping",
            help="YAML column mapping for tables that do not use the canonical column names "
            "(see traces/README.md and traces/mappings/).",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the Aggregate LLM Pipeline as JSON (a public contract)."
        ),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Also write the JSON to this file (atomically)."),
    ] = None,
    skip_bad_rows: Annotated[
        bool,
        typer.Option(
            "--skip-bad-rows",
            help="Drop invalid rows and report how many were skipped and why, instead of failing.",
        ),
    ] = False,
) -> None:
    """Read traces, validate them and summarise each workflow type as an Aggregate LLM Pipeline."""
    from planner.jobs.ingesting import ingest_job

    ingested = ingest_job(path, mapping, skip_bad_rows, output)
    calls, apl, text = ingested.calls, ingested.apl, ingested.apl_json
    if calls.skipped_rows:
        detail = ", ".join(f"{n} {reason}" for reason, n in calls.skipped_rows.items())
        typer.echo(f"Skipped {sum(calls.skipped_rows.values())} bad rows: {detail}", err=True)
    if as_json:
        typer.echo(text, nl=False)
    else:
        _print_table(apl, len(calls))


def _print_table(apl: AggregatePipeline, n_calls: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=120)
    console.print(f"{n_calls} calls from {len(apl.sources)} file(s)")
    for w in apl.workflows:
        rate = f"{w.arrival_rate_per_s:.3g}/s" if w.arrival_rate_per_s is not None else "n/a"
        latency = f"{w.latency_s.mean:.3g} s" if w.latency_s is not None else "n/a"
        fraction = f"{w.llm_time_fraction:.0%}" if w.llm_time_fraction is not None else "n/a"
        console.print(
            f"\n[bold]{w.workflow_type}[/bold]: {w.workflow_count} workflows, arrivals {rate}, "
            f"mean latency {latency}, LLM busy {fraction}",
            highlight=False,
        )
        table = Table()
        for header in (
            "model",
            "calls/wf",
            "parallelism",
            "share",
            "share cv",
            "in p50",
            "out p50",
        ):
            table.add_column(header, justify="left" if header == "model" else "right")
        for m in w.models:
            table.add_row(
                m.model,
                f"{m.calls_per_workflow:.3g}",
                _fmt(m.parallelism),
                _fmt(m.execution_share),
                _fmt(m.execution_share_cv),
                f"{m.input_tokens.p50:.0f}",
                f"{m.output_tokens.p50:.0f}",
            )
        console.print(table)
    for note in apl.notes:
        console.print(f"note: {note}")


def _fmt(value: float) -> str:
    return "n/a" if value != value else f"{value:.3f}"  # NaN is unknown
