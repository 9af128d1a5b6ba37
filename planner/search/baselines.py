"""Baseline allocations on the same GPUs, for the evaluation (and the solver's hint).

- uniform: every model gets an equal share of each GPU type, filled with replicas of
  its smallest fitting shape (whole GPUs when the share allows).
- independent: each model sized alone: its cheapest option meeting its own demand
  fixes its need; the GPUs are split in proportion to the needs, and each model (largest
  need first) takes its lowest-latency option within its part that still packs.
- greedy (Scepsy-style): every model starts on the fewest GPUs meeting its demand with
  its smallest shape (replicas first until the rate is met), then the move with the
  best latency gain per GPU (one more replica step, or double TP) is taken while the
  cluster can place it.

Every baseline runs on the same GPUs as the plan: when its choices do not pack (a model
sized alone can want more than is left), replicas of the largest allocation are dropped
until they do. Baselines do not optimise and may still be invalid (a model too large for
its share gets no replicas; a share too small saturates); `check_plan` says so, the
simulator measures it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence

from planner.defaults import UNITS_PER_GPU
from planner.search.choices import (
    Option,
    model_options,
    shape_fits_memory,
    shape_is_structural,
)
from planner.search.packing import fits, gpus_of_type
from planner.search.predict import make_plan
from planner.search.problem import SearchProblem, ShapeCandidate
from planner.search.validate import mean_latency_s
from planner.types.names import ModelName
from planner.types.plan import Allocation, Plan, SolverFacts
from planner.types.settings import DEFAULT_RESOLUTION
from planner.types.shapes import ShapeKey


def uniform_plan(problem: SearchProblem) -> Plan:
    """Equal GPU share per model on every GPU type."""
    start = time.perf_counter()
    allocs: list[Allocation] = []
    n = len(problem.models)
    for gpu_type in problem.gpu_types():
        share = gpus_of_type(problem.cluster, gpu_type) * UNITS_PER_GPU // max(1, n)
        for m in problem.models:
            shapes = [
                s
                for s in m.shapes
                if s.key.gpu_type == gpu_type
                and shape_is_structural(problem, m, s)
                and shape_fits_memory(s)
                and s.units <= share
            ]
            if not shapes:
                continue
            whole = [s for s in shapes if s.units >= UNITS_PER_GPU]
            pool = whole or shapes
            shape = min(pool, key=lambda s: (s.units, s.key))
            count = share // shape.units if shape.units >= UNITS_PER_GPU else 1
            allocs.append(_alloc(m.model, shape, count))
    return _baseline(problem, allocs, "UNIFORM", start)


def independent_plan(problem: SearchProblem, resolution: float = DEFAULT_RESOLUTION) -> Plan:
    """GPUs split in proportion to each model's own need, best latency within its part."""
    start = time.perf_counter()
    options = {m.model: model_options(problem, m, resolution) for m in problem.models}
    need = {m: min((o.units for o in opts), default=0) for m, opts in options.items()}
    total_units = problem.cluster.gpus * UNITS_PER_GPU
    need_sum = sum(need.values())
    # First every model on its cheapest option (so all fit when anything does), then each
    # (largest need first) moves to its fastest option within its part that still packs.
    current = {
        m: min(opts, key=lambda o: (o.units, o.latency_s, o.shape.key, o.replicas))
        for m, opts in options.items()
        if opts
    }
    for m in sorted(current, key=lambda name: (-need[name], name)):
        part = total_units * need[m] // need_sum if need_sum else 0
        ranked = sorted(options[m], key=lambda o: (o.latency_s, o.units, o.shape.key, o.replicas))
        others = [o for name, o in current.items() if name != m]
        for o in ranked:
            if o.units <= part and _fits([*others, o], problem):
                current[m] = o
                break
    chosen = list(current.values())
    allocs = [_alloc(o.model, o.shape, o.replicas) for o in chosen]
    return _baseline(problem, allocs, "INDEPENDENT", start)


def greedy_choice(
    problem: SearchProblem, options: Mapping[ModelName, Sequence[Option]]
) -> dict[ModelName, Option]:
    """Scepsy-style greedy over the option lists; also the CP-SAT hint."""
    current: dict[ModelName, Option] = {}
    # The baseline runs one shape per model; a model with only mixtures starts on its
    # cheapest one and stays there.
    options = {m: [o for o in opts if o.is_single] or list(opts) for m, opts in options.items()}
    for m, opts in sorted(options.items()):
        if opts:
            # fewest GPUs meeting the demand (replicas before TP), then the faster
            current[m] = min(opts, key=lambda o: (o.units, o.shape.units, o.latency_s, o.shape.key))
    weights = {m: problem.latency_weight(m) for m in current}
    moves = {m: _Moves(opts) for m, opts in options.items()}
    while True:
        best: tuple[float, ModelName, Option] | None = None
        for m, cur in sorted(current.items()):
            for move in moves[m].moves(cur):
                extra = move.units - cur.units
                gain = weights[m] * (cur.latency_s - move.latency_s)
                if gain <= 0:
                    continue
                ratio = gain / max(extra, 1)
                if best is not None and ratio <= best[0]:
                    continue
                trial = {**current, m: move}
                if _fits(trial.values(), problem):
                    best = (ratio, m, move)
        if best is None:
            return current
        current[best[1]] = best[2]


