"""Place -> render -> write: the deployment half of `plan`, and the `render` job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from planner.catalog import Catalog
from planner.jobs.clusters import resolve_cluster
from planner.jobs.requests import ClusterSpec, PlanRequest, replan_flags
from planner.place import Placement, PlacementError, place
from planner.progress import stage
from planner.render.objects import Rendered, render_manifests
from planner.render.settings import RenderOptions, ReplanInputs
from planner.types.cluster import Cluster
from planner.types.plan import Plan


@dataclass(frozen=True)
class Deployment:
    """A placed, rendered plan and the placement document stored beside it."""

    plan: Plan
    placement: Placement
    rendered: Rendered
    placement_text: str


@dataclass(frozen=True)
class PlanOutcome:
    """What `plan_and_deploy` made and where it wrote it."""

    deployment: Deployment
    plan_path: Path
    manifests_dir: Path


@dataclass(frozen=True)
class RenderOutcome:
    deployment: Deployment
    manifests_dir: Path


def deploy_plan(
    plan: Plan,
    cluster: Cluster,
    catalog: Catalog,
    settings: RenderOptions,
    research: Callable[[Plan, PlacementError], Plan] | None = None,
    attempts: int = 3,
    replan: ReplanInputs | None = None,
) -> Deployment:
    """Place `plan` and build its objects. If placement fails and `research` is given,
    search again without the failed shape (up to `attempts` placements), so a plan that
    cannot be placed is never emitted. The plan ConfigMap also stores the cluster, the
    placement and the render settings, so `planner replan` renders its steps the same way.

    Raises:
        PlacementError: the plan (and its re-searches) do not fit the cluster (exit 3).
        InputError: a gated model without `--hf-token-secret`, or contradicting settings.
    """
    from planner.io.cluster_file import cluster_yaml
    from planner.io.placement import PLACEMENT_FILE, placement_yaml
    from planner.io.plan_file import dump_plan
    from planner.io.render_settings import settings_yaml
    from planner.render.control import CLUSTER_KEY, SETTINGS_KEY

    for attempt in range(attempts):
        try:
            placement = place(plan, cluster)
        except PlacementError as exc:
            if research is None or attempt == attempts - 1:
                raise
            plan = research(plan, exc)
            continue
        where = placement_yaml(placement)
        rendered = render_manifests(
            placement,
            cluster,
            catalog.models,
            dump_plan(plan),
            settings,
            catalog.gpus,
            {
                CLUSTER_KEY: cluster_yaml(cluster),
                PLACEMENT_FILE: where,
                SETTINGS_KEY: settings_yaml(settings),
            },
            replan,
            {m.model: m.routing for m in plan.models if m.prefix_hit_rate > 0},
        )
        return Deployment(plan, placement, rendered, where)
    raise AssertionError("unreachable: the last attempt returns or raises")


def plan_and_deploy(request: PlanRequest, settings: RenderOptions, output: Path) -> PlanOutcome:
    """The whole `planner plan` job: plan, place (re-searching around a shape placement
    refuses), render with a CronJob that re-plans toward the same targets, and write
    OUTPUT/plan.yaml, OUTPUT/placement.yaml and OUTPUT/manifests/.

    Raises:
        the errors of `plan_job` and `deploy_plan`.
    """
    from planner.io.outputs import plan_check, write_plan_outputs
    from planner.io.placement import PLACEMENT_FILE
    from planner.io.plan_file import PLAN_FILE, dump_plan
    from planner.jobs.planning import plan_job, research_without

    result = plan_job(request)
    research = research_without(result.problem, request.solve)
    # The CronJob re-plans toward the same request, with the same trace mapping.
    mapping = request.inputs.mapping
    replan = ReplanInputs(
        planning_flags=replan_flags(request),
        mapping_text=mapping.read_text(encoding="utf-8") if mapping is not None else "",
    )
    with stage("place and render"):
        deployment = deploy_plan(
            result.plan, result.cluster, result.catalog, settings, research, replan=replan
        )
    files = {PLAN_FILE: dump_plan(deployment.plan), PLACEMENT_FILE: deployment.placement_text}
    check = plan_check(result.catalog, result.cluster)
    with stage("write"):
        manifests = write_plan_outputs(output, files, deployment.rendered.objects, check)
    return PlanOutcome(deployment, output / PLAN_FILE, manifests)


@dataclass(frozen=True)
class ReplayJobRequest:
    """`render --replay-job`: the in-cluster replay's rate (None: the plan's target) and
    how long its arrivals last."""

    rate_per_s: float | None = None
    duration_s: float = 300.0


def with_replay_job(options: RenderOptions, plan: Plan, request: ReplayJobRequest) -> RenderOptions:
    """`options` with the replay Job, at the requested rate or the plan's target.

    Raises:
        InputError: no rate given and the plan has no positive target rate.
    """
    from dataclasses import replace

    from planner.errors import InputError
    from planner.render.settings import ReplayJobSettings

    rate = request.rate_per_s or sum(w.target_rate_per_s for w in plan.workflows)
    if not rate > 0:
        raise InputError("the plan has no target rate; give the replay Job one: --replay-rate R")
    warmup = min(ReplayJobSettings(rate).warmup_s, request.duration_s / 10)
    return replace(options, replay_job=ReplayJobSettings(rate, request.duration_s, warmup))


def render_job(
    plan_path: Path,
    cluster: ClusterSpec,
    settings: RenderOptions,
    output: Path,
    configs_dir: Path | None = None,
    replay: ReplayJobRequest | None = None,
) -> RenderOutcome:
    """Place an existing plan.yaml (or its directory) on a cluster; replace OUTPUT with
    plan.yaml, placement.yaml and manifests/ (with `replay`, also the replay Job).

    Raises:
        ConfigError: the plan file is missing, malformed or breaks a plan rule.
        PlacementError: the plan does not fit the cluster (exit 3).
    """
    from planner.io.configs import load_catalog
    from planner.io.outputs import plan_check, write_plan_outputs
    from planner.io.placement import PLACEMENT_FILE
    from planner.io.plan_file import PLAN_FILE, dump_plan, read_plan
    from planner.search.validate import validate_plan

    catalog = load_catalog(configs_dir)
    resolved = resolve_cluster(cluster, catalog)
    path = plan_path / PLAN_FILE if plan_path.is_dir() else plan_path
    plan = validate_plan(read_plan(path), catalog, resolved.cluster, str(path))
    if replay is not None:
        settings = with_replay_job(settings, plan, replay)
    # The CronJob keeps the plan's objective; the other planning defaults apply.
    replan = ReplanInputs(planning_flags=(f"--objective={plan.objective}",))
    deployment = deploy_plan(plan, resolved.cluster, catalog, settings, replan=replan)
    # The output directory is replaced whole: the plan and placement go beside the
    # manifests, so the three always belong together.
    files = {PLAN_FILE: dump_plan(deployment.plan), PLACEMENT_FILE: deployment.placement_text}
    check = plan_check(catalog, resolved.cluster)
    manifests = write_plan_outputs(output, files, deployment.rendered.objects, check)
    return RenderOutcome(deployment, manifests)
