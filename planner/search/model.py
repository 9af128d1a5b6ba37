"""The allocation search as a CP-SAT model.

Notation
    m            a model; D_m its demand in calls/s = sum_w R_w n_wm (R_w target rate of
                 workflow type w, n_wm calls per workflow, p_wm their parallelism)
    o in O_m     an option of m: a shape k = (gpu_type, tp, fraction) and a replica count
                 c (see `options.py`); each replica runs at u = D_m / (c cap_k), below the
                 utilisation cap; l_o = l_k(u) its per-call latency; s_o = units of one
                 replica (1/8 GPU), c s_o the option's units
    g, t         a GPU type; a size threshold (1 unit, or 2, 4, 8... whole GPUs)
    C_{g,t}      packable capacity of type g for replicas of size >= t (`packing.py`)

Variables
    x_o in {0,1}     option o is m's allocation (one shape per model)

Constraints (one function each below)
    one option per model        sum_{o in O_m} x_o = 1
    GPU budget and packing      sum_{o on g, s_o >= t} c_o s_o x_o <= C_{g,t}   for all g, t
    SLO per workflow type       f_w (sum_m sum_o (n_wm / p_wm) l_o x_o + tool_w) <= SLO_w
                                (f_w = 1 for a mean SLO, the trace's p95/mean for p95)
    memory fit, TP rules and saturation hold by construction of O_m.

Objectives
    min-latency     min sum_m sum_o (sum_w R_w n_wm / p_wm / sum_w R_w) l_o x_o, the
                    rate-weighted mean workflow latency minus the constant tool time;
                    coefficients in integer microseconds (rounding <= 0.5 us per model).
    min-gpus        min sum_o c_o s_o x_o, then min-latency among plans with that many
                    units (two solves, lexicographic).
    max-throughput  a separate model with integer replica counts y_{m,k} per shape and
                    one shape per model: max integer S such that, for every m,
                    sum_k floor(cap_k u_k 10^6 / D_m) y_{m,k} >= S (u_k the cap), i.e. all
                    rates scaled by S / 10^6 stay under the cap (floors make it
                    conservative); then min-latency at the rates times S / 10^6.

Latency-SLO and objective coefficients are rounded up / to nearest microsecond; the
validator re-checks every plan with floats.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from ortools.sat.python import cp_model

from planner.calls import ModelName
from planner.errors import PlannerError
from planner.plan import Allocation, Objective, Plan, SolverFacts
from planner.search.options import (
    DEFAULT_RESOLUTION,
    Option,
    model_options,
    shape_fits_memory,
    shape_is_structural,
)
from planner.search.packing import item_threshold, threshold_capacities
from planner.search.predict import make_plan
from planner.search.problem import SearchProblem, ShapeCandidate

MICROS = 1_000_000  # latency coefficients in integer microseconds
SCALE_STEPS = 1_000_000  # max-throughput scale resolution: 1e-6 of the base rates
# The reported scale is shrunk by this factor so the float re-check of the cap holds.
SCALE_SAFETY = 1 - 1e-9


class SolverTimeout(PlannerError):
    """No plan found within the time limit (not proven infeasible)."""


@dataclass(frozen=True)
class SolveSettings:
    """How to search. `num_workers` and `random_seed` are pinned for determinism."""

    objective: Objective = "min-latency"
    time_limit_s: float = 30.0
    num_workers: int = 1  # one worker is deterministic and, here, fastest (benchmarks)
    random_seed: int = 0
    resolution: float = DEFAULT_RESOLUTION  # latency net of options.py
    use_hint: bool = True
    max_units: int | None = None  # extra cap on total units (lexicographic 2nd stage)


@dataclass(frozen=True)
class SolveResult:
    """The chosen options and the solver's facts (before predictions)."""

    chosen: tuple[Option, ...]
    status: str
    objective: float
    bound: float
    wall_s: float


class Variables:
    """Owns the CP-SAT booleans x_o and answers questions in the problem's terms."""

    def __init__(self, cp: cp_model.CpModel, options: Mapping[ModelName, Sequence[Option]]):
        self._options = {m: tuple(opts) for m, opts in sorted(options.items())}
        self._x = {
            (m, i): cp.new_bool_var(f"x[{m}|{o.shape.key.gpu_type}|tp{o.shape.key.tp}|"
                                    f"f{o.shape.key.gpu_fraction}|c{o.replicas}]")
            for m, opts in self._options.items()
            for i, o in enumerate(opts)
        }  # fmt: skip

    def models(self) -> tuple[ModelName, ...]:
        return tuple(self._options)

    def options(self, model: ModelName) -> Iterator[tuple[Option, cp_model.IntVar]]:
        for i, o in enumerate(self._options[model]):
            yield o, self._x[(model, i)]

    def all(self) -> Iterator[tuple[Option, cp_model.IntVar]]:
        for m in self._options:
            yield from self.options(m)

    def chosen(self, solver: cp_model.CpSolver) -> tuple[Option, ...]:
        return tuple(o for o, x in self.all() if solver.boolean_value(x))


