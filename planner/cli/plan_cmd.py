"""`planner plan`: traces -> plan.yaml, placement.yaml and manifests/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from planner.cli import app
from planner.cli.flags import (
    ClaimOpt,
    ClusterOpt,
    ConfigsOpt,
    GpusPerNodeOpt,
    GpuTypeOpt,
    HeadroomOpt,
    MappingOpt,
    NamespaceOpt,
    ObjectiveOpt,
    PlannerImageOpt,
    ProfilesOpt,
    ScheduleOpt,
    SharingOpt,
    SloOpt,
    TargetRateOpt,
    TimeLimitOpt,
    TracesOpt,
    UtilisationCapOpt,
    VllmImageOpt,
    WorkersOpt,
    render_settings,
    solve_settings,
    targets,
)
from planner.defaults import (
    DEFAULT_GPU_TYPE,
    DEFAULT_GPUS_PER_NODE,
    NUM_WORKERS,
    TIME_LIMIT_S,
    UTILISATION_CAP,
)
from planner.jobs.requests import DEFAULT_GPUS, ClusterSpec, InputPaths, PlanRequest
from planner.render.settings import RenderOptions

_RENDER = RenderOptions()  # deploy flag defaults live in RenderOptions


@app.command()
def plan(
    traces: Annotated[
        Path,
        typer.Argument(help="A trace file or directory (default: the shipped example traces)."),
    ] = Path("traces"),
    gpus: Annotated[
        int | None,
        typer.Option("--gpus", help=f"GPUs in the cluster (full nodes; default {DEFAULT_GPUS})."),
    ] = None,
    gpu_type: GpuTypeOpt = DEFAULT_GPU_TYPE,
    gpus_per_node: GpusPerNodeOpt = DEFAULT_GPUS_PER_NODE,
    cluster_file: ClusterOpt = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory for plan.yaml.")] = Path(
        "out"
    ),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the plan as JSON instead of a summary.")
    ] = False,
    objective: ObjectiveOpt = "min-latency",
    target_rate: TargetRateOpt = None,
    headroom: HeadroomOpt = 1.0,
    slo: SloOpt = None,
    utilisation_cap: UtilisationCapOpt = UTILISATION_CAP,
    time_limit: TimeLimitOpt = TIME_LIMIT_S,
    workers: WorkersOpt = NUM_WORKERS,
    mapping: MappingOpt = None,
    configs: ConfigsOpt = None,
    profiles: ProfilesOpt = None,
    sharing: SharingOpt = _RENDER.sharing,
    namespace: NamespaceOpt = _RENDER.namespace,
    vllm_image: VllmImageOpt = _RENDER.vllm_image,
    planner_image: PlannerImageOpt = _RENDER.planner_image,
    replan_schedule: ScheduleOpt = _RENDER.replan_schedule,
    replan_traces: TracesOpt = _RENDER.replan_traces,
    replan_traces_claim: ClaimOpt = _RENDER.replan_traces_claim,
) -> None:
    """Choose replicas, TP degrees and GPU shares for the traces' models; write plan.yaml.

    Also places the plan on the cluster and writes placement.yaml and manifests/ (apply
    them with `kubectl apply -k DIR/manifests`).
    """
    from planner.jobs.deploying import plan_and_deploy
    from planner.summaries import placement_summary, plan_json, plan_summary

    if gpus is None and cluster_file is None:
        gpus = DEFAULT_GPUS
    request = PlanRequest(
        traces=traces,
        cluster=ClusterSpec(gpus, gpu_type, gpus_per_node, cluster_file),
        targets=targets(target_rate, headroom, slo, utilisation_cap),
        solve=solve_settings(objective, time_limit, workers),
        inputs=InputPaths(mapping, configs, profiles),
    )
    settings = render_settings(
        sharing,
        namespace,
        vllm_image,
        planner_image,
        replan_schedule,
        replan_traces,
        replan_traces_claim,
    )
    outcome = plan_and_deploy(request, settings, output)
    deployment = outcome.deployment
    if as_json:
        doc = plan_json(deployment.plan, outcome.plan_path)
        typer.echo(json.dumps(doc, indent=2, allow_nan=False))
    else:
        typer.echo(plan_summary(deployment.plan, outcome.plan_path))
        objects = len(deployment.rendered.objects)
        typer.echo(placement_summary(deployment.placement, outcome.manifests_dir, objects))
