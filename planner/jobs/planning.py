"""The planning job: traces -> APL -> profiles -> SearchProblem -> Plan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from planner.catalog import Catalog, resolve_model, served_max_model_len
from planner.ingest.plausibility import context_overflow_notes
from planner.jobs.clusters import ResolvedCluster, resolve_cluster
from planner.jobs.requests import PlanRequest
from planner.place import PlacementError
from planner.progress import stage
from planner.search import search_plan
from planner.search.problem import SearchProblem, build_problem
from planner.types.apl import AggregatePipeline
from planner.types.cluster import Cluster
from planner.types.plan import Plan
from planner.types.settings import SolveSettings


@dataclass(frozen=True)
class PlanningResult:
    apl: AggregatePipeline
    problem: SearchProblem
    plan: Plan
    catalog: Catalog
    cluster: Cluster


def plan_job(request: PlanRequest, resolved: ResolvedCluster | None = None) -> PlanningResult:
    """Ingest, aggregate, look up profiles, build the SearchProblem and search.

    Args:
        request: traces, cluster, targets, solver settings and input paths.
        resolved: the cluster, when the caller has it already (replan reads it from the
            running plan's ConfigMap); default: `resolve_cluster(request.cluster)`.

    Raises:
        InputError, ConfigError, ProfileError: bad traces, configs or options (exit 2).
        SearchInfeasible: no plan meets the target on the cluster (exit 3).
    """
    from planner.aggregate import aggregate_pipeline
    from planner.aggregate.reuse import prefix_references
    from planner.io.configs import load_catalog
    from planner.io.profiles import load_profiles
    from planner.io.traces import load_mapping, read_calls

    request.check()
    inputs = request.inputs
    catalog = load_catalog(inputs.configs_dir)
    resolved = resolved or resolve_cluster(request.cluster, catalog)
    mapping = load_mapping(inputs.mapping) if inputs.mapping is not None else None
    with stage("ingest"):
        calls = read_calls(request.traces, mapping, skip_bad_rows=inputs.skip_bad_rows)
    if request.window_s is not None:
        from planner.replan import recent_window

        calls = recent_window(calls, request.window_s)
    with stage("aggregate"):
        apl = aggregate_pipeline(calls)
    specs = {name: resolve_model(catalog, name) for name in apl.models()}
    with stage("profiles"):
        profiles = load_profiles(inputs.profiles_dir, catalog)
        problem = build_problem(
            apl,
            profiles,
            resolved.cluster,
            specs,
            request.targets,
            growth=resolved.growth,
            reuse=prefix_references(calls) if request.prefix_caching else None,
        )
    with stage("search"):
        plan = search_plan(problem, request.solve)
    digest = _inputs_digest(request, resolved.cluster)
    # What the user must know about the input (skipped rows, requests over the context
    # limit) travels with the plan: printed, and kept in plan.yaml.
    limits = {name: served_max_model_len(spec) for name, spec in specs.items()}
    notes = (*apl.notes, *context_overflow_notes(calls.frame, limits), *plan.notes)
    plan = replace(plan, inputs_digest=digest, notes=notes)
    return PlanningResult(apl, problem, plan, catalog, resolved.cluster)


def research_without(
    problem: SearchProblem, settings: SolveSettings
) -> Callable[[Plan, PlacementError], Plan]:
    """Search again without the shape placement could not honour (see `deploy_plan`)."""

    def research(plan: Plan, error: PlacementError) -> Plan:
        smaller = problem.without_shape(error.model, error.gpu_type, error.tp, error.constraint)
        found = search_plan(smaller, settings)
        return replace(found, inputs_digest=plan.inputs_digest)

    return research


def _inputs_digest(request: PlanRequest, cluster: Cluster) -> str:
    """sha256 over every input file (traces, catalog, mapping, cluster file, stored
    profiles: the default folders included) and the options that shape the plan."""
    from planner.io.configs import default_configs_dir
    from planner.io.plan_file import inputs_digest
    from planner.io.profiles import PROFILES_DIR
    from planner.io.traces import trace_files

    inputs = request.inputs
    configs = inputs.configs_dir or default_configs_dir()
    profiles = inputs.profiles_dir or PROFILES_DIR
    skipped: list[str] | None = [] if inputs.skip_bad_rows else None  # as read_calls did
    files: list[Path] = [*trace_files(request.traces, skipped=skipped)]
    files += sorted(configs.rglob("*.yaml"))
    files += [p for p in (inputs.mapping, request.cluster.cluster_file) if p is not None]
    if profiles.is_dir():
        files += sorted(profiles.rglob("*.parquet"))
    return inputs_digest(files, _digest_options(request, cluster))


def _digest_options(request: PlanRequest, cluster: Cluster) -> dict[str, Any]:
    t, s = request.targets, request.solve
    rate = t.target_rate_per_s
    # Prefix caching off plans as before the option existed: same options, same digest.
    cache = {"prefix_caching": True} if request.prefix_caching else {}
    return {
        **cache,
        "objective": s.objective,
        "target_rate_per_s": dict(rate) if isinstance(rate, dict) else rate,
        "headroom": t.headroom,
        "slo_s": {k: list(v) for k, v in sorted(t.slo_s.items())},
        "utilisation_cap": t.utilisation_cap,
        "latency_tolerance": s.latency_tolerance,
        "random_seed": s.random_seed,
        "num_workers": s.num_workers,
        "cluster": [
            [p.name, p.gpu_type, p.nodes, p.gpus_per_node, p.nvlink_domain_size]
            + ([p.price_per_gpu_hour] if p.price_per_gpu_hour is not None else [])
            for p in cluster.pools
        ],
    }