def build_options(
    problem: SearchProblem, settings: SolveSettings
) -> dict[ModelName, tuple[Option, ...]]:
    return {m.model: model_options(problem, m, settings.resolution) for m in problem.models}


def one_option_per_model(cp: cp_model.CpModel, x: Variables) -> None:
    # Every model runs on exactly one (shape, replica count).
    for m in x.models():
        cp.add_exactly_one(v for _, v in x.options(m))


def gpu_budget(
    cp: cp_model.CpModel, x: Variables, problem: SearchProblem, max_units: int | None
) -> None:
    # Replicas of each GPU type fit its GPUs and NVLink domains (exactly, by packing.py).
    for gpu_type in problem.gpu_types():
        for t, cap in threshold_capacities(problem.cluster, gpu_type).items():
            terms = [
                (o.units, v)
                for o, v in x.all()
                if o.gpu_type == gpu_type and item_threshold(o.shape.units) >= t
            ]
            if terms:
                cp.add(sum(c * v for c, v in terms) <= cap)
    if max_units is not None:
        cp.add(sum(o.units * v for o, v in x.all()) <= max_units)


def latency_slos(cp: cp_model.CpModel, x: Variables, problem: SearchProblem) -> None:
    # Each workflow type's predicted (mean or p95) latency stays within its SLO.
    for w in problem.workflows:
        if w.slo_s is None:
            continue
        factor = w.p95_over_mean if w.slo_kind == "p95" else 1.0
        budget_us = math.floor((w.slo_s / factor - w.non_llm_time_s) * MICROS)
        terms = []
        for use in w.uses:
            weight = use.calls_per_workflow / use.parallelism
            terms += [
                (math.ceil(weight * o.latency_s * MICROS), v) for o, v in x.options(use.model)
            ]
        cp.add(sum(c * v for c, v in terms) <= budget_us)


def latency_objective(x: Variables, problem: SearchProblem) -> cp_model.LinearExpr:
    # Rate-weighted mean workflow latency, without the constant tool time, in us.
    terms = []
    for m in x.models():
        weight = problem.latency_weight(m)
        terms += [(round(weight * o.latency_s * MICROS), v) for o, v in x.options(m)]
    return cp_model.LinearExpr.weighted_sum([v for _, v in terms], [c for c, _ in terms])


def units_objective(x: Variables) -> cp_model.LinearExpr:
    # GPUs used, in 1/8 units.
    return cp_model.LinearExpr.weighted_sum([v for _, v in x.all()], [o.units for o, _ in x.all()])


def _solver(settings: SolveSettings, time_limit_s: float) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.05, time_limit_s)
    solver.parameters.num_workers = settings.num_workers
    solver.parameters.random_seed = settings.random_seed
    # Several workers run in CP-SAT's deterministic interleaved mode: same inputs, same plan.
    solver.parameters.interleave_search = settings.num_workers > 1
    # Probing spends seconds deriving millions of implied clauses between the options of
    # one model without moving the bound (benchmarks/search_scale.py); the LP does the work.
    solver.parameters.cp_model_probing_level = 0
    return solver


def _status_name(solver: cp_model.CpSolver, status: cp_model.CpSolverStatus) -> str:
    return str(solver.status_name(status))


def solve_options(
    problem: SearchProblem,
    options: Mapping[ModelName, Sequence[Option]],
    goal: str,
    settings: SolveSettings,
    time_limit_s: float,
    hint: Mapping[ModelName, Option] | None = None,
) -> SolveResult | None:
    """Solve the option model for `goal` ("latency" or "units"); None when infeasible.

    Raises:
        SolverTimeout: no solution within the time limit.
    """
    start = time.perf_counter()
    if any(not opts for opts in options.values()):
        return None
    cp = cp_model.CpModel()
    x = Variables(cp, options)
    one_option_per_model(cp, x)
    gpu_budget(cp, x, problem, settings.max_units)
    latency_slos(cp, x, problem)
    expr = latency_objective(x, problem) if goal == "latency" else units_objective(x)
    cp.minimize(expr)
    if hint:
        for o, v in x.all():
            cp.add_hint(v, hint.get(o.model) == o)
    solver = _solver(settings, time_limit_s)
    status = solver.solve(cp)
    wall = time.perf_counter() - start
    if status == cp_model.INFEASIBLE:
        return None
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        if status == cp_model.MODEL_INVALID:
            raise RuntimeError(f"CP-SAT model invalid: {cp.validate()}")
        raise SolverTimeout(
            f"no plan found within the {time_limit_s:.0f} s time limit; raise --time-limit"
        )
    return SolveResult(
        chosen=x.chosen(solver),
        status=_status_name(solver, status),
        objective=float(solver.objective_value),
        bound=float(solver.best_objective_bound),
        wall_s=wall,
    )


