"""Flags shared by the verbs (`plan`, `replan`, `evaluate`, `render`, `profile`).

One definition per flag keeps names and help sentences identical across commands; the
defaults live in `planner.defaults`, `planner.types.settings` and `RenderOptions`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.errors import InputError
from planner.jobs.requests import parse_objective, parse_slos, parse_target_rates
from planner.render.settings import SHARING_BACKENDS, RenderOptions
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
TimeLimitOpt = Annotated[float, typer.Option("--time-limit", help="Solver time limit in seconds.")]
WorkersOpt = Annotated[
    int, typer.Option("--workers", help="CP-SAT workers (pinned for determinism).")
]
MappingOpt = Annotated[
    Path | None,
    typer.Option("--mapping", help="YAML column mapping for non-canonical trace tables."),
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
NamespaceOpt = Annotated[
    str, typer.Option("--namespace", help="Namespace of every rendered object.")
]
VllmImageOpt = Annotated[str, typer.Option("--vllm-image", help="vLLM OpenAI server image.")]
PlannerImageOpt = Annotated[
    str, typer.Option("--planner-image", help="Image the re-planning CronJob runs.")
]
ScheduleOpt = Annotated[
    str, typer.Option("--replan-schedule", help="Cron schedule of the re-planning CronJob.")
]
TracesOpt = Annotated[
    str,
    typer.Option(
        "--replan-traces",
        help="Where the CronJob reads traces: a path in its pod or an object-store URL "
        "(s3://bucket/prefix, gs://...).",
    ),
]
ClaimOpt = Annotated[
    str,
    typer.Option(
        "--replan-traces-claim",
        help="PersistentVolumeClaim mounted read-only at /traces in the CronJob's pod.",
    ),
]


def render_settings(
    sharing: str,
    namespace: str,
    vllm_image: str,
    planner_image: str,
    schedule: str,
    traces: str,
    claim: str,
) -> RenderOptions:
    """Validate the CLI's deploy flags into RenderOptions.

    Raises:
        InputError: an unknown sharing backend or an empty namespace.
    """

    backend = next((b for b in SHARING_BACKENDS if b == sharing), None)
    if backend is None:
        raise InputError(f"--sharing {sharing!r}: choose one of {', '.join(SHARING_BACKENDS)}")
    if not namespace:
        raise InputError("--namespace must not be empty")
    return RenderOptions(
        namespace=namespace,
        sharing=backend,
        vllm_image=vllm_image,
        planner_image=planner_image,
        replan_schedule=schedule,
        replan_traces=traces,
        replan_traces_claim=claim,
    )


ObjectiveOpt = Annotated[
    str,
    typer.Option(
        "--objective",
        help="min-latency (lowest mean workflow latency at the target rate), "
        "max-throughput (highest common scale of the rates), or min-gpus.",
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


def solve_settings(objective: str, time_limit: float, workers: int) -> SolveSettings:
    """The solver settings of the flags (seed and the rest at their defaults)."""
    return SolveSettings(
        objective=parse_objective(objective), time_limit_s=time_limit, num_workers=workers
    )