def greedy_plan(problem: SearchProblem, resolution: float = DEFAULT_RESOLUTION) -> Plan:
    """Replicas first until the rate is met, then the best latency gain per GPU."""
    start = time.perf_counter()
    options = {m.model: model_options(problem, m, resolution) for m in problem.models}
    chosen = greedy_choice(problem, options)
    allocs = [_alloc(o.model, o.shape, o.replicas) for o in chosen.values()]
    return _baseline(problem, allocs, "GREEDY", start)


class _Moves:
    """Per model, its single-shape options indexed for the greedy's two moves."""

    def __init__(self, opts: Sequence[Option]):
        self.by_shape: dict[ShapeCandidate, list[Option]] = {}
        self.by_size: dict[tuple[str, int], list[Option]] = {}
        for o in opts:
            if o.is_single:
                self.by_shape.setdefault(o.shape, []).append(o)
                self.by_size.setdefault((o.shape.key.gpu_type, o.shape.units), []).append(o)
        for group in self.by_shape.values():
            group.sort(key=lambda o: o.replicas)

    def moves(self, cur: Option) -> list[Option]:
        """One more replica step on the same shape, or the cheapest option at double TP."""
        if not cur.is_single:
            return []
        same = [o for o in self.by_shape.get(cur.shape, ()) if o.replicas > cur.replicas]
        out = same[:1]
        size = (cur.shape.key.gpu_type, 2 * cur.shape.units)
        wider = [o for o in self.by_size.get(size, ()) if o.latency_s < cur.latency_s]
        if wider:
            out.append(min(wider, key=lambda o: (o.units, o.latency_s)))
        return out


def _fits(chosen: Iterable[Option], problem: SearchProblem) -> bool:
    counts: dict[str, dict[int, int]] = {}
    for o in chosen:
        for p in o.parts:
            per = counts.setdefault(p.shape.key.gpu_type, {})
            # Packing items are pipeline stages (a replica of pp stages is pp items).
            stage = p.shape.key.stage_units
            per[stage] = per.get(stage, 0) + p.replicas * p.shape.key.pp
    return all(fits(c, problem.cluster, g) for g, c in counts.items())


def _alloc(model: ModelName, shape: ShapeCandidate, replicas: int) -> Allocation:
    return _alloc_of(model, shape.key, replicas)


def _alloc_of(model: ModelName, key: ShapeKey, replicas: int) -> Allocation:
    return Allocation(
        model,
        key.gpu_type,
        key.tp,
        key.share_eighths,
        replicas,
        key.pp,
        key.expert_parallel,
        key.dp,
    )


def served_elsewhere(alloc: Allocation, allocs: Sequence[Allocation]) -> bool:
    """Whether dropping one replica of `alloc` leaves its model at least one replica."""
    return alloc.replicas > 1 or any(a.model == alloc.model and a is not alloc for a in allocs)


def trim_to_cluster(problem: SearchProblem, allocs: list[Allocation]) -> list[Allocation]:
    """Drop replicas of an overfull GPU type's allocations until it packs.

    A model keeps at least one replica while another allocation has spares; a model's last
    replica is shrunk to its next smaller shape before it is dropped.
    """
    out = [a for a in allocs if a.replicas > 0]
    for gpu_type in problem.gpu_types():
        while True:
            counts: dict[int, int] = {}
            for a in out:
                if a.gpu_type == gpu_type:  # packing items are pipeline stages
                    size = a.shape.stage_units
                    counts[size] = counts.get(size, 0) + a.replicas * a.pp
            if fits(counts, problem.cluster, gpu_type):
                break
            # Trim where a model keeps a replica (never leave a model unserved while another
            # has spares), largest allocation first.
            victim = max(
                (a for a in out if a.gpu_type == gpu_type),
                key=lambda a: (served_elsewhere(a, out), a.gpus, a.model),
            )
            out.remove(victim)
            if victim.replicas > 1:
                out.append(_alloc_of(victim.model, victim.shape, victim.replicas - 1))
            elif not served_elsewhere(victim, [*out, victim]):
                # Its last replica: shrink it to the next smaller shape that runs the
                # model rather than leave the model unserved.
                smaller = _next_smaller_shape(problem, victim)
                if smaller is not None:
                    out.append(_alloc(victim.model, smaller, 1))
    return out


def _next_smaller_shape(problem: SearchProblem, alloc: Allocation) -> ShapeCandidate | None:
    """The largest valid shape of the same model and GPU type below `alloc`'s size."""
    size = alloc.shape.units
    for m in problem.models:
        if m.model != alloc.model:
            continue
        below = [
            s
            for s in m.shapes
            if s.key.gpu_type == alloc.gpu_type
            and s.units < size
            and shape_is_structural(problem, m, s)
            and shape_fits_memory(s)
        ]
        return max(below, key=lambda s: (s.units, s.key), default=None)
    return None


def _baseline(
    problem: SearchProblem, allocs: Sequence[Allocation], name: str, start: float
) -> Plan:
    allocs = trim_to_cluster(problem, list(allocs))
    latency = mean_latency_s(problem, allocs)
    solver = SolverFacts(name, latency, math.nan, math.nan, time.perf_counter() - start)
    return make_plan(problem, allocs, "min-latency", solver, (f"baseline: {name.lower()}",))
