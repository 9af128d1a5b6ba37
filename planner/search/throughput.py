"""Max-throughput: the highest common scale s of all workflow rates the cluster sustains.

Bisection over s with CP-SAT feasibility solves of the option model (`model.py`) at the
rates times s. Without SLOs only the fewest replicas matter (more only cost GPUs): per
shape its fewest replicas, per mixture row (fixed smaller count) the fewest of the larger
shape, so each solve is a small multiple-choice packing problem; with SLOs the full
option lists are used. A feasible point is snapped up to the exact scale its allocation
sustains (min over models of C_o min(u_cap, ladder tops) / D_m); an infeasible point is
proven so by CP-SAT. The bracket [lo, hi] is therefore the objective and its bound, and the search
stops when hi - lo <= 1e-6 lo (status OPTIMAL) or the time is up (FEASIBLE, gap reported).
A probe gets at most a third of the time left; one that runs out is retried lower (the
bracket stays proven). Feasibility solves stop at the first plan, searched with the GPU
count as objective (the LP guides the search to feasible plans far faster).
The starting upper bound is the scale each model would reach alone on the whole cluster
(with mixtures: its two best shapes each with the whole cluster, an over-estimate).
With prefix caching a shape's fewest replicas are those meeting the demand at their own
hit rate; a mixture row keeps the count found without the cache (feasible, not always
the fewest).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from planner.search.choices import (
    Option,
    Part,
    cached_option,
    fewest_cached,
    fewest_replicas,
    model_options,
    prune_dominated,
    replica_budget,
    shape_fits_memory,
    shape_is_structural,
    single,
)
from planner.search.cpsat import SolverTimeout, solve_options
from planner.search.mixtures import mixtures
from planner.search.packing import threshold_capacities
from planner.search.problem import SearchProblem
from planner.types.names import ModelName
from planner.types.settings import SolveSettings

TOLERANCE = 1e-6
# The reported scale is shrunk by this factor so the float re-check of the cap holds.
SAFETY = 1 - 1e-9


@dataclass(frozen=True)
class ScaleResult:
    scale: float
    status: str
    bound: float
    wall_s: float
    chosen: tuple[Option, ...] = ()  # an allocation sustaining `scale` (a hint for later)


def max_scale(
    problem: SearchProblem, settings: SolveSettings, time_limit_s: float
) -> ScaleResult | None:
    """The largest common scale of the problem's rates; None if even a tiny one fails."""
    start = time.perf_counter()
    deadline = start + time_limit_s
    hi = _alone_bound(problem, settings)
    if hi <= 0:
        return None
    found = _feasible(problem, hi, settings, deadline)
    if found:
        return ScaleResult(hi * SAFETY, "OPTIMAL", hi, time.perf_counter() - start, found)
    tiny = hi * 1e-9
    first = _feasible(problem, tiny, settings, deadline)
    if not first:
        return None
    lo = _sustained(problem, first, tiny)
    best = first
    status = "OPTIMAL"
    ceiling = hi  # probes stay below scales whose solve ran out of time
    while hi - lo > TOLERANCE * lo:
        now = time.perf_counter()
        mid = 0.5 * (lo + min(hi, ceiling))
        stuck = ceiling < hi and mid - lo <= TOLERANCE * lo  # every probe above lo timed out
        if now >= deadline or stuck:
            status = "FEASIBLE"
            break
        # One probe may take a third of the time left: a hard one near the optimum is
        # given up for a lower probe, which can still raise the lower end.
        try:
            chosen = _feasible(problem, mid, settings, now + max(0.5, (deadline - now) / 3))
        except SolverTimeout:
            ceiling = mid
            continue
        if chosen:
            lo, best = max(mid, _sustained(problem, chosen, mid)), chosen
        else:
            hi = mid
    return ScaleResult(lo * SAFETY, status, hi, time.perf_counter() - start, best)


def _alone_bound(problem: SearchProblem, settings: SolveSettings) -> float:
    """min over models of the scale the model reaches with the whole cluster to itself."""
    caps = {g: threshold_capacities(problem.cluster, g) for g in problem.gpu_types()}
    bound = float("inf")
    for m in problem.models:
        demand = problem.demand_per_s(m.model)
        if demand <= 0:
            continue
        reach = [0.0, 0.0]
        for s in m.shapes:
            if not (shape_is_structural(problem, m, s) and shape_fits_memory(s)):
                continue
            limit = replica_budget(s, caps[s.key.gpu_type])
            # With prefix caching, the shape at the top of its hit grid (no option's hit
            # rate exceeds the reuse potential, which the grid's top covers).
            best = m.prefix.variants.get(s.key, (s,))[-1] if m.prefix is not None else s
            top = min(problem.utilisation_cap, best.ladder_utilisation[-1])
            reach.append(limit * best.capacity_per_s * top / demand)
        reach.sort(reverse=True)
        bound = min(bound, reach[0] + (reach[1] if settings.mix is not None else 0.0))
    return bound if bound != float("inf") else 0.0


def _feasible(
    problem: SearchProblem, scale: float, settings: SolveSettings, deadline: float
) -> tuple[Option, ...] | None:
    scaled = problem.scaled(scale)
    slos = any(w.slo_s is not None for w in problem.workflows)
    options = {
        m.model: model_options(scaled, m, settings.resolution, mix=settings.mix)
        if slos
        else _fewest(scaled, m.model, settings)
        for m in scaled.models
    }
    left = max(0.05, deadline - time.perf_counter())
    result = solve_options(scaled, options, "first", settings, left)
    return result.chosen if result is not None else None


def _fewest(problem: SearchProblem, name: ModelName, settings: SolveSettings) -> tuple[Option, ...]:
    """Per shape its fewest replicas meeting the demand, per mixture row the fewest of its
    larger shape (enough for feasibility); dominated ones dropped."""
    m = problem.model(name)
    demand = problem.demand_per_s(name)
    caps = {g: threshold_capacities(problem.cluster, g) for g in problem.gpu_types()}
    out = []
    budgets = {}
    for s in m.shapes:
        if not (shape_is_structural(problem, m, s) and shape_fits_memory(s)):
            continue
        budget = replica_budget(s, caps[s.key.gpu_type])
        if budget > 0:
            budgets[s] = budget
        if m.prefix is not None:  # counts at their own hit rates
            cached = fewest_cached(problem, m, s, demand, budget) if budget > 0 else None
            if cached is not None:
                out.append(replace(cached, latency_s=0.0))
            continue
        count = fewest_replicas(s, demand, problem.utilisation_cap)
        if 0 < count <= budget:
            out.append(single(name, s, count, 0.0))
    if settings.mix is not None and demand > 0:
        mixed = mixtures(budgets, demand, problem.utilisation_cap, caps, settings.mix, fewest=True)
        for parts in mixed:
            if m.prefix is None:
                out.append(Option(name, tuple(Part(s, c) for s, c in parts), 0.0))
                continue
            option = cached_option(problem, m, parts, demand)
            if option is not None:
                out.append(replace(option, latency_s=0.0))
    return prune_dominated(out, caps)


def _sustained(problem: SearchProblem, chosen: Sequence[Option], scale: float) -> float:
    """The exact scale an allocation sustains; `scale` itself when SLOs bind latency."""
    if any(w.slo_s is not None for w in problem.workflows):
        return scale
    sustained = float("inf")
    for o in chosen:
        demand = problem.demand_per_s(o.model)
        if demand > 0:
            top = min(problem.utilisation_cap, o.top_utilisation)
            sustained = min(sustained, o.capacity_per_s * top / demand)
    return sustained if sustained != float("inf") else scale
