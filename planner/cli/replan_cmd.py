"""`planner replan`: the re-planning CronJob's entry (see `planner.jobs.replanning`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.cli import app
from planner.cli.flags import (
    ConfigsOpt,
    HeadroomOpt,
    LatencyToleranceOpt,
    MappingOpt,
    NamespaceOpt,
    PrefixCachingOpt,
    ProfilesOpt,
    SharingOpt,
    SloOpt,
    TargetRateOpt,
    TimeLimitOpt,
    UtilisationCapOpt,
    VllmImageOpt,
    WorkersOpt,
    render_settings,
    solve_settings,
    targets,
)
from planner.defaults import LATENCY_TOLERANCE, NUM_WORKERS, TIME_LIMIT_S, UTILISATION_CAP
from planner.jobs.requests import InputPaths, PlanRequest, parse_on_off
from planner.render.settings import RenderOptions

_D = RenderOptions()


@app.command("replan")
def replan_command(
    traces: Annotated[
        str,
        typer.Option(
            "--traces", help="Trace file or directory, or an object-store URL (s3://, gs://)."
        ),
    ],
    window: Annotated[
        str, typer.Option("--window", help="Plan on the workflows of this last span (6h, 30m).")
    ] = "1h",
    namespace: NamespaceOpt = _D.namespace,
    sharing: SharingOpt = _D.sharing,
    vllm_image: VllmImageOpt = _D.vllm_image,
    margin: Annotated[
        float,
        typer.Option("--margin", help="Relative gain a new plan needs to replace a working one."),
    ] = 0.10,
    max_changes: Annotated[
        int, typer.Option("--max-changes", min=1, help="Replicas added or removed per run.")
    ] = 4,
    max_utilisation: Annotated[
        float,
        typer.Option(
            "--max-utilisation",
            help="The running plan fails when a model's demand passes this share of capacity.",
        ),
    ] = 1.0,
    objective: Annotated[
        str | None,
        typer.Option("--objective", help="Plan objective (default: the running plan's)."),
    ] = None,
    target_rate: TargetRateOpt = None,
    slo: SloOpt = None,
    utilisation_cap: UtilisationCapOpt = UTILISATION_CAP,
    headroom: HeadroomOpt = 1.0,
    time_limit: TimeLimitOpt = TIME_LIMIT_S,
    workers: WorkersOpt = NUM_WORKERS,
    latency_tolerance: LatencyToleranceOpt = LATENCY_TOLERANCE,
    configs: ConfigsOpt = None,
    profiles: ProfilesOpt = None,
    mapping: MappingOpt = None,
    prefix_caching: PrefixCachingOpt = "on",
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Decide and show changes; the server persists nothing."),
    ] = False,
) -> None:
    """Re-plan on recent traces; apply (scale-ups first, capped) only when needed or better."""

    from planner.jobs.replanning import replan_job
    from planner.replan import ReplanPolicy, parse_duration_s

    # Used only for a ConfigMap written before render settings were stored beside the plan.
    render = render_settings(sharing=sharing, namespace=namespace, vllm_image=vllm_image)
    request = PlanRequest(
        traces=Path(),  # replaced by the fetched local copy of --traces
        targets=targets(target_rate, headroom, slo, utilisation_cap),
        solve=solve_settings(objective or "min-latency", time_limit, workers, latency_tolerance),
        inputs=InputPaths(mapping, configs, profiles),
        window_s=parse_duration_s(window),
        prefix_caching=parse_on_off(prefix_caching, "--prefix-caching"),
    )
    policy = ReplanPolicy(margin, max_changes, max_utilisation)
    result = replan_job(traces, request, policy, render, objective is not None, dry_run)
    typer.echo(result.outcome.decision.log_line())
    if result.changes is None:
        return
    for change in result.changes.changes:
        if change.action != "unchanged":
            typer.echo(change.line())
    typer.echo(f"{'dry run: ' if dry_run else ''}{result.changes.summary()}")
