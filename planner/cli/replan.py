"""`planner replan`: the re-planning CronJob's entry.

Reads the running plan and its cluster from the plan ConfigMap, plans on the recent
window of the traces, decides with `decide_replan` (pure), and server-side applies the
serving objects of the chosen step. `replan_step` holds everything except the cluster
I/O so it is tested without an API server.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from planner.cli import app
from planner.cli.deploy_options import NamespaceOpt, SharingOpt, VllmImageOpt
from planner.cli.options import (
    ConfigsOpt,
    HeadroomOpt,
    ProfilesOpt,
    SloOpt,
    TargetRateOpt,
    TimeLimitOpt,
    UtilisationCapOpt,
    WorkersOpt,
)
from planner.cli.plan import PLANNING_DEFAULTS
from planner.render.settings import RenderOptions

if TYPE_CHECKING:
    from planner.cli.deploy_options import Deployment
    from planner.cli.plan import PlanningOptions
    from planner.render import RenderOptions as _RenderOptions
    from planner.replan import ReplanDecision, ReplanPolicy
    from planner.types.plan import Plan

_D = RenderOptions()


@dataclass(frozen=True)
class ReplanOutcome:
    decision: ReplanDecision
    deployment: Deployment | None  # what to apply; None when keeping the running plan


def replan_step(
    stored: Mapping[str, str],
    traces: Path,
    planning: PlanningOptions,
    policy: ReplanPolicy,
    render: _RenderOptions,
    explicit_objective: bool = False,
) -> ReplanOutcome:
    """Plan on the traces, compare with the stored plan, and render the step to apply.

    Args:
        stored: the plan ConfigMap's data (`plan.yaml`, `cluster.yaml`).
        traces: local trace file or directory.
        planning: planning options (objective, window, solver limits).
        policy: margin, per-run cap, utilisation threshold.
        render: namespace, sharing backend, images.
        explicit_objective: keep `planning.objective`; else use the running plan's.

    Raises:
        InputError: the ConfigMap lacks its cluster or plan.
    """
    import yaml

    from planner.cli.deploy_options import deploy_plan
    from planner.cli.plan import research_without, run_planning
    from planner.errors import InputError
    from planner.io.cluster_file import parse_cluster
    from planner.render import CLUSTER_KEY, PLAN_KEY
    from planner.replan import decide_replan
    from planner.search.predict import make_plan

    if CLUSTER_KEY not in stored or PLAN_KEY not in stored:
        raise InputError(
            f"the plan ConfigMap lacks {CLUSTER_KEY} or {PLAN_KEY}; "
            "apply manifests written by `planner plan -o DIR` first"
        )
    cluster = parse_cluster(yaml.safe_load(stored[CLUSTER_KEY]), f"ConfigMap {CLUSTER_KEY}")
    running = _parse_plan(stored[PLAN_KEY])
    if running is not None and not explicit_objective:
        planning = replace(planning, objective=running.objective)
    result = run_planning(traces, cluster, planning)
    current = None
    if running is not None:
        # The running allocations, predicted on the same window as the proposal.
        current = make_plan(result.problem, running.allocations, running.objective, running.solver)
    decision = decide_replan(current, result.plan, cluster.gpus_by_type(), policy)
    if not decision.apply:
        return ReplanOutcome(decision, None)
    step = result.plan
    if not decision.complete:
        note = f"replan step: {decision.deferred_changes} replica change(s) deferred"
        step = make_plan(result.problem, decision.allocations, step.objective, step.solver, (note,))
        step = replace(step, inputs_digest=result.plan.inputs_digest)
    research = research_without(result, planning) if decision.complete else None
    return ReplanOutcome(decision, deploy_plan(step, cluster, result.catalog, render, research))


def _parse_plan(text: str) -> Plan | None:
    from planner.io.plan_file import read_plan

    if not text.strip():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.yaml"
        path.write_text(text, encoding="utf-8")
        return read_plan(path)


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
    utilisation_cap: UtilisationCapOpt = PLANNING_DEFAULTS.utilisation_cap,
    headroom: HeadroomOpt = PLANNING_DEFAULTS.headroom,
    time_limit: TimeLimitOpt = PLANNING_DEFAULTS.time_limit_s,
    workers: WorkersOpt = PLANNING_DEFAULTS.num_workers,
    configs: ConfigsOpt = None,
    profiles: ProfilesOpt = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Decide and show changes; the server persists nothing."),
    ] = False,
) -> None:
    """Re-plan on recent traces; apply (scale-ups first, capped) only when needed or better."""
    from planner.apply import SERVING_KINDS, plan_apply
    from planner.cli.deploy_options import render_options
    from planner.cli.plan import OBJECTIVES, PlanningOptions, parse_slos, parse_target_rates
    from planner.errors import InputError
    from planner.io.kube import connect, execute, live_objects, read_configmap
    from planner.io.manifests import to_dict
    from planner.io.remote import fetch_traces
    from planner.render.common import PLAN_CONFIGMAP
    from planner.replan import ReplanPolicy, parse_duration_s

    render = replace(
        render_options(sharing, namespace, vllm_image, _D.planner_image, "", "", ""),
        replan_schedule=_D.replan_schedule,
    )
    if objective is not None and objective not in OBJECTIVES:
        raise InputError(f"--objective {objective!r}: choose one of {', '.join(OBJECTIVES)}")
    planning = PlanningOptions(
        objective=objective or "min-latency",
        target_rate_per_s=parse_target_rates(target_rate or []),
        slo_s=parse_slos(slo or []),
        utilisation_cap=utilisation_cap,
        headroom=headroom,
        time_limit_s=time_limit,
        num_workers=workers,
        configs_dir=configs,
        profiles_dir=profiles,
        window_s=parse_duration_s(window),
    )
    policy = ReplanPolicy(margin, max_changes, max_utilisation)
    client = connect()
    stored = read_configmap(client, namespace, PLAN_CONFIGMAP) or {}
    with tempfile.TemporaryDirectory() as scratch:
        local = fetch_traces(traces, Path(scratch))
        outcome = replan_step(stored, local, planning, policy, render, objective is not None)
    typer.echo(outcome.decision.log_line())
    if outcome.deployment is None:
        return
    desired = [to_dict(o) for o in outcome.deployment.rendered.serving]
    live = live_objects(client, desired, SERVING_KINDS)
    changes = plan_apply(desired, live, prune=True, prune_kinds=SERVING_KINDS)
    for change in changes.changes:
        if change.action != "unchanged":
            typer.echo(change.line())
    execute(client, changes, desired, dry_run=dry_run)
    typer.echo(f"{'dry run: ' if dry_run else ''}{changes.summary()}")
