"""Options and steps shared by the verbs that emit manifests (`plan`, `render`, `replan`).

`write_deployment` is the place -> render -> write tail of the pipeline: it places the
plan on the cluster, renders the Kubernetes objects and writes `DIR/manifests/` whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from planner.errors import InputError

if TYPE_CHECKING:
    from planner.catalog import Catalog
    from planner.place import Placement, PlacementError
    from planner.render import Rendered, RenderOptions
    from planner.search.problem import SearchProblem
    from planner.types.cluster import Cluster
    from planner.types.plan import Plan

MANIFESTS_DIR = "manifests"

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


def render_options(
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
    from planner.render import SHARING_BACKENDS, RenderOptions

    if sharing not in SHARING_BACKENDS:
        raise InputError(f"--sharing {sharing!r}: choose one of {', '.join(SHARING_BACKENDS)}")
    if not namespace:
        raise InputError("--namespace must not be empty")
    return RenderOptions(
        namespace=namespace,
        sharing=sharing,
        vllm_image=vllm_image,
        planner_image=planner_image,
        replan_schedule=schedule,
        replan_traces=traces,
        replan_traces_claim=claim,
    )


@dataclass(frozen=True)
class Deployment:
    """A placed, rendered plan with the texts stored beside it (plan.yaml, placement.yaml)."""

    plan: Plan
    placement: Placement
    rendered: Rendered
    plan_text: str
    placement_text: str


def with_replay_job(
    options: RenderOptions, plan: Plan, rate_per_s: float | None, duration_s: float
) -> RenderOptions:
    """`options` with the in-cluster replay Job, at `rate_per_s` or the plan's target.

    Raises:
        InputError: no rate given and the plan has no positive target rate.
    """

    from planner.render.settings import ReplayJobSettings

    rate = rate_per_s or sum(w.target_rate_per_s for w in plan.workflows)
    if not rate > 0:
        raise InputError("the plan has no target rate; give the replay Job one: --replay-rate R")
    warmup = min(ReplayJobSettings(rate).warmup_s, duration_s / 10)
    return replace(options, replay_job=ReplayJobSettings(rate, duration_s, warmup))


def deploy_plan(
    plan: Plan,
    cluster: Cluster,
    catalog: Catalog,
    options: RenderOptions,
    research: Callable[[Plan, PlacementError], Plan] | None = None,
    attempts: int = 3,
) -> Deployment:
    """Place `plan` and build its objects. If placement fails and `research` is given,
    search again without the failed shape (up to `attempts` placements), so a plan that
    cannot be placed is never emitted.

    Raises:
        PlacementError: the plan (and its re-searches) do not fit the cluster (exit 3).
    """
    from planner.io.cluster_file import cluster_yaml
    from planner.io.placement import PLACEMENT_FILE, placement_yaml
    from planner.io.plan_file import dump_plan
    from planner.place import PlacementError, place
    from planner.render import CLUSTER_KEY, render_manifests

    for attempt in range(attempts):
        try:
            placement = place(plan, cluster)
        except PlacementError as exc:
            if research is None or attempt == attempts - 1:
                raise
            plan = research(plan, exc)
            continue
        text, where = dump_plan(plan), placement_yaml(placement)
        rendered = render_manifests(
            placement,
            cluster,
            catalog.models,
            text,
            options,
            catalog.gpus,
            {CLUSTER_KEY: cluster_yaml(cluster), PLACEMENT_FILE: where},
        )
        return Deployment(plan, placement, rendered, text, where)
    raise AssertionError("unreachable: the last attempt returns or raises")


def without_shape(problem: SearchProblem, error: PlacementError) -> SearchProblem:
    """`problem` minus the shapes placement could not honour (the failed constraint)."""
    models = []
    for m in problem.models:
        shapes = tuple(
            s
            for s in m.shapes
            if not (
                s.key.model == error.model
                and s.key.gpu_type == error.gpu_type
                and (error.tp in (0, s.key.tp))
            )
        )
        models.append(replace(m, shapes=shapes))
    note = f"placement: excluded {error.model} TP {error.tp or 'any'} on " + (
        f"{error.gpu_type} ({error.constraint})"
    )
    return replace(problem, models=tuple(models), notes=(*problem.notes, note))


def write_deployment(output: Path, rendered: Rendered) -> Path:
    """Write `output/manifests/` (all files or none); return the directory."""
    from planner.io.manifests import write_manifests

    target = output / MANIFESTS_DIR
    write_manifests(target, rendered.objects)
    return target


def placement_summary(placement: Placement, manifests: Path, objects: int) -> str:
    f = placement.fragmentation
    nodes = sorted({r.node for r in placement.replicas})
    return (
        f"placed {len(placement.replicas)} replicas on {len(nodes)} node(s); "
        f"free: {f.free_nodes} whole node(s), {f.free_gpus} whole GPU(s); "
        f"{f.partly_used_gpus} partly used GPU(s) leave {f.unused_share_gpus:g} GPU idle\n"
        f"wrote {objects} objects to {manifests} (kubectl apply -k {manifests})"
    )
