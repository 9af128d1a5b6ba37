"""`planner replay`: drive live OpenAI-compatible endpoints with the trace's workflows."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from planner.cli import app
from planner.cli.options import ConfigsOpt, MappingOpt

if TYPE_CHECKING:
    from planner.replay.measure import ReplayMeasure


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
        int, typer.Option("--max-connections", min=1, help="HTTP connections open at once.")
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

    from planner.io.atomic import write_text_atomic
    from planner.io.plan_file import PLAN_FILE
    from planner.io.replay_client import EndpointError
    from planner.jobs.replay import ReplayRequest, replay_job
    from planner.replay import ReplaySettings
    from planner.replay.report import comparison_lines

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
    plan_path = compare / PLAN_FILE if compare is not None and compare.is_dir() else compare
    request = ReplayRequest(traces, endpoints, settings, plan_path, mapping, configs)
    with Progress(transient=True, disable=as_json) as bar:
        task = bar.add_task("replaying", total=None)

        def step(elapsed: float, done: int, running: int) -> None:
            bar.update(task, description=f"{elapsed:6.1f} s: {done} done, {running} running")

        outcome = replay_job(request, step)
    text = json.dumps(outcome.document, indent=2)
    if output is not None:
        write_text_atomic(output, text + "\n")
    if as_json:
        typer.echo(text)
    else:
        _print_measure(outcome.measure)
        if outcome.comparison:
            typer.echo("predicted (plan) vs measured (replay):")
            for line in comparison_lines(outcome.comparison):
                typer.echo(f"  {line}")
    if outcome.failure:
        raise EndpointError(f"{outcome.failure}; the measurements above were kept")


def _print_measure(m: ReplayMeasure) -> None:
    t = m.total
    state = "sustained" if m.sustainable else "NOT sustained"
    typer.echo(
        f"offered {m.offered_rate_per_s:.4g} workflows/s for a {m.window_s:.4g} s window: "
        f"{t.completed}/{t.offered} completed ({t.failed} failed, {t.incomplete} incomplete), "
        f"throughput {t.throughput_per_s:.4g}/s ({state})"
    )
    if m.stop_reason:
        typer.echo(f"stopped early: {m.stop_reason}")
    typer.echo(
        f"{'workflow type':<20} {'done':>6} {'rate/s':>8} {'mean s':>9} {'p50 s':>9} {'p95 s':>9}"
    )
    for w in (*m.workflows, t):
        s = w.latency_s
        typer.echo(
            f"{w.workflow_type:<20} {w.completed:>6} {w.throughput_per_s:>8.4g} "
            f"{s.mean:>9.4g} {s.p50:>9.4g} {s.p95:>9.4g}"
        )
    typer.echo(
        f"{'model':<28} {'calls':>6} {'err':>4} {'t/o':>4} {'calls/s':>8} "
        f"{'TTFT ms':>9} {'TPOT ms':>9} {'e2e ms':>9} {'p95 e2e':>9}"
    )
    for mm in m.models:
        tm = mm.timings
        typer.echo(
            f"{mm.model:<28} {mm.calls:>6} {mm.errors:>4} {mm.timeouts:>4} "
            f"{mm.call_rate_per_s:>8.4g} {tm.ttft_ms.mean:>9.4g} {tm.tpot_ms.mean:>9.4g} "
            f"{tm.e2e_ms.mean:>9.4g} {tm.e2e_ms.p95:>9.4g}"
        )
    for note in m.notes:
        typer.echo(f"note: {note}")
    if math.isnan(t.throughput_per_s):
        typer.echo("nothing was measured")
