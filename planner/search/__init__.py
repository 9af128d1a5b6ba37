"""Search: SearchProblem -> Plan, exactly, with CP-SAT (see `cpsat.py` for the formulation).

`search_plan(problem, settings)` is the stage's entry. It computes once what does not
depend on the rates (`choices.admissible`), builds the options, runs the objective's
stages (lexicographic solves of the same option model, each bounded in CP-SAT
deterministic time), checks the answer with the independent validator and returns a
`Plan`, or raises `SearchInfeasible` (exit 3) naming the binding constraint and the GPU
count that would suffice, or `SolverTimeout` when nothing was found in time.

Stages per objective (their facts are in `plan.solver.stages`; the headline status is
the worst stage's). The stages of a plan share its time limit; the deterministic time a
stage leaves unused passes to the next, and the last stage gets all that is left:
    min-latency     latency; then, when `latency_tolerance` > 0, the fewest GPUs (lowest
                    cost when the cluster has prices) among plans within (1 + tolerance)
                    of that latency; then the lowest latency on those GPUs (or that cost).
    min-gpus        GPUs; then the lowest latency on that many GPUs.
    min-cost        cost; then the lowest latency at that cost.
    max-throughput  the highest common scale of the rates (`throughput.py`, below 1 when
                    the cluster is too small for the target); then latency at that scale.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from planner.search.baselines import greedy_choice
from planner.search.choices import Admissible, Option, Part, admissible
from planner.search.cpsat import (
    COST_SCALE,
    MICROS,
    Bounds,
    Goal,
    SolveResult,
    SolverTimeout,
    build_options,
    cost_coefficient,
    finish,
    headline,
    solve_options,
    stage_facts,
    to_allocations,
)
from planner.search.explain import SearchInfeasible, explain_infeasible, gpus_needed
from planner.search.predict import mixture_latency_s, predict_models, throughput_scale
from planner.search.prefix import cache_choice
from planner.search.problem import SearchProblem
from planner.search.served import not_served_note, servable_workflows
from planner.search.throughput import max_scale
from planner.search.validate import check_plan, mean_latency_s
from planner.types.names import ModelName
from planner.types.plan import Plan, StageFacts
from planner.types.settings import SolveSettings

# Share of the latency stage's budget the single-shape solve that seeds a mixed search
# may take.
SINGLE_SHARE = 0.25
# Budget of the default objective's stages (latency; fewest GPUs or cost within the
# tolerance; latency on those), as shares of the time limit. What a stage leaves unused
# passes to the next (the budget is deterministic time, so the split stays
# deterministic): at 4,096 GPUs x 100 models the latency stage is proven optimal in
# about 6 of its 42 s and the GPU stage, the hardest there, gets most of the rest.
STAGE_SHARES = (0.7, 0.2, 0.1)

__all__ = [
    "SearchInfeasible",
    "SearchProblem",
    "SolveSettings",
    "SolverTimeout",
    "search_plan",
]

Options = Mapping[ModelName, Sequence[Option]]


def search_plan(problem: SearchProblem, settings: SolveSettings | None = None) -> Plan:
    """The optimal (or best found, with its gap) plan for the settings' objective.

    For max-throughput the problem's rates are the base the scale multiplies.

    Raises:
        SearchInfeasible: nothing meets the constraints.
        SolverTimeout: no plan found within the time limit.
    """
    settings = settings or SolveSettings()
    known = admissible(problem)
    if settings.objective == "max-throughput":
        plan = _max_throughput(problem, settings, known)
    elif settings.objective == "min-gpus":
        plan = _min_resource(problem, settings, known, "units")
    elif settings.objective == "min-cost":
        if problem.cluster.prices() is None:
            from planner.errors import InputError

            raise InputError(
                "--objective min-cost needs a price: give price_per_gpu_hour for every "
                "pool of the cluster file"
            )
        plan = _min_resource(problem, settings, known, "cost")
    else:
        plan = _min_latency(problem, settings, known)
    violations = check_plan(_target_problem(problem, plan), plan)
    if violations:  # the validator is the specification: a violation is a bug
        raise RuntimeError("search produced an invalid plan: " + "; ".join(map(str, violations)))
    return plan


def _target_problem(problem: SearchProblem, plan: Plan) -> SearchProblem:
    rates = {w.workflow_type: w.target_rate_per_s for w in plan.workflows}
    served = problem.only_workflows(tuple(rates))  # max-throughput may leave types out
    flows = tuple(replace(w, rate_per_s=rates[w.workflow_type]) for w in served.workflows)
    return replace(served, workflows=flows)


@dataclass(frozen=True)
class _Latency:
    """A latency stage's answer: the chosen options and the mean latency with its bound."""

    result: SolveResult
    latency_s: float  # predicted mean workflow latency of the chosen options
    constant_s: float  # tool time the solver's objective leaves out
    facts: StageFacts
    deterministic_s: float  # CP-SAT deterministic seconds of the stage (seed included)


