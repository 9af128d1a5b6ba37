"""`planner render PLAN`: place an existing plan.yaml and write its manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.cli import app
from planner.cli.flags import (
    ApiKeyOpt,
    AutoscalerOpt,
    CacheClaimOpt,
    CacheHostPathOpt,
    ClaimOpt,
    ConfigsOpt,
    CredentialsOpt,
    GatewayNameOpt,
    GatewayNamespaceOpt,
    GatewayOpt,
    GpusPerNodeOpt,
    GpuTypeOpt,
    HfTokenOpt,
    NamespaceObjectOpt,
    NamespaceOpt,
    NetworkPolicyOpt,
    PlannerImageOpt,
    PrefixRoutingOpt,
    ScheduleOpt,
    SharingOpt,
    TargetOpt,
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
    target: TargetOpt = _D.target,
    namespace: NamespaceOpt = _D.namespace,
    namespace_object: NamespaceObjectOpt = _D.create_namespace,
    vllm_image: VllmImageOpt = _D.vllm_image,
    planner_image: PlannerImageOpt = _D.planner_image,
    hf_token_secret: HfTokenOpt = _D.hf_token_secret,
    api_key_secret: ApiKeyOpt = _D.api_key_secret,
    model_cache_claim: CacheClaimOpt = _D.model_cache_claim,
    model_cache_host_path: CacheHostPathOpt = _D.model_cache_host_path,
    network_policy: NetworkPolicyOpt = _D.network_policy,
    gateway: GatewayOpt = _D.gateway,
    gateway_name: GatewayNameOpt = _D.gateway_name,
    gateway_namespace: GatewayNamespaceOpt = _D.gateway_namespace,
    prefix_routing: PrefixRoutingOpt = _D.prefix_routing,
    autoscaler: AutoscalerOpt = _D.autoscaler,
    replan_schedule: ScheduleOpt = _D.replan_schedule,
    replan_traces: TracesOpt = _D.replan_traces_url,
    replan_traces_claim: ClaimOpt = _D.replan_traces_claim,
    replan_credentials_secret: CredentialsOpt = _D.replan_credentials_secret,
    replay_job: Annotated[
        bool,
        typer.Option(
            "--replay-job",
            help="Also write a Job that runs `planner replay` in the cluster against the "
            "plan's Services, with the re-planning traces (result: the Job's log).",
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
    from planner.jobs.deploying import ReplayJobRequest, render_job
    from planner.summaries import placement_summary

    settings = render_settings(
        sharing=sharing,
        target=target,
        namespace=namespace,
        create_namespace=namespace_object,
        vllm_image=vllm_image,
        planner_image=planner_image,
        hf_token_secret=hf_token_secret,
        api_key_secret=api_key_secret,
        model_cache_claim=model_cache_claim,
        model_cache_host_path=model_cache_host_path,
        network_policy=network_policy,
        gateway=gateway,
        gateway_name=gateway_name,
        gateway_namespace=gateway_namespace,
        prefix_routing=prefix_routing,
        autoscaler=autoscaler,
        replan_schedule=replan_schedule,
        replan_traces_url=replan_traces,
        replan_traces_claim=replan_traces_claim,
        replan_credentials_secret=replan_credentials_secret,
    )
    cluster = ClusterSpec(gpus, gpu_type, gpus_per_node, cluster_file)
    replay = ReplayJobRequest(replay_rate, replay_duration) if replay_job else None
    outcome = render_job(plan_path, cluster, settings, output, configs, replay)
    objects = len(outcome.deployment.rendered.objects)
    placement = outcome.deployment.placement
    typer.echo(placement_summary(placement, outcome.manifests_dir, objects, settings.replans))
