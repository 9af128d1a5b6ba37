"""`planner render PLAN`: place an existing plan.yaml and write its manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.cli import app
from planner.cli.flags import (
    ClaimOpt,
    ConfigsOpt,
    GpusPerNodeOpt,
    GpuTypeOpt,
    NamespaceOpt,
    PlannerImageOpt,
    ScheduleOpt,
    SharingOpt,
    TracesOpt,
    VllmImageOpt,
    render_settings,
)
from planner.defaults import DEFAULT_GPU_TYPE, DEFAULT_GPUS_PER_NODE
from planner.jobs.requests import ClusterSpec
from planner.render.settings import RenderOptions

_D = RenderOptions()


@app.command("render")
def render_command(
    plan_path: Annotated[
        Path, typer.Argument(help="plan.yaml written by `planner plan` (or its directory).")
    ],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Writes OUTPUT/manifests/ (replaced whole).")
    ] = Path("out"),
    cluster_file: Annotated[
        Path | None, typer.Option("--cluster", help="Cluster YAML (node pools or named nodes).")
    ] = None,
    gpus: Annotated[
        int | None, typer.Option("--gpus", help="Without --cluster: GPUs in full nodes.")
    ] = None,
    gpu_type: GpuTypeOpt = DEFAULT_GPU_TYPE,
    gpus_per_node: GpusPerNodeOpt = DEFAULT_GPUS_PER_NODE,
    configs: ConfigsOpt = None,
    sharing: SharingOpt = _D.sharing,
    namespace: NamespaceOpt = _D.namespace,
    vllm_image: VllmImageOpt = _D.vllm_image,
    planner_image: PlannerImageOpt = _D.planner_image,
    replan_schedule: ScheduleOpt = _D.replan_schedule,
    replan_traces: TracesOpt = _D.replan_traces,
    replan_traces_claim: ClaimOpt = _D.replan_traces_claim,
) -> None:
    """Place a plan on the cluster (nodes and GPU indices) and write Kubernetes manifests."""
    from planner.jobs.deploying import render_job
    from planner.summaries import placement_summary

    settings = render_settings(
        sharing,
        namespace,
        vllm_image,
        planner_image,
        replan_schedule,
        replan_traces,
        replan_traces_claim,
    )
    cluster = ClusterSpec(gpus, gpu_type, gpus_per_node, cluster_file)
    outcome = render_job(plan_path, cluster, settings, output, configs)
    objects = len(outcome.deployment.rendered.objects)
    typer.echo(placement_summary(outcome.deployment.placement, outcome.manifests_dir, objects))
