"""The allocation search as a CP-SAT model.

Notation
    m            a model; D_m its demand in calls/s = sum_w R_w n_wm (R_w target rate of
                 workflow type w, n_wm calls per workflow, p_wm their parallelism)
    o in O_m     an option of m (see `options.py`, `mixtures.py`): one shape k =
                 (gpu_type, tp, fraction) with c_k replicas, or a mixture of two shapes
                 k, k' with c_k, c_k' >= 1 replicas; the load is split in proportion to
                 capacity, so every replica runs at u = D_m / sum_k c_k cap_k, below the
                 utilisation cap; l_o = sum_k (c_k cap_k / C) l_k(u) its per-call latency
    s_k          units of one replica of shape k (1/8 GPU; powers of two)
    g, t         a GPU type; a size threshold (1 unit, or 2, 4, 8... whole GPUs)
    a_{o,g,t}    units of o's replicas on type g whose packing threshold is >= t:
                 sum over o's shapes k on g with s_k >= t of c_k s_k (a replica of one
                 GPU or less counts toward t = 1 only)
    C_{g,t}      packable capacity of type g for replicas of size >= t (`packing.py`)

Variables
    x_o in {0,1}     option o is m's allocation (one or two shapes per model)

Constraints (one function each below)
    one option per model        sum_{o in O_m} x_o = 1
    GPU budget and packing      sum_o a_{o,g,t} x_o <= C_{g,t}                  for all g, t
    SLO per workflow type       f_w (sum_m sum_o (n_wm / p_wm) l_o x_o + tool_w) <= SLO_w
                                (f_w = 1 for a mean SLO, the trace's p95/mean for p95)
    memory fit, TP rules, saturation and "one share of a GPU per model" (placement never
    puts two shares of one model on a GPU) hold by construction of O_m.

Objectives
    min-latency     min sum_m sum_o (sum_w R_w n_wm / p_wm / sum_w R_w) l_o x_o, the
                    rate-weighted mean workflow latency minus the constant tool time;
                    coefficients in integer microseconds (rounding <= 0.5 us per model).
    min-gpus        min sum_o sum_g a_{o,g,1} x_o, then min-latency among plans with that many
                    units (two solves, lexicographic).
    max-throughput  the highest common scale s of all rates at which the option model is
                    feasible, by bisection over s with feasibility solves (`throughput.py`):
                    every feasible point is snapped up to the exact scale its allocation
                    sustains, every infeasible one is proven by CP-SAT, so the bracket is
                    the objective and its bound; then min-latency at the rates times s.

Latency-SLO and objective coefficients are rounded up / to nearest microsecond; the
validator re-checks every plan with floats.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ortools.sat.python import cp_model
from ortools.sat.python.cp_model import LinearExpr

from planner.errors import PlannerError
from planner.search.choices import Option, model_options
from planner.search.packing import threshold_capacities
from planner.search.predict import make_plan
from planner.search.problem import SearchProblem
from planner.types.names import GpuType, ModelName
from planner.types.plan import Allocation, Objective, Plan, SolverFacts
from planner.types.settings import SolveSettings

MICROS = 1_000_000  # latency coefficients in integer microseconds

#: What a solve optimises: "latency" (rate-weighted mean latency), "units" (GPU eighths),
#: or "first" (the first plan found, with units as the guide: max-throughput's probes).
Goal = Literal["latency", "units", "first"]


class SolverTimeout(PlannerError):
    """No plan found within the time limit (not proven infeasible)."""


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
            (m, i): cp.new_bool_var(f"x[{m}|{_label(o)}]")
            for m, opts in self._options.items()
            for i, o in enumerate(opts)
        }

    def models(self) -> tuple[ModelName, ...]:
        return tuple(self._options)

    def options(self, model: ModelName) -> Iterator[tuple[Option, cp_model.IntVar]]:
        for i, o in enumerate(self._options[model]):
            yield o, self._x[(model, i)]

    def all(self) -> Iterator[tuple[Option, cp_model.IntVar]]:
        for m in self._options:
            yield from self.options(m)

    def replicas_of_size_at_least(self, gpu_type: GpuType, threshold: int) -> LinearExpr:
        """GPU units taken on `gpu_type` by replicas of size >= threshold (1/8 GPU units)."""
        terms = [(o.units_at_least(gpu_type, threshold), v) for o, v in self.all()]
        terms = [(u, v) for u, v in terms if u]
        return LinearExpr.weighted_sum([v for _, v in terms], [u for u, _ in terms])

    def units(self) -> LinearExpr:
        """GPU units taken by all chosen options."""
        return LinearExpr.weighted_sum([v for _, v in self.all()], [o.units for o, _ in self.all()])

    def chosen(self, solver: cp_model.CpSolver) -> tuple[Option, ...]:
        return tuple(o for o, x in self.all() if solver.boolean_value(x))


def _label(o: Option) -> str:
    return "+".join(
        f"{p.shape.key.gpu_type}|tp{p.shape.key.tp}|f{p.shape.key.gpu_fraction}|c{p.replicas}"
        for p in o.parts
    )


def build_options(
    problem: SearchProblem, settings: SolveSettings
) -> dict[ModelName, tuple[Option, ...]]:
    return {
        m.model: model_options(problem, m, settings.resolution, mix=settings.mix)
        for m in problem.models
    }


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
            cp.add(x.replicas_of_size_at_least(gpu_type, t) <= cap)
    if max_units is not None:
        cp.add(x.units() <= max_units)


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
    return x.units()


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
    # CP-SAT's own SIGINT catching stops the search quietly and then resets SIGINT to
    # its default action: Ctrl-C would yield a truncated plan, written as if complete.
    # The caller's handlers decide instead (see `_solve`).
    solver.parameters.catch_sigint_signal = False
    return solver


def _solve(solver: cp_model.CpSolver, cp: cp_model.CpModel) -> cp_model.CpSolverStatus:
    """`solver.solve(cp)` in a worker thread, so the main thread stays responsive.

    CP-SAT holds the calling thread for the whole search, and Python runs signal handlers
    only between bytecodes of the main thread. Waiting on an event instead lets an
    exception raised by a handler (KeyboardInterrupt, planner's Interrupted) arrive at
    once: the search is stopped, the worker joined, and the exception propagates.
    """
    done = threading.Event()
    result: list[cp_model.CpSolverStatus] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(solver.solve(cp))
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=run, name="cp-sat", daemon=True)
    worker.start()
    try:
        while not done.wait(0.1):
            pass
    except BaseException:
        solver.stop_search()
        done.wait()
        raise
    finally:
        worker.join()
    if failure:
        raise failure[0]
    return result[0]


def _status_name(solver: cp_model.CpSolver, status: cp_model.CpSolverStatus) -> str:
    return str(solver.status_name(status))


def solve_options(
    problem: SearchProblem,
    options: Mapping[ModelName, Sequence[Option]],
    goal: Goal,
    settings: SolveSettings,
    time_limit_s: float,
    hint: Mapping[ModelName, Option] | None = None,
) -> SolveResult | None:
    """Solve the option model for `goal`; None when infeasible.

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
    if goal == "latency":
        cp.minimize(latency_objective(x, problem))
    else:
        cp.minimize(units_objective(x))
    if hint:
        for o, v in x.all():
            cp.add_hint(v, hint.get(o.model) == o)
    solver = _solver(settings, time_limit_s)
    # "first": any feasible plan; the units objective only guides the search through the
    # LP (pure feasibility solves of mixed options stalled for minutes near the optimum).
    solver.parameters.stop_after_first_solution = goal == "first"
    if goal == "first":
        # Level 2 adds the cuts of every constraint to the LP: max-throughput's probes just
        # above the optimum are then proven infeasible in under a second instead of timing
        # out (1,024-GPU case of benchmarks/search_scale.py), which closes the bracket.
        solver.parameters.linearization_level = 2
    status = _solve(solver, cp)
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
        objective=float(solver.objective_value) if goal in ("latency", "units") else 0.0,
        bound=float(solver.best_objective_bound) if goal in ("latency", "units") else 0.0,
        wall_s=wall,
    )


def to_allocations(chosen: Sequence[Option]) -> tuple[Allocation, ...]:
    return tuple(
        sorted(
            Allocation(o.model, p.shape.key.gpu_type, p.shape.key.tp, p.shape.key.share_eighths,
                       p.replicas, p.shape.key.pp, p.shape.key.expert_parallel)
            for o in chosen
            for p in o.parts
        )
    )  # fmt: skip


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
