"""`planner render PLAN`: place an existing plan.yaml and write its manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.cli import app
from planner.cli.deploy_options import (
    ClaimOpt,
    NamespaceOpt,
    PlannerImageOpt,
    ScheduleOpt,
    SharingOpt,
    TracesOpt,
    VllmImageOpt,
)
from planner.cli.options import ConfigsOpt, GpusPerNodeOpt, GpuTypeOpt
from planner.defaults import DEFAULT_GPU_TYPE, DEFAULT_GPUS_PER_NODE
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
    replay_job: Annotated[
        bool,
        typer.Option(
            "--replay-job",
            help="Also write a Job that runs `planner replay` in the cluster against the "
            "plan's Services, with the traces of --replan-traces (result: the Job's log).",
        ),
    ] = False,
    replay_rate: Annotated[
        float | None,
        typer.Option(
            "--replay-rate",
            min=0.0,
            help="Workflows/s the replay Job offers (default: the plan's target rate).",
        ),
    ] = None,
    replay_duration: Annotated[
        float,
        typer.Option("--replay-duration", min=1.0, help="Seconds the replay Job's arrivals last."),
    ] = 300.0,
) -> None:
    """Place a plan on the cluster (nodes and GPU indices) and write Kubernetes manifests."""
    from planner.catalog import resolve_gpu
    from planner.cli.deploy_options import (
        deploy_plan,
        placement_summary,
        render_options,
        with_replay_job,
        write_deployment,
    )
    from planner.errors import InputError
    from planner.io.cluster_file import load_cluster
    from planner.io.configs import load_catalog
    from planner.io.plan_file import PLAN_FILE, read_plan
    from planner.types.cluster import uniform_cluster

    options = render_options(
        sharing,
        namespace,
        vllm_image,
        planner_image,
        replan_schedule,
        replan_traces,
        replan_traces_claim,
    )
    catalog = load_catalog(configs)
    if cluster_file is not None:
        cluster = load_cluster(cluster_file)
    elif gpus is not None:
        cluster = uniform_cluster(gpus, resolve_gpu(catalog, gpu_type).name, gpus_per_node)
    else:
        raise InputError("give the cluster: --cluster FILE or --gpus N")
    plan = read_plan(plan_path / PLAN_FILE if plan_path.is_dir() else plan_path)
    if replay_job:
        options = with_replay_job(options, plan, replay_rate, replay_duration)
    deployment = deploy_plan(plan, cluster, catalog, options)
    target = write_deployment(output, deployment.rendered)
    typer.echo(placement_summary(deployment.placement, target, len(deployment.rendered.objects)))
