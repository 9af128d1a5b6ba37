"""Options and steps shared by the verbs that emit manifests (`plan`, `render`, `replan`).

`write_deployment` is the place -> render -> write tail of the pipeline: it places the
plan on the cluster, renders the Kubernetes objects and writes `DIR/manifests/` whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from planner.catalog import Catalog
    from planner.place import Placement, PlacementError
    from planner.render import Rendered, RenderOptions, ReplanInputs
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
        help="Secret (key 'token') with the Hugging Face token; required for gated models.",
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


def render_options(**values: Any) -> RenderOptions:
    """Validate the CLI's deploy flags (keyword names as RenderOptions fields).

    Raises:
        InputError: unknown choices, contradicting flags, a URL without credentials.
    """
    from planner.render import RenderOptions, check_options

    options = RenderOptions(**values)
    check_options(options)
    return options


@dataclass(frozen=True)
class Deployment:
    """A placed, rendered plan with the texts stored beside it (plan.yaml, placement.yaml)."""

    plan: Plan
    placement: Placement
    rendered: Rendered
    plan_text: str
    placement_text: str


def deploy_plan(
    plan: Plan,
    cluster: Cluster,
    catalog: Catalog,
    options: RenderOptions,
    research: Callable[[Plan, PlacementError], Plan] | None = None,
    attempts: int = 3,
    replan: ReplanInputs | None = None,
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
    from planner.io.render_settings import settings_yaml
    from planner.place import PlacementError, place
    from planner.render import CLUSTER_KEY, SETTINGS_KEY, render_manifests

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
            {
                CLUSTER_KEY: cluster_yaml(cluster),
                PLACEMENT_FILE: where,
                SETTINGS_KEY: settings_yaml(options),
            },
            replan,
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


def placement_summary(
    placement: Placement, manifests: Path, objects: int, replans: bool = True
) -> str:
    f = placement.fragmentation
    nodes = sorted({n for r in placement.replicas for n in r.nodes})
    text = (
        f"placed {len(placement.replicas)} replicas on {len(nodes)} node(s); "
        f"free: {f.free_nodes} whole node(s), {f.free_gpus} whole GPU(s); "
        f"{f.partly_used_gpus} partly used GPU(s) leave {f.unused_share_gpus:g} GPU idle\n"
        f"wrote {objects} objects to {manifests} (kubectl apply -k {manifests})"
    )
    if not replans:
        text += "\nno re-planning CronJob: give --replan-traces-claim PVC or --replan-traces URL"
    return text
