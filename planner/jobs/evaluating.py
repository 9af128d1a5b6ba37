"""The evaluation job: simulate a plan and the baselines on the same GPUs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from planner.catalog import Catalog
from planner.jobs.clusters import resolve_cluster
from planner.jobs.requests import ClusterSpec, InputPaths
from planner.progress import stage
from planner.simulate.evaluate import Evaluation
from planner.types.calls import CallTable
from planner.types.cluster import Cluster
from planner.types.plan import Plan

Arrivals = Literal["poisson", "trace"]


@dataclass(frozen=True)
class EvaluateRequest:
    """What `planner evaluate` simulates.

    `cluster.gpus` None (and no cluster file) means the plan's own GPUs: its total, of its
    first GPU type, in full nodes of `cluster.gpus_per_node`.
    """

    traces: Path
    plan_path: Path
    cluster: ClusterSpec = field(default_factory=ClusterSpec)
    allocation: Path | None = None  # the user's own allocation file, simulated too
    rate_per_s: float | None = None  # where latency is measured (default: the plan's target)
    arrivals: Arrivals = "poisson"
    calls: int = 150_000  # calls per simulation
    seed: int = 0
    inputs: InputPaths = field(default_factory=InputPaths)


def evaluate_job(request: EvaluateRequest) -> Evaluation:
    """Simulate the plan, the uniform, independent and greedy baselines (and the user's
    allocation) on the same GPUs: maximum sustainable rate, latency at the target rate,
    per-model utilisation, and the APL's prediction error.

    Raises:
        InputError, ConfigError: bad traces, plan or allocation file.
    """
    from planner.aggregate import aggregate_pipeline
    from planner.aggregate.reuse import prefix_references
    from planner.io.configs import load_catalog
    from planner.io.plan_file import read_plan
    from planner.io.profiles import load_profiles
    from planner.io.traces import load_mapping, read_calls
    from planner.profiles.cached import CachedPrefixProfiles
    from planner.search.validate import validate_plan
    from planner.simulate import compile_workload
    from planner.simulate.candidates import canonical_names, evaluation_candidates
    from planner.simulate.evaluate import evaluate_plans
    from planner.simulate.prefix_hits import check_prefix_hits, observed_calls_per_s
    from planner.simulate.rates import SimSettings

    inputs = request.inputs
    catalog = load_catalog(inputs.configs_dir)
    # A hand-edited plan fails here, before the traces are read and simulated.
    plan = validate_plan(read_plan(request.plan_path), catalog, None, str(request.plan_path))
    mapping = load_mapping(inputs.mapping) if inputs.mapping is not None else None
    with stage("ingest"):
        calls = read_calls(request.traces, mapping, skip_bad_rows=inputs.skip_bad_rows)
        calls, notes = _served_calls(calls, plan)
        apl = aggregate_pipeline(calls)
    profiles = load_profiles(inputs.profiles_dir, catalog)
    cluster = evaluation_cluster(request, plan, catalog)
    user = None
    if request.allocation is not None:
        from planner.io.allocation import load_allocation
        from planner.search.validate import validate_allocations

        where = str(request.allocation)
        user = validate_allocations(load_allocation(request.allocation), catalog, where)
    label = str(request.allocation)
    plans = evaluation_candidates(plan, apl, profiles, cluster, catalog, user, label)
    settings = SimSettings(calls=request.calls, pattern=request.arrivals, seed=request.seed)
    workload = compile_workload(calls)
    rate = request.rate_per_s or None
    names = canonical_names(catalog)
    # The plan's hit rates, replayed block by block on its replicas; the simulated calls of
    # every candidate skip that share of prefill (the baselines get the plan's rates).
    hits = check_prefix_hits(
        plan, prefix_references(calls), names, observed_calls_per_s(apl, names), request.seed
    )
    simulated = CachedPrefixProfiles(profiles, {c.model: c.simulated for c in hits})
    evaluation = evaluate_plans(workload, plans, simulated, settings, rate, names)
    return replace(evaluation, prefix_hits=hits, notes=notes)


def _served_calls(calls: CallTable, plan: Plan) -> tuple[CallTable, tuple[str, ...]]:
    """The calls of the workflow types the plan serves: a max-throughput plan on a
    cluster too small for every model leaves some types out, and simulating them would
    only say the plan does not serve them."""
    served = {w.workflow_type for w in plan.workflows}
    traced = set(calls.frame["workflow_type"].unique())
    left_out = sorted(traced - served)
    if not served & traced or not left_out:
        return calls, ()
    note = (
        f"the plan does not serve workflow type(s) {', '.join(left_out)} of the traces; "
        f"every candidate is evaluated on {', '.join(sorted(served & traced))} only"
    )
    return calls.of_workflow_types(served), (note,)


def evaluation_cluster(request: EvaluateRequest, plan: Plan, catalog: Catalog) -> Cluster:
    """The cluster the candidates share: the request's, with the plan's GPU count and
    type where it gives none, resolved like every other job's."""
    spec = request.cluster
    if spec.cluster_file is None:
        types = sorted({a.gpu_type for a in plan.allocations})
        gpu_type = spec.gpu_type or (types[0] if types else None)
        spec = replace(spec, gpus=spec.gpus or plan.gpus_total, gpu_type=gpu_type)
    return resolve_cluster(spec, catalog).cluster