def _latency_stage(
    problem: SearchProblem,
    options: Options,
    settings: SolveSettings,
    budget_s: float,
    hint: Mapping[ModelName, Option] | None,
    limits: Bounds | None = None,
    seed: bool = True,
) -> _Latency | None:
    """Lowest latency (under `limits`); with mixtures, a single-shape solve seeds the
    mixed one and the better of the two is kept. None when infeasible."""
    first: SolveResult | None = None
    spent = 0.0
    if seed and settings.use_hint and settings.mix is not None:
        singles = {m: tuple(o for o in opts if o.is_single) for m, opts in options.items()}
        share = budget_s * SINGLE_SHARE
        try:
            first = solve_options(problem, singles, "latency", settings, share, hint, limits)
        except SolverTimeout:
            budget_s -= share
            spent = share
        if first is not None:
            hint = {o.model: o for o in first.chosen}
            budget_s -= first.deterministic_s  # what the seed left goes to the mixed solve
            spent = first.deterministic_s
    try:
        found = solve_options(problem, options, "latency", settings, budget_s, hint, limits)
    except SolverTimeout:
        if first is None:
            raise
        # the mixed solve found nothing in its budget: the seed, with no proven bound
        found = replace(first, status="FEASIBLE", bound=0.0, wall_s=0.0, deterministic_s=budget_s)
    if found is None:
        return None
    spent += found.deterministic_s
    result = found
    wall = result.wall_s + (first.wall_s if first else 0.0)
    if first is not None and first.objective < result.objective:
        # the mixed solve stopped above its seed: keep the seed (same options, subset)
        result = replace(first, status="FEASIBLE", bound=result.bound)
    # Solver objective is in us without the constant tool time; report seconds with it.
    latency = mean_latency_s(problem, to_allocations(result.chosen))
    constant = latency - result.objective / MICROS
    bound = result.bound / MICROS + constant
    facts = stage_facts("latency", result.status, latency, bound, wall)
    return _Latency(result, latency, constant, facts, spent)


def _min_latency(problem: SearchProblem, settings: SolveSettings, known: Admissible) -> Plan:
    """Lowest latency; then, within the tolerance, the fewest GPUs (or lowest cost)."""
    start = time.perf_counter()
    options = build_options(problem, settings, known)
    tolerance = settings.latency_tolerance
    first_budget = settings.time_limit_s * (STAGE_SHARES[0] if tolerance > 0 else 1.0)
    first = _latency_stage(
        problem, options, settings, first_budget, _greedy(problem, options, settings)
    )
    if first is None:
        raise explain_infeasible(problem, settings)
    stages = [first.facts]
    chosen = first.result.chosen
    notes: list[str] = []
    if tolerance > 0:
        allowed_s = first.latency_s * (1 + tolerance)
        limit_us = math.floor((allowed_s - first.constant_s) * MICROS)
        limit_us = max(limit_us, round(first.result.objective))
        left_s = settings.time_limit_s - first.deterministic_s
        chosen, more = _fewest_within(problem, options, settings, chosen, limit_us, left_s)
        stages += more
        before, after = _resource(problem, first.result.chosen), _resource(problem, chosen)
        unit = "$/hour" if problem.cluster.prices() else "GPUs"
        saved = f"{after:g} {unit} instead of {before:g}" if after < before else f"no fewer {unit}"
        notes.append(
            f"within {tolerance:.2%} of the lowest latency ({first.latency_s:.6g} s): {saved}"
        )
    plan_latency = mean_latency_s(problem, to_allocations(chosen))
    solver = headline(stages, plan_latency, first.facts.bound)
    solver = replace(solver, wall_s=time.perf_counter() - start)
    return finish(problem, chosen, settings.objective, solver, notes)


