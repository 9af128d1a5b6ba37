"""Per-model options: (shape, replica count) pairs with precomputed latency and size.

An option is admissible when its shape is structurally valid (TP divides the heads, fits
an NVLink domain and a node, TP > 1 takes whole GPUs), the weights plus minimum KV cache
fit the share, and the replicas serve the model's demand below the utilisation cap. A
share of a GPU (fraction < 1) runs one replica (see `replica_budget`).
Counts run from the fewest that meet the demand upward, thinned to a latency net: a
count is kept only if its latency is below 1/(1 + resolution) of the last kept one, and
counts stop once the latency is within `resolution` of the idle latency. Every dropped
count therefore has a kept count with fewer GPUs and at most (1 + resolution) times its
latency, so the optimum over options is within a factor (1 + resolution) of the optimum
over all counts (resolution 0 keeps every count the GPU budget allows). Options
dominated within a GPU type (no smaller, no faster, no fewer GPUs) are dropped: any
plan using one stays feasible when it is swapped for its dominator.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass

from planner.calls import ModelName
from planner.catalog import GpuType
from planner.search.packing import UNITS_PER_GPU, item_threshold, threshold_capacities
from planner.search.predict import option_latency_s
from planner.search.problem import GPU_FRACTIONS, ModelCandidates, SearchProblem, ShapeCandidate

DEFAULT_RESOLUTION = 0.002


@dataclass(frozen=True)
class Option:
    """`replicas` copies of `shape` serving the whole demand of its model."""

    model: ModelName
    shape: ShapeCandidate
    replicas: int
    latency_s: float  # per-call latency at the model's demand

    @property
    def units(self) -> int:
        return self.replicas * self.shape.units

    @property
    def gpu_type(self) -> GpuType:
        return self.shape.key.gpu_type


def shape_fits_memory(shape: ShapeCandidate) -> bool:
    """Weights + minimum KV cache fit the share (from ProfileTable.memory)."""
    return shape.fits_memory and bool(shape.ladder_utilisation) and shape.capacity_per_s > 0


def shape_is_structural(
    problem: SearchProblem, model: ModelCandidates, shape: ShapeCandidate
) -> bool:
    """TP divides the heads, stays in one NVLink domain and node; TP > 1 is whole GPUs."""
    key = shape.key
    if key.tp < 1 or key.tp & (key.tp - 1) or model.attention_heads % key.tp:
        return False
    if key.gpu_fraction not in GPU_FRACTIONS or (key.tp > 1 and key.gpu_fraction != 1.0):
        return False
    return any(
        p.gpu_type == key.gpu_type and key.tp <= min(p.nvlink_domain_size, p.gpus_per_node)
        for p in problem.cluster.pools
    )


def fewest_replicas(shape: ShapeCandidate, demand_per_s: float, utilisation_cap: float) -> int:
    """Fewest replicas keeping each below the cap (and inside the latency ladder)."""
    top = min(utilisation_cap, shape.ladder_utilisation[-1])
    if demand_per_s <= 0:
        return 1
    if top <= 0:
        return 0  # the shape saturates before any useful load
    count = max(1, math.ceil(demand_per_s / (top * shape.capacity_per_s)))
    while demand_per_s / (count * shape.capacity_per_s) > top:
        count += 1  # float round-off in the ceil above
    return count


def model_options(
    problem: SearchProblem,
    model: ModelCandidates,
    resolution: float = DEFAULT_RESOLUTION,
    max_replicas: int | None = None,
) -> tuple[Option, ...]:
    """Admissible, thinned, non-dominated options of one model, deterministic order."""
    demand = problem.demand_per_s(model.model)
    caps = {t: threshold_capacities(problem.cluster, t) for t in problem.gpu_types()}
    out: list[Option] = []
    for shape in model.shapes:
        if not shape_is_structural(problem, model, shape) or not shape_fits_memory(shape):
            continue
        budget = replica_budget(shape, caps.get(shape.key.gpu_type, {}))
        if max_replicas is not None:
            budget = min(budget, max_replicas)
        lowest = fewest_replicas(shape, demand, problem.utilisation_cap)
        if lowest == 0 or lowest > budget:
            continue
        out.extend(_latency_net(model.model, shape, demand, lowest, budget, resolution))
    return _pareto(out)


def replica_budget(shape: ShapeCandidate, caps: Mapping[int, int]) -> int:
    """Most replicas of `shape` the GPU type holds; one for a share of a GPU.

    A model runs at most one fractional replica: placement never puts two shares of one
    model on a GPU (a model's Service routes per model, and one larger share serves
    better than two small ones), and with one share per model the packing stays exact.
    """
    if shape.units < UNITS_PER_GPU:
        return 1 if caps.get(1, 0) >= shape.units else 0
    return caps.get(item_threshold(shape.units), 0) // shape.units


def _latency_net(
    model: ModelName,
    shape: ShapeCandidate,
    demand: float,
    lowest: int,
    budget: int,
    resolution: float,
) -> list[Option]:
    idle = shape.ladder_latency_s[0]
    kept = [Option(model, shape, lowest, option_latency_s(shape, lowest, demand))]
    count = lowest
    while count < budget and kept[-1].latency_s > idle * (1 + resolution) and demand > 0:
        if resolution <= 0:
            count += 1
        else:
            goal = kept[-1].latency_s / (1 + resolution)
            if option_latency_s(shape, budget, demand) > goal:
                break
            # Latency falls with the count: bisect for the first count at or under `goal`.
            lo, hi = count + 1, budget
            while lo < hi:
                mid = (lo + hi) // 2
                if option_latency_s(shape, mid, demand) <= goal:
                    hi = mid
                else:
                    lo = mid + 1
            count = hi
        latency = option_latency_s(shape, count, demand)
        if latency < kept[-1].latency_s:
            kept.append(Option(model, shape, count, latency))
    return kept


def _pareto(options: list[Option]) -> tuple[Option, ...]:
    """Drop options another option of the same GPU type beats on size, units and latency."""
    out: list[Option] = []
    by_type: dict[GpuType, list[Option]] = {}
    for o in options:
        by_type.setdefault(o.gpu_type, []).append(o)
    for gpu_type in sorted(by_type):
        # Smallest replica size first; keep a staircase units -> best latency so far.
        group = sorted(
            by_type[gpu_type], key=lambda o: (o.shape.units, o.units, o.latency_s, o.shape.key)
        )
        stair_units: list[int] = []
        stair_lat: list[float] = []
        for o in group:
            i = bisect.bisect_right(stair_units, o.units)
            if i and stair_lat[i - 1] <= o.latency_s:
                continue  # dominated: something no larger, with no more units, no slower
            out.append(o)
            # insert and restore the staircase (units increasing, latency decreasing)
            j = bisect.bisect_left(stair_units, o.units)
            stair_units.insert(j, o.units)
            stair_lat.insert(j, o.latency_s)
            k = j + 1
            while k < len(stair_units) and stair_lat[k] >= o.latency_s:
                del stair_units[k]
                del stair_lat[k]
    return tuple(sorted(out, key=lambda o: (o.shape.key, o.replicas)))
