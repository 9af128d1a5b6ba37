"""The allocation search as a CP-SAT model.

Notation
    m            a model; D_m its demand in calls/s = sum_w R_w n_wm (R_w target rate of
                 workflow type w, n_wm calls per workflow, p_wm their parallelism)
    o in O_m     an option of m (see `choices.py`, `mixtures.py`): one shape k =
                 (gpu_type, tp, share) with c_k replicas, or a mixture of two shapes
                 k, k' with c_k, c_k' >= 1 replicas; the load is split in proportion to
                 capacity, so every replica runs at u = D_m / sum_k c_k cap_k, below the
                 utilisation cap; l_o = sum_k (c_k cap_k / C) l_k(u) its per-call latency
    g, t         a GPU type; a whole-GPU threshold t in units (8 = one GPU, 16, 32...)
    w_{o,g,t}    units of o's whole replicas (TP groups) of >= t units on type g
    n_{o,g,s}    o's shares of s eighths of a GPU on type g (s = 1..7; at most one)
    C_{g,t}, G_g NVLink-domain capacity of type g for groups of >= t units; its GPUs
    p, a_ps      a share pattern (a way to fill one GPU, `packing.SHARE_PATTERNS`) and
                 its parts of s eighths

Variables
    x_o in {0,1}      option o is m's allocation (one or two shapes per model)
    y_{g,p} in Z+     GPUs of type g filled with shares after pattern p

Constraints (one function each below)
    one option per model        sum_{o in O_m} x_o = 1
    TP groups fit the domains   sum_o w_{o,g,t} x_o <= C_{g,t}                for t >= 16
    shares fill the free GPUs   sum_p a_ps y_{g,p} >= sum_o n_{o,g,s} x_o      for all s
                                sum_p y_{g,p} + sum_o w_{o,g,8} x_o / 8 <= G_g
                                (exact: `packing.py` proves these hold iff placement fits)
    SLO per workflow type       f_w (sum_m sum_o r_wm n_wm / p_wm l_o x_o + tool_w) <= SLO_w
                                (f_w = 1 for a mean SLO, the trace's p95/mean for p95)
                                (r_wm: the type's mean call work over the model's)
    lexicographic bounds        latency <= L, units <= U, cost <= K (`Bounds`)
    memory fit, TP rules, saturation and "one share of a GPU per model" (placement never
    puts two shares of one model on a GPU) hold by construction of O_m.

Objectives
    latency         min sum_m sum_o (sum_w R_w r_wm n_wm / p_wm / sum_w R_w) l_o x_o, the
                    rate-weighted mean workflow latency minus the constant tool time;
                    coefficients in integer microseconds (rounding <= 0.5 us per model).
    units           min sum_o units_o x_o (GPUs in eighths).
    cost            min sum_o sum_g (units of o on g / 8) price_g x_o, in 1e-4 $/hour.
    first           any feasible plan, the units objective guiding the search (probes).
The stages that combine them (lexicographic default, min-gpus, min-cost, max-throughput)
are in `search/__init__.py` and `throughput.py`.

Solves are bounded in CP-SAT's deterministic time (`max_deterministic_time`), so the plan
does not depend on the machine's speed or load; a wall-clock limit several times larger
only guards against a runaway solve. The bound comes from the LP relaxation (within 0.1%
of the optimum at 4,096 GPUs x 100 models once the root LP is solved to its optimum; see
`_solver`), so CP-SAT's root LP gets the simplex iterations that takes. Latency-SLO and
objective coefficients are rounded up / to nearest microsecond; the validator re-checks
every plan with floats.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ortools.sat.python import cp_model
from ortools.sat.python.cp_model import LinearExpr

from planner.defaults import UNITS_PER_GPU
from planner.errors import PlannerError
from planner.search.choices import Admissible, Option, admissible, model_options
from planner.search.packing import (
    SHARE_PATTERNS,
    SHARE_SIZES,
    gpus_of_type,
    pack_shares,
    pattern_counts,
    tp_capacities,
)
from planner.search.predict import make_plan
from planner.search.problem import SearchProblem
from planner.types.names import GpuType, ModelName
from planner.types.plan import Allocation, Objective, Plan, SolverFacts, StageFacts
from planner.types.settings import SolveSettings

MICROS = 1_000_000  # latency coefficients in integer microseconds
COST_SCALE = 10_000  # cost coefficients in 1e-4 $/hour
# Wall-clock guard on a solve, as a multiple of its deterministic budget plus a constant.
# One deterministic second took up to about 3 wall seconds on this 2-core machine under a
# load of 8 (docs/benchmarks.md); the guard only stops a runaway solve, so it sits well
# above that, and a plan stays the same on a slow or busy machine.
WALL_GUARD = (10.0, 30.0)
# Simplex iterations of the root LP (CP-SAT's default: 2,000); see `_solver`.
ROOT_LP_ITERATIONS = 100_000


Goal = Literal["latency", "units", "cost", "first"]


class SolverTimeout(PlannerError):
    """No plan found within the time limit (not proven infeasible)."""


@dataclass(frozen=True)
class Bounds:
    """Extra caps of a lexicographic stage (None: no cap)."""

    latency_us: int | None = None  # on the latency objective (us, without tool time)
    units: int | None = None
    cost: int | None = None  # in 1/COST_SCALE $/hour


@dataclass
class Clock:
    """Deterministic seconds spent by the solves it was given to (budgets over probes)."""

    spent_s: float = 0.0


@dataclass(frozen=True)
class SolveResult:
    """The chosen options and the solver's facts (before predictions)."""

    chosen: tuple[Option, ...]
    status: str
    objective: float
    bound: float
    wall_s: float
    deterministic_s: float = 0.0


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

    def _sum(self, coefficient: Callable[[Option], int]) -> LinearExpr:
        terms = [(coefficient(o), v) for o, v in self.all()]
        terms = [(c, v) for c, v in terms if c]
        return LinearExpr.weighted_sum([v for _, v in terms], [c for c, _ in terms])

    def whole_units_at_least(self, gpu_type: GpuType, threshold: int) -> LinearExpr:
        """Units of whole replicas of >= `threshold` units on `gpu_type` (w_{g,t})."""
        return self._sum(lambda o: o.whole_units_at_least(gpu_type, threshold))

    def whole_gpus(self, gpu_type: GpuType) -> LinearExpr:
        """GPUs of `gpu_type` taken by whole replicas."""
        return self._sum(lambda o: o.whole_units_at_least(gpu_type, UNITS_PER_GPU) // UNITS_PER_GPU)

    def shares(self, gpu_type: GpuType, eighths: int) -> LinearExpr:
        """Shares of `eighths` of a GPU on `gpu_type` (n_{g,s})."""
        return self._sum(lambda o: o.shares(gpu_type, eighths))

    def has_shares(self, gpu_type: GpuType) -> bool:
        return any(o.shares(gpu_type, s) for o, _ in self.all() for s in SHARE_SIZES)

    def units(self) -> LinearExpr:
        """GPU units (eighths) taken by all chosen options."""
        return self._sum(lambda o: o.units)

    def cost(self, prices: Mapping[GpuType, float]) -> LinearExpr:
        """$/hour of the chosen options' GPUs, in 1/COST_SCALE $/hour."""
        return self._sum(lambda o: cost_coefficient(o, prices))

    def chosen(self, solver: cp_model.CpSolver) -> tuple[Option, ...]:
        return tuple(o for o, x in self.all() if solver.boolean_value(x))


def cost_coefficient(o: Option, prices: Mapping[GpuType, float]) -> int:
    return round(o.cost_per_hour(prices) * COST_SCALE)


def _label(o: Option) -> str:
    return "+".join(
        f"{p.shape.key.gpu_type}|tp{p.shape.key.tp}|e{p.shape.key.share_eighths}|c{p.replicas}"
        for p in o.parts
    )


def build_options(
    problem: SearchProblem, settings: SolveSettings, known: Admissible | None = None
) -> dict[ModelName, tuple[Option, ...]]:
    """Every model's options; `known` (`admissible(problem)`) when the caller has it."""
    known = known or admissible(problem)
    return {
        m.model: model_options(problem, m, settings.resolution, mix=settings.mix, known=known)
        for m in problem.models
    }


def one_option_per_model(cp: cp_model.CpModel, x: Variables) -> None:
    # Every model runs on exactly one (shape, replica count).
    for m in x.models():
        cp.add_exactly_one(v for _, v in x.options(m))


def gpu_budget(
    cp: cp_model.CpModel,
    x: Variables,
    problem: SearchProblem,
    hint: Mapping[ModelName, Option] | None = None,
) -> None:
    # Replicas of each GPU type fit its GPUs and NVLink domains (exactly, by packing.py).
    for g in problem.gpu_types():
        for t, cap in tp_capacities(problem.cluster, g).items():
            if t > UNITS_PER_GPU:  # TP groups of >= t units fit the NVLink domains
                cp.add(x.whole_units_at_least(g, t) <= cap)
        gpus = gpus_of_type(problem.cluster, g)
        if not x.has_shares(g):
            cp.add(x.whole_gpus(g) <= gpus)
            continue
        # Shares fill the GPUs whole replicas leave free, each GPU after one pattern.
        y = [cp.new_int_var(0, gpus, f"y[{g}|{'.'.join(map(str, p))}]") for p in SHARE_PATTERNS]
        for s in SHARE_SIZES:
            slots = [(p.count(s), v) for p, v in zip(SHARE_PATTERNS, y, strict=True) if s in p]
            cp.add(
                LinearExpr.weighted_sum([v for _, v in slots], [a for a, _ in slots])
                >= x.shares(g, s)
            )
        cp.add(LinearExpr.sum(y) + x.whole_gpus(g) <= gpus)
        if hint:
            _hint_patterns(cp, y, g, gpus, hint.values())


def _hint_patterns(
    cp: cp_model.CpModel,
    y: Sequence[cp_model.IntVar],
    g: GpuType,
    gpus: int,
    chosen: Iterable[Option],
) -> None:
    """Hint the pattern variables with a packing of the hinted options' shares, so the
    hint is a complete solution (CP-SAT need not repair it)."""
    chosen = tuple(chosen)
    shares = {s: sum(o.shares(g, s) for o in chosen) for s in SHARE_SIZES}
    whole = sum(o.whole_units_at_least(g, UNITS_PER_GPU) for o in chosen) // UNITS_PER_GPU
    packed = pack_shares(shares, gpus - whole)
    if packed is None:
        return  # the hint does not fit: CP-SAT repairs it
    for v, n in zip(y, pattern_counts(packed), strict=True):
        cp.add_hint(v, n)


def bounds(
    cp: cp_model.CpModel, x: Variables, problem: SearchProblem, limits: Bounds | None
) -> None:
    # The earlier stages' results, as caps (lexicographic objectives).
    if limits is None:
        return
    if limits.latency_us is not None:
        cp.add(latency_objective(x, problem) <= limits.latency_us)
    if limits.units is not None:
        cp.add(x.units() <= limits.units)
    if limits.cost is not None:
        cp.add(x.cost(_prices(problem)) <= limits.cost)


def _prices(problem: SearchProblem) -> Mapping[GpuType, float]:
    prices = problem.cluster.prices()
    if prices is None:
        raise PlannerError("the cost objective needs price_per_gpu_hour on every pool")
    return prices


def latency_slos(cp: cp_model.CpModel, x: Variables, problem: SearchProblem) -> None:
    # Each workflow type's predicted (mean or p95) latency stays within its SLO.
    for w in problem.workflows:
        if w.slo_s is None:
            continue
        factor = w.p95_over_mean if w.slo_kind == "p95" else 1.0
        budget_us = math.floor((w.slo_s / factor - w.non_llm_time_s) * MICROS)
        terms = []
        for use in w.uses:
            weight = use.latency_weight
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


def _solver(settings: SolveSettings, budget_s: float) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    budget = max(0.05, budget_s)
    solver.parameters.max_deterministic_time = budget
    solver.parameters.max_time_in_seconds = WALL_GUARD[0] * budget + WALL_GUARD[1]
    solver.parameters.num_workers = settings.num_workers
    solver.parameters.random_seed = settings.random_seed
    # Several workers run in CP-SAT's deterministic interleaved mode: same inputs, same plan.
    solver.parameters.interleave_search = settings.num_workers > 1
    # Probing spends seconds deriving millions of implied clauses between the options of
    # one model without moving the bound (benchmarks/search_scale.py); the LP does the work.
    solver.parameters.cp_model_probing_level = 0
    # The root LP gets enough simplex iterations to reach its optimum: with the default
    # 2,000 it stopped 1.3% below it at 4,096 GPUs x 100 models (80,000 options), and the
    # bound never recovered; solved, the LP bound is within 0.1% of the optimum there.
    solver.parameters.root_lp_iterations = ROOT_LP_ITERATIONS
    # Looking for large identical blocks in the constraint matrix took 1 deterministic s
    # per presolve pass (6 of a 10 s budget at that size) and never shrank the model.
    solver.parameters.find_big_linear_overlap = False
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
    budget_s: float,
    hint: Mapping[ModelName, Option] | None = None,
    limits: Bounds | None = None,
    clock: Clock | None = None,
) -> SolveResult | None:
    """Solve the option model for `goal` within `budget_s` deterministic seconds; None
    when infeasible.

    Raises:
        SolverTimeout: no solution within the budget.
    """
    start = time.perf_counter()
    if any(not opts for opts in options.values()):
        return None
    cp = cp_model.CpModel()
    x = Variables(cp, options)
    one_option_per_model(cp, x)
    gpu_budget(cp, x, problem, hint)
    latency_slos(cp, x, problem)
    bounds(cp, x, problem, limits)
    if goal == "latency":
        cp.minimize(latency_objective(x, problem))
    elif goal == "cost":
        cp.minimize(x.cost(_prices(problem)))
    else:
        cp.minimize(units_objective(x))
    if hint:
        for o, v in x.all():
            cp.add_hint(v, hint.get(o.model) == o)
    solver = _solver(settings, budget_s)
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
    if clock is not None:
        clock.spent_s += float(solver.deterministic_time)
    if status == cp_model.INFEASIBLE:
        return None
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        if status == cp_model.MODEL_INVALID:
            raise RuntimeError(f"CP-SAT model invalid: {cp.validate()}")
        raise SolverTimeout(
            f"no plan found within the {budget_s:.0f} s time limit; raise --time-limit"
        )
    return SolveResult(
        chosen=x.chosen(solver),
        status=_status_name(solver, status),
        objective=float(solver.objective_value) if goal != "first" else 0.0,
        bound=float(solver.best_objective_bound) if goal != "first" else 0.0,
        wall_s=wall,
        deterministic_s=float(solver.deterministic_time),
    )


