"""Why a search is infeasible, and how many GPUs would suffice.

Checks run from the most specific to the most general: a model that fits no shape
(memory fit, TP rules), a model whose demand alone needs more GPUs than the cluster
has (saturation), a workflow SLO that idle replicas already miss, and otherwise the GPU
budget as a whole. The GPU count that would suffice comes from a min-gpus solve on the
same GPU types with unbounded nodes.
"""

from __future__ import annotations

from dataclasses import replace

from planner.defaults import UNITS_PER_GPU
from planner.errors import InfeasibleError
from planner.search.choices import fewest_replicas, shape_fits_memory, shape_is_structural
from planner.search.cpsat import SolverTimeout, build_options, solve_options
from planner.search.problem import SearchProblem
from planner.types.cluster import Cluster
from planner.types.settings import SolveSettings


class SearchInfeasible(InfeasibleError):
    """No plan meets the constraints; `binding` names the constraint family."""

    def __init__(self, message: str, binding: str, gpus_needed: float | None):
        super().__init__(message)
        self.binding = binding
        self.gpus_needed = gpus_needed


def explain_infeasible(
    problem: SearchProblem, settings: SolveSettings, what: str = "The target"
) -> SearchInfeasible:
    """The error to raise for an infeasible problem (not raised here); `what` names the
    demand in the GPU count that would suffice."""
    binding, reason = _binding(problem)
    try:
        needed = gpus_needed(problem, settings)
    except SolverTimeout:
        suffix = " (How many GPUs would suffice was not found within the time limit.)"
        return SearchInfeasible(f"infeasible ({binding}): {reason}.{suffix}", binding, None)
    # One GPU count per message: the reason says only what is exceeded, the number comes
    # from the solve (a real plan), so the two can never disagree.
    if needed is None:
        suffix = " No number of GPUs of these types would suffice."
    elif needed <= problem.cluster.gpus:
        suffix = (
            f" {needed:g} GPUs of the cluster's types would suffice in larger nodes or "
            "NVLink domains than the cluster's."
        )
    else:
        suffix = (
            f" {what} needs {needed:g} GPUs of the cluster's types "
            f"(the cluster has {problem.cluster.gpus})."
        )
    return SearchInfeasible(f"infeasible ({binding}): {reason}.{suffix}", binding, needed)


def _binding(problem: SearchProblem) -> tuple[str, str]:
    total_units = problem.cluster.gpus * UNITS_PER_GPU
    for m in sorted(problem.models, key=lambda m: m.model):
        structural = [s for s in m.shapes if shape_is_structural(problem, m, s)]
        if not structural:
            return "tensor parallelism", (
                f"model {m.model} ({m.attention_heads} heads) has no TP degree that divides "
                "its heads and fits an NVLink domain of the cluster"
            )
        fitting = [s for s in structural if shape_fits_memory(s)]
        if not fitting:
            worst = max(structural, key=lambda s: s.share_gib)
            return "memory fit", (
                f"model {m.model} (weights {worst.weights_gib:.1f} GiB) fits no shape: the "
                f"largest share is {worst.share_gib:.1f} GiB on {worst.key.gpu_type} "
                f"tp={worst.key.tp}; use larger GPUs, a larger NVLink domain or FP8 weights"
            )
        demand = problem.demand_per_s(m.model)
        least = min(fewest_replicas(s, demand, problem.utilisation_cap) * s.units for s in fitting)
        if least > total_units:
            return f"saturation of model {m.model}", (
                f"its demand of {demand:.3g} calls/s alone needs more than the cluster's "
                f"{problem.cluster.gpus} GPUs below {problem.utilisation_cap:.0%} utilisation"
            )
    for w in problem.workflows:
        if w.slo_s is None:
            continue
        best = w.non_llm_time_s
        for use in w.uses:
            m = problem.model(use.model)
            idle = min(
                (s.ladder_latency_s[0] for s in m.shapes if shape_fits_memory(s)), default=0.0
            )
            best += idle * use.latency_weight
        factor = w.p95_over_mean if w.slo_kind == "p95" else 1.0
        if factor * best > w.slo_s:
            return f"SLO of {w.workflow_type}", (
                f"even idle replicas predict a {w.slo_kind} latency of {factor * best:.3f} s "
                f"> {w.slo_s} s"
            )
    return "GPU budget", "the models' demands and SLOs together need more GPUs than available"


def gpus_needed(problem: SearchProblem, settings: SolveSettings) -> float | None:
    """Fewest GPUs (same types, unbounded nodes) meeting demand and SLOs; None if none."""
    unbounded = replace(problem, cluster=_unbounded(problem))
    loose = replace(settings, resolution=max(settings.resolution, 1e-3))
    options = build_options(unbounded, loose)
    result = solve_options(unbounded, options, "units", loose, settings.time_limit_s / 2)
    if result is None:
        return None
    return result.objective / UNITS_PER_GPU


def _unbounded(problem: SearchProblem) -> Cluster:
    """Enough nodes to host every model many times over: the problem's growth node shapes
    (the `--gpus` node size), else more nodes in the cluster's own pools."""
    worst_units = 0
    for m in problem.models:
        demand = problem.demand_per_s(m.model)
        sizes = [
            fewest_replicas(s, demand, problem.utilisation_cap) * s.units
            for s in m.shapes
            if shape_fits_memory(s)
        ]
        worst_units += max(sizes, default=0)
    templates = problem.growth or problem.cluster.pools
    pools = []
    for pool in templates:
        extra = -(-4 * worst_units // (UNITS_PER_GPU * pool.gpus_per_node))
        base = pool.nodes if not problem.growth else 0
        span = pool.nvlink_domain_nodes  # a multi-node NVLink domain grows by whole racks
        pools.append(replace(pool, nodes=-(-(base + extra) // span) * span))
    return Cluster(tuple(pools))
