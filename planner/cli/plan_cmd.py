"""`planner plan`: traces -> plan.yaml, placement.yaml and manifests/."""

from __future__ import annotations

import json
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
    ClusterOpt,
    ConfigsOpt,
    CredentialsOpt,
    GatewayNameOpt,
    GatewayNamespaceOpt,
    GatewayOpt,
    GpusPerNodeOpt,
    GpuTypeOpt,
    HeadroomOpt,
    HfTokenOpt,
    LatencyToleranceOpt,
    MappingOpt,
    NamespaceObjectOpt,
    NamespaceOpt,
    NetworkPolicyOpt,
    ObjectiveOpt,
    PlannerImageOpt,
    PrefixCachingOpt,
    PrefixRoutingOpt,
    ProfilesOpt,
    ScheduleOpt,
    SharingOpt,
    SkipBadRowsOpt,
    SloOpt,
    TargetOpt,
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
    LATENCY_TOLERANCE,
    NUM_WORKERS,
    TIME_LIMIT_S,
    UTILISATION_CAP,
)
from planner.jobs.requests import (
    DEFAULT_GPUS,
    ClusterSpec,
    InputPaths,
    PlanRequest,
    parse_on_off,
)
from planner.render.settings import RenderOptions

_RENDER = RenderOptions()  # deploy flag defaults live in RenderOptions


@app.command()
def plan(
    traces: Annotated[
        Path | None,
        typer.Argument(help="A trace file or directory (default: the shipped example traces)."),
    ] = None,
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
    latency_tolerance: LatencyToleranceOpt = LATENCY_TOLERANCE,
    target_rate: TargetRateOpt = None,
    headroom: HeadroomOpt = 1.0,
    slo: SloOpt = None,
    utilisation_cap: UtilisationCapOpt = UTILISATION_CAP,
    time_limit: TimeLimitOpt = TIME_LIMIT_S,
    workers: WorkersOpt = NUM_WORKERS,
    mapping: MappingOpt = None,
    skip_bad_rows: SkipBadRowsOpt = False,
    configs: ConfigsOpt = None,
    profiles: ProfilesOpt = None,
    prefix_caching: PrefixCachingOpt = "on",
    sharing: SharingOpt = _RENDER.sharing,
    target: TargetOpt = _RENDER.target,
    namespace: NamespaceOpt = _RENDER.namespace,
    namespace_object: NamespaceObjectOpt = _RENDER.create_namespace,
    vllm_image: VllmImageOpt = _RENDER.vllm_image,
    planner_image: PlannerImageOpt = _RENDER.planner_image,
    hf_token_secret: HfTokenOpt = _RENDER.hf_token_secret,
    api_key_secret: ApiKeyOpt = _RENDER.api_key_secret,
    model_cache_claim: CacheClaimOpt = _RENDER.model_cache_claim,
    model_cache_host_path: CacheHostPathOpt = _RENDER.model_cache_host_path,
    network_policy: NetworkPolicyOpt = _RENDER.network_policy,
    gateway: GatewayOpt = _RENDER.gateway,
    gateway_name: GatewayNameOpt = _RENDER.gateway_name,
    gateway_namespace: GatewayNamespaceOpt = _RENDER.gateway_namespace,
    prefix_routing: PrefixRoutingOpt = _RENDER.prefix_routing,
    autoscaler: AutoscalerOpt = _RENDER.autoscaler,
    replan_schedule: ScheduleOpt = _RENDER.replan_schedule,
    replan_traces: TracesOpt = _RENDER.replan_traces_url,
    replan_traces_claim: ClaimOpt = _RENDER.replan_traces_claim,
    replan_credentials_secret: CredentialsOpt = _RENDER.replan_credentials_secret,
) -> None:
    """Choose replicas, TP degrees and GPU shares for the traces' models; write plan.yaml.

    Also places the plan on the cluster and writes placement.yaml and manifests/ (apply
    them with `kubectl apply -k DIR/manifests`).
    """
    from planner.cli.progress_display import progress_shown
    from planner.io.shipped import example_traces
    from planner.jobs.deploying import plan_and_deploy
    from planner.summaries import placement_summary, plan_json, plan_summary

    if gpus is None and cluster_file is None:
        gpus = DEFAULT_GPUS
    request = PlanRequest(
        traces=traces if traces is not None else example_traces(),
        cluster=ClusterSpec(gpus, gpu_type, gpus_per_node, cluster_file),
        targets=targets(target_rate, headroom, slo, utilisation_cap),
        solve=solve_settings(objective, time_limit, workers, latency_tolerance),
        inputs=InputPaths(mapping, configs, profiles, skip_bad_rows),
        prefix_caching=parse_on_off(prefix_caching, "--prefix-caching"),
    )
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
    with progress_shown(not as_json):
        outcome = plan_and_deploy(request, settings, output)
    deployment = outcome.deployment
    if as_json:
        doc = plan_json(deployment.plan, outcome.plan_path)
        typer.echo(json.dumps(doc, indent=2, allow_nan=False))
    else:
        typer.echo(plan_summary(deployment.plan, outcome.plan_path))
        objects = len(deployment.rendered.objects)
        typer.echo(
            placement_summary(
                deployment.placement, outcome.manifests_dir, objects, settings.replans
            )
        )