def solve_max_scale(
    problem: SearchProblem, settings: SolveSettings, time_limit_s: float
) -> tuple[float, str, float, float] | None:
    """Max-throughput stage: (scale, status, bound scale, wall_s), None when infeasible."""
    start = time.perf_counter()
    cp = cp_model.CpModel()
    caps = {g: threshold_capacities(problem.cluster, g) for g in problem.gpu_types()}
    counts: list[tuple[ShapeCandidate, cp_model.IntVar]] = []
    level_upper = 0
    per_model: list[list[tuple[int, cp_model.IntVar]]] = []
    for m in problem.models:
        shapes = [
            s for s in m.shapes if shape_is_structural(problem, m, s) and shape_fits_memory(s)
        ]
        if not shapes:
            return None
        demand = problem.demand_per_s(m.model)
        picks, terms = [], []
        for s in shapes:
            cap = caps[s.key.gpu_type]
            limit = cap.get(item_threshold(s.units), 0) // s.units
            if limit < 1:
                continue
            y = cp.new_int_var(0, limit, f"y[{m.model}|{s.key}]")
            pick = cp.new_bool_var(f"pick[{m.model}|{s.key}]")
            cp.add(y >= 1).only_enforce_if(pick)
            cp.add(y == 0).only_enforce_if(~pick)
            picks.append(pick)
            counts.append((s, y))
            if demand > 0:
                top = min(problem.utilisation_cap, s.ladder_utilisation[-1])
                coeff = math.floor(s.capacity_per_s * top * SCALE_STEPS / demand)
                terms.append((coeff, y))
                level_upper = max(level_upper, coeff * limit)
        if not picks:
            return None
        cp.add_exactly_one(picks)  # one shape per model, as in the latency model
        if demand > 0:
            per_model.append(terms)
    level = cp.new_int_var(0, max(level_upper, 1), "scale")
    for terms in per_model:
        cp.add(sum(c * y for c, y in terms) >= level)
    for gpu_type, cap in caps.items():
        for t, limit in cap.items():
            sized = [
                (s.units, y)
                for s, y in counts
                if s.key.gpu_type == gpu_type and item_threshold(s.units) >= t
            ]
            if sized:
                cp.add(sum(u * y for u, y in sized) <= limit)
    cp.maximize(level)
    solver = _solver(settings, time_limit_s)
    status = solver.solve(cp)
    wall = time.perf_counter() - start
    if status == cp_model.INFEASIBLE:
        return None
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise SolverTimeout(
            f"no plan found within the {time_limit_s:.0f} s time limit; raise --time-limit"
        )
    scale = solver.value(level) / SCALE_STEPS * SCALE_SAFETY
    return scale, _status_name(solver, status), solver.best_objective_bound / SCALE_STEPS, wall


def to_allocations(chosen: Sequence[Option]) -> tuple[Allocation, ...]:
    return tuple(
        sorted(
            Allocation(
                o.model, o.shape.key.gpu_type, o.shape.key.tp, o.shape.key.gpu_fraction, o.replicas
            )
            for o in chosen
        )
    )


def facts(
    status: str, objective: float, bound: float, wall_s: float, maximise: bool = False
) -> SolverFacts:
    """SolverFacts with the relative gap |objective - bound| / |objective|."""
    if maximise:
        gap = (bound - objective) / objective if objective > 0 else math.inf
    else:
        gap = (objective - bound) / objective if objective > 0 else 0.0
    return SolverFacts(status, objective, bound, max(0.0, gap), wall_s)


def finish(
    problem: SearchProblem,
    chosen: Sequence[Option],
    objective: Objective,
    solver: SolverFacts,
    notes: Sequence[str] = (),
) -> Plan:
    """The Plan of the chosen options, with its predictions."""
    return make_plan(problem, to_allocations(chosen), objective, solver, notes)