def _resource(problem: SearchProblem, chosen: Sequence[Option]) -> float:
    """GPUs of the chosen options, or their $/hour when the cluster has prices."""
    prices = problem.cluster.prices()
    if prices is None:
        return sum(o.units for o in chosen) / 8
    return round(sum(cost_coefficient(o, prices) for o in chosen) / COST_SCALE, 4)


def _fewest_within(
    problem: SearchProblem,
    options: Options,
    settings: SolveSettings,
    chosen: tuple[Option, ...],
    limit_us: int,
    budget_s: float,
) -> tuple[tuple[Option, ...], list[StageFacts]]:
    """Fewest GPUs (or lowest cost) with latency <= limit_us; then the lowest latency on
    those, both within `budget_s` deterministic seconds (split as STAGE_SHARES[1:], the
    second's unused time passing to the third). `chosen` (within the limit) is the hint
    and the fallback."""
    goal: Goal = "cost" if problem.cluster.prices() else "units"
    hint = {o.model: o for o in chosen}
    budget = budget_s * STAGE_SHARES[1] / (STAGE_SHARES[1] + STAGE_SHARES[2])
    try:
        second = solve_options(
            problem, options, goal, settings, budget, hint, Bounds(latency_us=limit_us)
        )
    except SolverTimeout:
        second = None
    if second is None:  # no better plan within the budget: keep the latency optimum
        return chosen, []
    stages = [_resource_facts(goal, second)]
    limits = (
        Bounds(units=round(second.objective))
        if goal == "units"
        else Bounds(cost=round(second.objective))
    )
    limits = replace(limits, latency_us=limit_us)
    try:
        third = _latency_stage(
            problem,
            options,
            settings,
            budget_s - second.deterministic_s,
            {o.model: o for o in second.chosen},
            limits,
            seed=False,
        )
    except SolverTimeout:  # nothing found in the budget: keep the second stage's plan
        third = None
    if third is None:
        return second.chosen, stages
    return third.result.chosen, [*stages, replace(third.facts, stage="latency-tiebreak")]


def _resource_facts(goal: Goal, result: SolveResult) -> StageFacts:
    scale = 8 if goal == "units" else COST_SCALE
    name = "gpus" if goal == "units" else "cost"
    return stage_facts(
        name, result.status, result.objective / scale, result.bound / scale, result.wall_s
    )


def _greedy(
    problem: SearchProblem, options: Options, settings: SolveSettings
) -> dict[ModelName, Option] | None:
    """The greedy plan (the first incumbent), when hints are on."""
    return greedy_choice(problem, options) if settings.use_hint else None


def _min_resource(
    problem: SearchProblem, settings: SolveSettings, known: Admissible, goal: Goal
) -> Plan:
    """Fewest GPUs or lowest cost; then the lowest latency among those plans."""
    start = time.perf_counter()
    options = build_options(problem, settings, known)
    first = solve_options(problem, options, goal, settings, settings.time_limit_s / 2)
    if first is None:
        raise explain_infeasible(problem, settings)
    facts = _resource_facts(goal, first)
    limits = Bounds(units=round(first.objective)) if goal == "units" else None
    if goal == "cost":
        limits = Bounds(cost=round(first.objective))
    hint = {o.model: o for o in first.chosen}
    try:
        left_s = settings.time_limit_s - first.deterministic_s
        second = _latency_stage(problem, options, settings, left_s, hint, limits, seed=False)
    except SolverTimeout:  # nothing found in the budget: keep the first stage's plan
        second = None
    chosen = second.result.chosen if second is not None else first.chosen
    stages = [facts, *([second.facts] if second is not None else [])]
    unit = "GPUs" if goal == "units" else "$/hour"
    notes = [f"lowest latency among plans of {facts.objective:g} {unit}"]
    solver = headline(stages, facts.objective, facts.bound)
    solver = replace(solver, wall_s=time.perf_counter() - start)
    return finish(problem, chosen, settings.objective, solver, notes)


