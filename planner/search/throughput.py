"""Max-throughput: the highest common scale s of all workflow rates the cluster sustains.

The scale may be below 1 (a cluster too small for the target): the answer is then the
fraction of the target these GPUs sustain. Bisection over s with CP-SAT feasibility
solves of the option model (`cpsat.py`) at the
rates times s. Without SLOs only the fewest replicas matter (more only cost GPUs): per
shape its fewest replicas, per mixture row (fixed smaller count) the fewest of the larger
shape, so each solve is a small multiple-choice packing problem; with SLOs the full
option lists are used. A feasible point is snapped up to the exact scale its allocation
sustains (min over models of C_o min(u_cap, ladder tops) / D_m); an infeasible point is
proven so by CP-SAT. The bracket [lo, hi] is therefore the objective and its bound, and the search
stops when hi - lo <= 1e-6 lo (status OPTIMAL) or the budget is spent (FEASIBLE, gap
reported). The budget is in CP-SAT deterministic seconds summed over the probes, so the
answer does not depend on the machine's speed. A probe gets at most a third of the
budget left; one that runs out is retried lower (the bracket stays proven). What does
not depend on the scale (admissible shapes, replica budgets, capacities) is computed once
(`choices.admissible`) and shared by every probe. Feasibility solves stop at the first
plan, searched with the GPU count as objective (the LP guides the search to feasible
plans far faster).
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
    Admissible,
    Option,
    Part,
    cached_option,
    fewest_cached,
    fewest_replicas,
    model_options,
    prune_dominated,
    single,
)
from planner.search.cpsat import Clock, SolverTimeout, solve_options
from planner.search.mixtures import mixtures
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
    deterministic_s: float = 0.0  # CP-SAT deterministic seconds of all probes


def max_scale(
    problem: SearchProblem, settings: SolveSettings, budget_s: float, known: Admissible
) -> ScaleResult | None:
    """The largest common scale of the problem's rates (any size, below 1 included);
    None if even a tiny one fails. `budget_s` is in deterministic seconds."""
    start = time.perf_counter()
    clock = Clock()  # deterministic seconds of the probes so far

    def probe(scale: float, limit_s: float) -> tuple[Option, ...] | None:
        return _feasible(problem, scale, settings, limit_s, known, clock)

    hi = _alone_bound(problem, settings, known)
    if hi <= 0:
        return None
    found = probe(hi, budget_s / 3)
    if found:
        wall = time.perf_counter() - start
        return ScaleResult(hi * SAFETY, "OPTIMAL", hi, wall, found, clock.spent_s)
    tiny = hi * 1e-9
    first = probe(tiny, max(0.5, (budget_s - clock.spent_s) / 2))
    if not first:
        return None
    lo = _sustained(problem, first, tiny)
    best = first
    status = "OPTIMAL"
    ceiling = hi  # probes stay below scales whose solve ran out of time
    while hi - lo > TOLERANCE * lo:
        left = budget_s - clock.spent_s
        mid = 0.5 * (lo + min(hi, ceiling))
        stuck = ceiling < hi and mid - lo <= TOLERANCE * lo  # every probe above lo timed out
        if left <= 0 or stuck:
            status = "FEASIBLE"
            break
        # One probe may take a third of the budget left: a hard one near the optimum is
        # given up for a lower probe, which can still raise the lower end.
        try:
            chosen = probe(mid, max(0.5, left / 3))
        except SolverTimeout:
            ceiling = mid
            continue
        if chosen:
            lo, best = max(mid, _sustained(problem, chosen, mid)), chosen
        else:
            hi = mid
    wall = time.perf_counter() - start
    return ScaleResult(lo * SAFETY, status, hi, wall, best, clock.spent_s)


def _alone_bound(problem: SearchProblem, settings: SolveSettings, known: Admissible) -> float:
    """min over models of the scale the model reaches with the whole cluster to itself."""
    bound = float("inf")
    for m in problem.models:
        demand = problem.demand_per_s(m.model)
        if demand <= 0:
            continue
        reach = [0.0, 0.0]
        for s, limit in known.budgets[m.model].items():
            # With prefix caching, the shape at the top of its hit grid (no option's hit
            # rate exceeds the reuse potential, which the grid's top covers).
            best = m.prefix.variants.get(s.key, (s,))[-1] if m.prefix is not None else s
            top = min(problem.utilisation_cap, best.ladder_utilisation[-1])
            reach.append(limit * best.capacity_per_s * top / demand)
        reach.sort(reverse=True)
        bound = min(bound, reach[0] + (reach[1] if settings.mix is not None else 0.0))
    return bound if bound != float("inf") else 0.0


def _feasible(
    problem: SearchProblem,
    scale: float,
    settings: SolveSettings,
    budget_s: float,
    known: Admissible,
    clock: Clock,
) -> tuple[Option, ...] | None:
    """An allocation sustaining `scale`; None: proven infeasible."""
    scaled = problem.scaled(scale)
    slos = any(w.slo_s is not None for w in problem.workflows)
    options = {
        m.model: model_options(scaled, m, settings.resolution, mix=settings.mix, known=known)
        if slos
        else _fewest(scaled, m.model, settings, known)
        for m in scaled.models
    }
    result = solve_options(scaled, options, "first", settings, budget_s, clock=clock)
    return result.chosen if result is not None else None


def _fewest(
    problem: SearchProblem, name: ModelName, settings: SolveSettings, known: Admissible
) -> tuple[Option, ...]:
    """Per shape its fewest replicas meeting the demand, per mixture row the fewest of its
    larger shape (enough for feasibility); dominated ones dropped."""
    m = problem.model(name)
    demand = problem.demand_per_s(name)
    out = []
    budgets = known.budgets[name]
    for s, budget in budgets.items():
        if m.prefix is not None:  # counts at their own hit rates
            cached = fewest_cached(problem, m, s, demand, budget)
            if cached is not None:
                out.append(replace(cached, latency_s=0.0))
            continue
        count = fewest_replicas(s, demand, problem.utilisation_cap)
        if 0 < count <= budget:
            out.append(single(name, s, count, 0.0))
    if settings.mix is not None and demand > 0:
        mixed = mixtures(
            budgets, demand, problem.utilisation_cap, known.caps, settings.mix, fewest=True
        )
        for parts in mixed:
            if m.prefix is None:
                out.append(Option(name, tuple(Part(s, c) for s, c in parts), 0.0))
                continue
            option = cached_option(problem, m, parts, demand)
            if option is not None:
                out.append(replace(option, latency_s=0.0))
    return prune_dominated(out, known.caps)


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
