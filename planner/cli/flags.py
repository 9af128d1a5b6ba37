"""Flags shared by the verbs (`plan`, `replan`, `evaluate`, `render`, `profile`).

One definition per flag keeps names and help sentences identical across commands; the
defaults live in `planner.defaults`, `planner.types.settings` and `RenderOptions`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from planner.defaults import LATENCY_TOLERANCE
from planner.jobs.requests import parse_objective, parse_slos, parse_target_rates
from planner.render.settings import RenderOptions
from planner.types.settings import SolveSettings, WorkloadTargets

GpuTypeOpt = Annotated[
    str, typer.Option("--gpu-type", help="GPU type of --gpus (catalog name or alias).")
]
GpusPerNodeOpt = Annotated[int, typer.Option("--gpus-per-node", help="GPUs per node for --gpus.")]
ClusterOpt = Annotated[
    Path | None,
    typer.Option("--cluster", help="Cluster YAML with node pools (instead of --gpus)."),
]
TargetRateOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--target-rate",
        help="Workflows/s: one total (split like the observed mix) or TYPE=RATE, "
        "repeatable. Default: observed rate x --headroom.",
    ),
]
HeadroomOpt = Annotated[
    float, typer.Option("--headroom", help="Default target = observed rate x this.")
]
SloOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--slo",
        help="Latency SLO per workflow type: TYPE=SECONDS (mean) or TYPE=SECONDS:p95; "
        "p95 is predicted as the trace's p95/mean ratio x the predicted mean.",
    ),
]
UtilisationCapOpt = Annotated[
    float,
    typer.Option("--utilisation-cap", help="Replicas stay below this fraction of capacity."),
]
PrefixCachingOpt = Annotated[
    str,
    typer.Option(
        "--prefix-caching",
        help="on: predict each model's prefix-cache hit rate per allocation option from the "
        "traces' reuse evidence and size prefill on the uncached tokens (the search also "
        "chooses balanced or session-affine routing); off: every prompt computed in full.",
    ),
]
TimeLimitOpt = Annotated[
    float,
    typer.Option(
        "--time-limit",
        help="Solver budget over all stages, in CP-SAT deterministic seconds (the same plan "
        "on any machine).",
    ),
]
LatencyToleranceOpt = Annotated[
    float,
    typer.Option(
        "--latency-tolerance",
        help="min-latency: among plans within this fraction of the lowest latency, take the "
        "fewest GPUs (lowest cost when the cluster has prices); 0 = lowest latency only.",
    ),
]
WorkersOpt = Annotated[
    int, typer.Option("--workers", help="CP-SAT workers (pinned for determinism).")
]
MappingOpt = Annotated[
    Path | None,
    typer.Option("--mapping", help="YAML column mapping for non-canonical trace tables."),
]
SkipBadRowsOpt = Annotated[
    bool,
    typer.Option(
        "--skip-bad-rows",
        help="Drop invalid or duplicated trace rows (and unreadable or twice-linked files) "
        "and report their counts, instead of stopping at the first.",
    ),
]
ConfigsOpt = Annotated[
    Path | None,
    typer.Option("--configs", help="Catalog folder with models/ and gpus/ (default: configs/)."),
]
ProfilesOpt = Annotated[
    Path | None,
    typer.Option("--profiles", help="Stored profiles folder (default: profiles/)."),
]

SharingOpt = Annotated[
    str,
    typer.Option(
        "--sharing",
        help="How shares of one GPU are served: 'process' (default, any cluster: one pod "
        "holds the GPU and starts the co-located vLLM servers one after another) or 'hami' "
        "(enforced memory/compute slices; needs HAMi installed). See docs/deploy.md.",
    ),
]
TargetOpt = Annotated[
    str,
    typer.Option(
        "--target",
        help="Workload objects: 'deployments' (default; a LeaderWorkerSet only for a replica "
        "spanning nodes), 'lws' (every group a LeaderWorkerSet) or 'kserve' (a KServe "
        "LLMInferenceService per group).",
    ),
]
NamespaceOpt = Annotated[
    str, typer.Option("--namespace", help="Namespace of every rendered object.")
]
NamespaceObjectOpt = Annotated[
    bool,
    typer.Option(
        "--namespace-object/--no-namespace-object",
        help="Render the Namespace itself (turn off when the namespace is managed elsewhere).",
    ),
]
VllmImageOpt = Annotated[str, typer.Option("--vllm-image", help="vLLM OpenAI server image.")]
PlannerImageOpt = Annotated[
    str,
    typer.Option(
        "--planner-image",
        help="Image the re-planning CronJob runs: build it with `make image` (tag = package "
        "version) and push it; pin by digest (REGISTRY/planner@sha256:...).",
    ),
]
HfTokenOpt = Annotated[
    str,
    typer.Option(
        "--hf-token-secret",
        help="Secret (key 'token') with the Hugging Face token, read by every vLLM pod; "
        "gated models need one (an empty name fails for them at render time).",
    ),
]
ApiKeyOpt = Annotated[
    str,
    typer.Option(
        "--api-key-secret",
        help="Secret (key 'api-key') whose value the vLLM servers demand as bearer key.",
    ),
]
CacheClaimOpt = Annotated[
    str,
    typer.Option(
        "--model-cache-claim",
        help="PersistentVolumeClaim (ReadWriteMany) holding the Hugging Face cache, shared "
        "by every vLLM pod so weights are downloaded once.",
    ),
]
CacheHostPathOpt = Annotated[
    str,
    typer.Option(
        "--model-cache-host-path",
        help="Node directory for the Hugging Face cache (opt-in; writable by uid 1000).",
    ),
]
NetworkPolicyOpt = Annotated[
    bool,
    typer.Option(
        "--network-policy",
        help="Render a NetworkPolicy: only this namespace (and the Gateway's) reaches vLLM.",
    ),
]
GatewayOpt = Annotated[
    bool,
    typer.Option(
        "--gateway",
        help="Per model an InferencePool with its endpoint picker and an HTTPRoute on your "
        "Gateway (Gateway API Inference Extension v1).",
    ),
]
GatewayNameOpt = Annotated[
    str, typer.Option("--gateway-name", help="Name of your Gateway the HTTPRoutes attach to.")
]
GatewayNamespaceOpt = Annotated[
    str,
    typer.Option("--gateway-namespace", help="Namespace of your Gateway (default: --namespace)."),
]
PrefixRoutingOpt = Annotated[
    bool,
    typer.Option(
        "--prefix-routing",
        help="Add the picker's prefix-cache scorer (a session's calls go where its prefix "
        "is cached). Off by default: the plan predicts load-balanced routing.",
    ),
]
AutoscalerOpt = Annotated[
    str,
    typer.Option(
        "--autoscaler",
        help="'none' (default), 'hpa' (needs a custom-metrics adapter) or 'keda': per group, "
        "min = planned replicas, max = what the free GPUs hold, on vLLM's queue length.",
    ),
]
ScheduleOpt = Annotated[
    str, typer.Option("--replan-schedule", help="Cron schedule of the re-planning CronJob.")
]
TracesOpt = Annotated[
    str,
    typer.Option(
        "--replan-traces",
        help="Object-store URL the CronJob reads traces from (s3://bucket/prefix, gs://...); "
        "needs --replan-credentials-secret. The CronJob is rendered only with a traces source.",
    ),
]
ClaimOpt = Annotated[
    str,
    typer.Option(
        "--replan-traces-claim",
        help="PersistentVolumeClaim with the traces, mounted read-only at /traces in the "
        "CronJob's pod (instead of --replan-traces).",
    ),
]
CredentialsOpt = Annotated[
    str,
    typer.Option(
        "--replan-credentials-secret",
        help="Secret whose keys become the CronJob's environment (AWS_ACCESS_KEY_ID, ...).",
    ),
]


def render_settings(**values: Any) -> RenderOptions:
    """Validate the CLI's deploy flags (keyword names as RenderOptions fields).

    Raises:
        InputError: unknown choices, contradicting flags, a URL without credentials.
    """
    from planner.render.settings import check_options

    options = RenderOptions(**values)
    check_options(options)
    return options


ObjectiveOpt = Annotated[
    str,
    typer.Option(
        "--objective",
        help="min-latency (lowest mean workflow latency at the target rate, then the fewest "
        "GPUs within --latency-tolerance), max-throughput (highest common scale of the "
        "rates, below 1 on a small cluster), min-gpus, or min-cost (needs "
        "price_per_gpu_hour on every pool of the cluster file).",
    ),
]


def targets(
    target_rate: list[str] | None, headroom: float, slo: list[str] | None, utilisation_cap: float
) -> WorkloadTargets:
    """The planning targets of the flags."""
    return WorkloadTargets(
        headroom=headroom,
        target_rate_per_s=parse_target_rates(target_rate or []),
        slo_s=parse_slos(slo or []),
        utilisation_cap=utilisation_cap,
    )


def solve_settings(
    objective: str,
    time_limit: float,
    workers: int,
    latency_tolerance: float = LATENCY_TOLERANCE,
) -> SolveSettings:
    """The solver settings of the flags (seed and the rest at their defaults)."""
    return SolveSettings(
        objective=parse_objective(objective),
        time_limit_s=time_limit,
        num_workers=workers,
        latency_tolerance=latency_tolerance,
    )
