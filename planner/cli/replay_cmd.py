"""`planner replay`: drive live OpenAI-compatible endpoints with the trace's workflows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from planner.cli import app
from planner.cli.flags import ConfigsOpt, MappingOpt


@app.command()
def replay(
    traces: Annotated[
        str,
        typer.Argument(
            help="Trace file or directory whose workflows are replayed, or an object-store "
            "URL (s3://, gs://, ...)."
        ),
    ],
    endpoints: Annotated[
        Path,
        typer.Option(
            "--endpoints",
            help="YAML mapping each model to its base URL(s): schema_version: 1, "
            "endpoints: {MODEL: URL | [URL, ...]}.",
        ),
    ],
    rate: Annotated[
        float, typer.Option("--rate", help="Workflow arrivals per second (Poisson, all types).")
    ],
    duration: Annotated[
        float, typer.Option("--duration", help="Seconds during which workflows arrive.")
    ],
    workflows: Annotated[
        int | None,
        typer.Option("--workflows", min=1, help="Stop arrivals after this many workflows."),
    ] = None,
    warmup: Annotated[
        float,
        typer.Option("--warmup", min=0.0, help="Seconds at the start that are not measured."),
    ] = 0.0,
    drain: Annotated[
        float,
        typer.Option(
            "--drain", min=0.0, help="Seconds running workflows may take after arrivals stop."
        ),
    ] = 120.0,
    request_timeout: Annotated[
        float,
        typer.Option("--request-timeout", min=0.1, help="A call taking longer is a timeout."),
    ] = 600.0,
    max_connections: Annotated[
        int,
        typer.Option(
            "--max-connections", min=1, help="HTTP connections open at once to each endpoint URL."
        ),
    ] = 256,
    seed: Annotated[int, typer.Option("--seed", help="Arrival seed.")] = 0,
    compare: Annotated[
        Path | None,
        typer.Option(
            "--compare",
            help="plan.yaml (or its folder) whose predictions are printed beside the "
            "measurements; its workflow mix is replayed.",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Also write the JSON document here (for `profile import`)."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON document (the shape of evaluate's).")
    ] = False,
    mapping: MappingOpt = None,
    configs: ConfigsOpt = None,
) -> None:
    """Replay the traced workflows against live endpoints: each workflow closed-loop with
    its dependencies, fan-out and tool gaps, workflows arriving open-loop at --rate; report
    workflow rate and latency, per-model TTFT/TPOT/e2e and the servers' metrics. Ctrl-C
    stops early and keeps what was measured."""
    from rich.progress import Progress

    from planner.errors import EndpointError
    from planner.jobs.replay import ReplayRequest, ReplaySettings, replay_job
    from planner.summaries import replay_summary

    settings = ReplaySettings(
        rate_per_s=rate,
        duration_s=duration,
        workflows=workflows,
        warmup_s=warmup,
        drain_s=drain,
        request_timeout_s=request_timeout,
        max_connections=max_connections,
        seed=seed,
    )
    request = ReplayRequest(traces, endpoints, settings, compare, mapping, configs, output)
    with Progress(transient=True, disable=as_json) as bar:
        task = bar.add_task("replaying", total=None)

        def step(elapsed: float, done: int, running: int) -> None:
            bar.update(task, description=f"{elapsed:6.1f} s: {done} done, {running} running")

        outcome = replay_job(request, step)
    if as_json:
        typer.echo(json.dumps(outcome.document, indent=2))
    else:
        typer.echo(replay_summary(outcome.measure, outcome.comparison, outcome.servers))
    if outcome.failure:
        raise EndpointError(f"{outcome.failure}; the measurements above were kept")
