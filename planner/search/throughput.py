"""Max-throughput: the highest common scale s of all workflow rates the cluster sustains.

Bisection over s with CP-SAT feasibility solves of the option model (`model.py`) at the
rates times s. Without SLOs only the fewest replicas of each shape matter (more only cost
GPUs), so each solve is a small multiple-choice packing problem; with SLOs the full
option lists are used. A feasible point is snapped up to the exact scale its allocation
sustains (min over models of c cap u_cap / D_m); an infeasible point is proven so by
CP-SAT. The bracket [lo, hi] is therefore the objective and its bound, and the search
stops when hi - lo <= 1e-6 lo (status OPTIMAL) or the time is up (FEASIBLE, gap reported).
The starting upper bound is the scale each model would reach alone on the whole cluster.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from planner.calls import ModelName
from planner.search.model import SolverTimeout, SolveSettings, solve_options
from planner.search.options import (
    Option,
    fewest_replicas,
    model_options,
    replica_budget,
    shape_fits_memory,
    shape_is_structural,
)
from planner.search.packing import threshold_capacities
from planner.search.predict import option_latency_s
from planner.search.problem import SearchProblem

TOLERANCE = 1e-6
# The reported scale is shrunk by this factor so the float re-check of the cap holds.
SAFETY = 1 - 1e-9


@dataclass(frozen=True)
class ScaleResult:
    scale: float
    status: str
    bound: float
    wall_s: float


def max_scale(
    problem: SearchProblem, settings: SolveSettings, time_limit_s: float
) -> ScaleResult | None:
    """The largest common scale of the problem's rates; None if even a tiny one fails."""
    start = time.perf_counter()
    deadline = start + time_limit_s
    hi = _alone_bound(problem)
    if hi <= 0:
        return None
    found = _feasible(problem, hi, settings, deadline)
    if found:
        return ScaleResult(hi * SAFETY, "OPTIMAL", hi, time.perf_counter() - start)
    tiny = hi * 1e-9
    first = _feasible(problem, tiny, settings, deadline)
    if not first:
        return None
    lo = _sustained(problem, first, tiny)
    status = "OPTIMAL"
    while hi - lo > TOLERANCE * lo:
        if time.perf_counter() >= deadline:
            status = "FEASIBLE"
            break
        mid = 0.5 * (lo + hi)
        try:
            chosen = _feasible(problem, mid, settings, deadline)
        except SolverTimeout:
            status = "FEASIBLE"
            break
        if chosen:
            lo = max(mid, _sustained(problem, chosen, mid))
        else:
            hi = mid
    return ScaleResult(lo * SAFETY, status, hi, time.perf_counter() - start)


def _alone_bound(problem: SearchProblem) -> float:
    """min over models of the scale the model reaches with the whole cluster to itself."""
    caps = {g: threshold_capacities(problem.cluster, g) for g in problem.gpu_types()}
    bound = float("inf")
    for m in problem.models:
        demand = problem.demand_per_s(m.model)
        if demand <= 0:
            continue
        best = 0.0
        for s in m.shapes:
            if not (shape_is_structural(problem, m, s) and shape_fits_memory(s)):
                continue
            limit = replica_budget(s, caps[s.key.gpu_type])
            top = min(problem.utilisation_cap, s.ladder_utilisation[-1])
            best = max(best, limit * s.capacity_per_s * top / demand)
        bound = min(bound, best)
    return bound if bound != float("inf") else 0.0


def _feasible(
    problem: SearchProblem, scale: float, settings: SolveSettings, deadline: float
) -> tuple[Option, ...] | None:
    scaled = problem.scaled(scale)
    slos = any(w.slo_s is not None for w in problem.workflows)
    options = {
        m.model: model_options(scaled, m, settings.resolution) if slos else _fewest(scaled, m.model)
        for m in scaled.models
    }
    left = max(0.05, deadline - time.perf_counter())
    result = solve_options(scaled, options, "feasible", settings, left)
    return result.chosen if result is not None else None


def _fewest(problem: SearchProblem, name: ModelName) -> tuple[Option, ...]:
    """Per shape only its fewest replicas meeting the demand (enough for feasibility)."""
    m = problem.model(name)
    demand = problem.demand_per_s(name)
    caps = {g: threshold_capacities(problem.cluster, g) for g in problem.gpu_types()}
    out = []
    for s in m.shapes:
        if not (shape_is_structural(problem, m, s) and shape_fits_memory(s)):
            continue
        count = fewest_replicas(s, demand, problem.utilisation_cap)
        if 0 < count <= replica_budget(s, caps[s.key.gpu_type]):
            out.append(Option(name, s, count, option_latency_s(s, count, demand)))
    return tuple(out)


def _sustained(problem: SearchProblem, chosen: Sequence[Option], scale: float) -> float:
    """The exact scale an allocation sustains; `scale` itself when SLOs bind latency."""
    if any(w.slo_s is not None for w in problem.workflows):
        return scale
    sustained = float("inf")
    for o in chosen:
        demand = problem.demand_per_s(o.model)
        if demand > 0:
            top = min(problem.utilisation_cap, o.shape.ladder_utilisation[-1])
            sustained = min(sustained, o.replicas * o.shape.capacity_per_s * top / demand)
    return sustained if sustained != float("inf") else scale