def to_allocations(chosen: Sequence[Option]) -> tuple[Allocation, ...]:
    return tuple(
        sorted(
            Allocation(o.model, p.shape.key.gpu_type, p.shape.key.tp, p.shape.key.share_eighths,
                       p.replicas, p.shape.key.pp, p.shape.key.expert_parallel,
                       p.shape.key.dp)
            for o in chosen
            for p in o.parts
        )
    )  # fmt: skip


def relative_gap(objective: float, bound: float, maximise: bool = False) -> float:
    """|objective - bound| / |objective| (0 for a zero minimum, inf for a zero maximum)."""
    if maximise:
        gap = (bound - objective) / objective if objective > 0 else math.inf
    else:
        gap = (objective - bound) / objective if objective > 0 else 0.0
    return max(0.0, gap)


def stage_facts(
    stage: str, status: str, objective: float, bound: float, wall_s: float, maximise: bool = False
) -> StageFacts:
    return StageFacts(
        stage, status, objective, bound, relative_gap(objective, bound, maximise), wall_s
    )


_RANK = {"OPTIMAL": 0, "FEASIBLE": 1}


def headline(
    stages: Sequence[StageFacts], objective: float, bound: float, maximise: bool = False
) -> SolverFacts:
    """The plan's solver facts: its objective and bound, the worst stage's status, the
    stages' summed wall time."""
    status = max((s.status for s in stages), key=lambda name: _RANK.get(name, 2))
    wall = math.fsum(s.wall_s for s in stages)
    gap = relative_gap(objective, bound, maximise)
    return SolverFacts(status, objective, bound, gap, wall, tuple(stages))


def finish(
    problem: SearchProblem,
    chosen: Sequence[Option],
    objective: Objective,
    solver: SolverFacts,
    notes: Sequence[str] = (),
) -> Plan:
    """The Plan of the chosen options, with its predictions."""
    return make_plan(problem, to_allocations(chosen), objective, solver, notes)