def _with_known(
    problem: SearchProblem, options: Options, known: Sequence[Option]
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
            same = replace(o, latency_s=mixture_latency_s(parts, demand, model.burst_calls))
        if same not in out[o.model]:
            out[o.model] = (*out[o.model], same)
        hint[o.model] = same
    return out, hint


def _max_throughput(problem: SearchProblem, settings: SolveSettings, known: Admissible) -> Plan:
    """Highest common scale (below 1 when the cluster is too small); then latency there.
    A feasible allocation found by the bisection is added to the options and used as the
    hint: near the highest scale, feasible plans are hard to find again."""
    start = time.perf_counter()
    first = max_scale(problem, settings, settings.time_limit_s / 2, known)
    if first is None or first.scale <= 0:
        # not even a tiny load runs: the models do not all fit at once, a model fits no
        # shape, or an SLO fails when idle; serve the largest set of types that runs
        return _max_throughput_served(problem, settings)
    scale = _cache_consistent_scale(problem, first.chosen, first.scale)
    scaled = problem.scaled(scale)
    options, hint = _with_known(scaled, build_options(scaled, settings, known), first.chosen)
    notes = [f"rates scaled by {scale:g} (max-throughput)"]
    if scale < 1:
        notes.append(_missing_for_target(problem, settings, scale))
    scale_facts = stage_facts(
        "scale", first.status, scale, first.bound, first.wall_s, maximise=True
    )
    try:
        left_s = settings.time_limit_s - first.deterministic_s
        second = _latency_stage(scaled, options, settings, left_s, hint, seed=False)
    except SolverTimeout:  # nothing found in the budget: keep the bisection's allocation
        second = None
    chosen = second.result.chosen if second is not None else first.chosen
    stages = [scale_facts, *([second.facts] if second is not None else [])]
    solver = headline(stages, scale, first.bound, maximise=True)
    solver = replace(solver, wall_s=time.perf_counter() - start)
    return finish(scaled, chosen, settings.objective, solver, notes)


def _max_throughput_served(problem: SearchProblem, settings: SolveSettings) -> Plan:
    """Max-throughput over the largest set of workflow types whose models fit together
    (`served.py`); infeasible when no workflow type runs alone."""
    whole = explain_infeasible(
        problem.scaled(1e-9), settings, "One replica of every model (any scale > 0)"
    )
    if len(problem.workflows) < 2:
        raise whole
    kept = servable_workflows(problem, replace(settings, time_limit_s=settings.time_limit_s / 4))
    if kept is None:
        raise whole
    smaller = problem.only_workflows(kept)
    # The failed bisection had half the budget, the sets a quarter: the plan the rest.
    rest = replace(settings, time_limit_s=settings.time_limit_s / 4)
    plan = _max_throughput(smaller, rest, admissible(smaller))
    note = not_served_note(problem, kept, whole.gpus_needed)
    return replace(plan, notes=(*plan.notes, note))


def _missing_for_target(problem: SearchProblem, settings: SolveSettings, scale: float) -> str:
    """What the target rates (scale 1) would need, for a cluster that falls short."""
    head = f"the cluster sustains {scale:.3g} x the target rates"
    try:
        needed = gpus_needed(problem, replace(settings, time_limit_s=settings.time_limit_s / 4))
    except SolverTimeout:
        return f"{head}; how many GPUs scale 1 needs was not found in time"
    if needed is None:
        return f"{head}; no number of GPUs of these types reaches scale 1"
    return (
        f"{head}; scale 1 needs {needed:g} GPUs of the cluster's types "
        f"(it has {problem.cluster.gpus}: {needed - problem.cluster.gpus:g} missing)"
    )


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
