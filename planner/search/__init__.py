"""Search: SearchProblem -> Plan, exactly, with CP-SAT (see `model.py` for the formulation).

`search_plan(problem, settings)` is the stage's entry. It builds the options, feeds the
greedy baseline as a hint, solves, checks the answer with the independent validator and
returns a `Plan`, or raises `SearchInfeasible` (exit 3) naming the binding constraint and
the GPU count that would suffice, or `SolverTimeout` when nothing was found in time.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

from planner.search.baselines import greedy_choice
from planner.search.choices import Option, Part
from planner.search.cpsat import (
    SolverTimeout,
    build_options,
    facts,
    finish,
    solve_options,
    to_allocations,
)
from planner.search.explain import SearchInfeasible, explain_infeasible
from planner.search.predict import mixture_latency_s, predict_models, throughput_scale
from planner.search.prefix import cache_choice
from planner.search.problem import SearchProblem
from planner.search.throughput import max_scale
from planner.search.validate import check_plan, mean_latency_s
from planner.types.names import ModelName
from planner.types.plan import Plan
from planner.types.settings import SolveSettings

# Share of the time limit the single-shape solve that seeds a mixed search may take.
SINGLE_SHARE = 0.25

__all__ = [
    "SearchInfeasible",
    "SearchProblem",
    "SolveSettings",
    "SolverTimeout",
    "search_plan",
]


def search_plan(problem: SearchProblem, settings: SolveSettings | None = None) -> Plan:
    """The optimal (or best found, with its gap) plan for the settings' objective.

    For max-throughput the problem's rates are the base the scale multiplies.

    Raises:
        SearchInfeasible: nothing meets the constraints.
        SolverTimeout: no plan found within the time limit.
    """
    settings = settings or SolveSettings()
    if settings.objective == "max-throughput":
        plan = _max_throughput(problem, settings)
    elif settings.objective == "min-gpus":
        plan = _min_gpus(problem, settings)
    else:
        plan = _min_latency(problem, settings)
    violations = check_plan(_target_problem(problem, plan), plan)
    if violations:  # the validator is the specification: a violation is a bug
        raise RuntimeError("search produced an invalid plan: " + "; ".join(map(str, violations)))
    return plan


def _target_problem(problem: SearchProblem, plan: Plan) -> SearchProblem:
    rates = {w.workflow_type: w.target_rate_per_s for w in plan.workflows}
    flows = tuple(replace(w, rate_per_s=rates[w.workflow_type]) for w in problem.workflows)
    return replace(problem, workflows=flows)


def _min_latency(
    problem: SearchProblem,
    settings: SolveSettings,
    notes: tuple[str, ...] = (),
    known: Sequence[Option] = (),
) -> Plan:
    """Lowest latency; `known` is a feasible allocation found earlier (max-throughput's),
    added to the options and used as the hint: near the highest scale, feasible plans
    are hard to find again."""
    start = time.perf_counter()
    options = build_options(problem, settings)
    hint: Mapping[ModelName, Option] | None
    if known:
        options, hint = _with_known(problem, options, known)
    else:
        hint = _hint(problem, options, settings)
    left = settings.time_limit_s - (time.perf_counter() - start)
    result = solve_options(problem, options, "latency", settings, left, hint)
    if result is None:
        raise explain_infeasible(problem, settings)
    # Solver objective is in us without the constant tool time; report seconds with it.
    objective = mean_latency_s(problem, to_allocations(result.chosen))
    constant = objective - result.objective / 1e6
    # wall time of options, the seeding single-shape solve and the solve itself
    wall = time.perf_counter() - start
    solver = facts(result.status, objective, result.bound / 1e6 + constant, wall)
    return finish(problem, result.chosen, settings.objective, solver, notes)


def _with_known(
    problem: SearchProblem,
    options: Mapping[ModelName, Sequence[Option]],
    known: Sequence[Option],
) -> tuple[dict[ModelName, tuple[Option, ...]], dict[ModelName, Option]]:
    """The options plus the known allocation's (latency at this problem's demand)."""
    out = {m: tuple(opts) for m, opts in options.items()}
    hint: dict[ModelName, Option] = {}
    for o in known:
        demand = problem.demand_per_s(o.model)
        model = problem.model(o.model)
        if model.prefix is not None:
            # At this demand the option has its own hit rate (from its base shapes).
            bases = {s.key: s for s in model.shapes}
            parts = [(bases[p.shape.key], p.replicas) for p in o.parts]
            choice = cache_choice(model, parts, demand)
            shaped = tuple(Part(s, c) for s, (_, c) in zip(choice.shapes, parts, strict=True))
            same = replace(o, parts=shaped, latency_s=choice.latency_s)
        else:
            parts = [(p.shape, p.replicas) for p in o.parts]
            same = replace(o, latency_s=mixture_latency_s(parts, demand))
        if same not in out[o.model]:
            out[o.model] = (*out[o.model], same)
        hint[o.model] = same
    return out, hint


def _hint(
    problem: SearchProblem, options: Mapping[ModelName, Sequence[Option]], settings: SolveSettings
) -> dict[ModelName, Option] | None:
    """The greedy plan; with mixtures, the single-shape optimum (a small, fast solve whose
    plan is a good first incumbent of the larger model)."""
    if not settings.use_hint:
        return None
    greedy = greedy_choice(problem, options)
    if settings.mix is None:
        return greedy
    singles = {m: tuple(o for o in opts if o.is_single) for m, opts in options.items()}
    budget = settings.time_limit_s * SINGLE_SHARE
    try:
        first = solve_options(problem, singles, "latency", settings, budget, greedy)
    except SolverTimeout:
        return greedy
    return greedy if first is None else {o.model: o for o in first.chosen}


def _min_gpus(problem: SearchProblem, settings: SolveSettings) -> Plan:
    options = build_options(problem, settings)
    first = solve_options(problem, options, "units", settings, settings.time_limit_s / 2)
    if first is None:
        raise explain_infeasible(problem, settings)
    gpus, bound = first.objective / 8, first.bound / 8
    second = replace(
        settings, max_units=round(first.objective), time_limit_s=settings.time_limit_s / 2
    )
    plan = _min_latency(problem, second, (f"lowest latency among plans on {gpus:g} GPUs",))
    solver = facts(first.status, gpus, bound, first.wall_s + plan.solver.wall_s)
    return replace(plan, solver=solver, notes=(*plan.notes, _stage_note(plan)))


def _max_throughput(problem: SearchProblem, settings: SolveSettings) -> Plan:
    first = max_scale(problem, settings, settings.time_limit_s / 2)
    if first is None or first.scale <= 0:
        raise explain_infeasible(problem, settings)
    scale = _cache_consistent_scale(problem, first.chosen, first.scale)
    status, bound, wall = first.status, first.bound, first.wall_s
    scaled = problem.scaled(scale)
    second = replace(settings, time_limit_s=settings.time_limit_s / 2)
    note = f"rates scaled by {scale:g} (max-throughput)"
    plan = _min_latency(scaled, second, (note,), first.chosen)
    solver = facts(status, scale, bound, wall + plan.solver.wall_s, maximise=True)
    return replace(plan, solver=solver, notes=(*plan.notes, _stage_note(plan)))


_SCALE_STEPS = 20  # shrink steps of the cache-consistent scale (it converges in 2-3)


def _cache_consistent_scale(
    problem: SearchProblem, chosen: Sequence[Option], scale: float
) -> float:
    """The scale lowered until the chosen allocation keeps every model under the cap with
    the hit rates of that scale's load (a higher load leaves less KV for cached blocks,
    so the capacity a probe saw at a lower load can shrink a little). Without prefix
    caching the scale is returned as it is."""
    if all(m.prefix is None for m in problem.models) or not chosen:
        return scale
    allocs = to_allocations(chosen)
    for _ in range(_SCALE_STEPS):
        scaled = problem.scaled(scale)
        factor = throughput_scale(scaled, predict_models(scaled, allocs))
        if factor >= 1.0:
            break
        scale *= factor * (1 - 1e-9)
    return scale


def _stage_note(plan: Plan) -> str:
    s = plan.solver
    return f"latency stage: {s.status}, {s.objective:.6g} s, bound {s.bound:.6g} s"
