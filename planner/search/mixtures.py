"""Two-shape mixtures of one model: which (shape a, count a, shape b, count b) are options.

A mixture runs c_a replicas of shape a and c_b >= 1 replicas of a different shape b of
the same model, the load split in proportion to capacity (`predict.py`), so both run at
u = D / (c_a cap_a + c_b cap_b). It is admissible when u stays below the utilisation cap
and inside both latency ladders, it holds at most one share of a GPU (two shares, or a
share with count > 1, are never options: see `choices.replica_budget`), and it packs on
the cluster alone (the threshold conditions of `packing.py` on its own replicas).

The bound (`MixBound`), which keeps the option count linear in the replica budget:
- the smaller count is at most `minority_max` (None: any count);
- along the larger count, for each fixed smaller count (a "row"), counts are thinned to
  a latency net like single shapes: a count is kept only if its latency is below
  1/(1 + resolution) of the last kept count of the same row;
- a mixture is kept only if its latency is below 1/(1 + resolution) of the larger shape
  alone at the same count (which takes a subset of the mixture's GPUs).
Every admissible mixture inside the minority bound that these rules drop has a kept
mixture or single shape with no more GPUs of any kind and at most (1 + resolution) times
its latency (times 1 + the single shapes' net when the larger shape alone was thinned
out). With resolution 0 both rules drop only
dominated mixtures, so `MixBound(None, 0.0)` makes every non-dominated two-shape mixture
an option (the brute-force tests use this).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from planner.defaults import UNITS_PER_GPU
from planner.search.problem import ShapeCandidate
from planner.types.names import GpuType
from planner.types.settings import MixBound


def mixtures(
    budgets: Mapping[ShapeCandidate, int],
    demand_per_s: float,
    utilisation_cap: float,
    caps: Mapping[GpuType, Mapping[int, int]],
    bound: MixBound,
    fewest: bool = False,
    burst_calls: float = 1.0,
) -> Iterator[tuple[tuple[ShapeCandidate, int], tuple[ShapeCandidate, int]]]:
    """Admissible mixtures ((shape a, c_a), (shape b, c_b)) of the admissible shapes,
    a before b by shape key, deterministic order.

    Args:
        budgets: each admissible shape and the most replicas of it the cluster holds.
        caps: capacity C_{g,t} per GPU type and whole-GPU threshold (`packing.py`).
        fewest: per row only the fewest replicas of the larger shape that meet the
            demand, whatever the latency (what feasibility needs).
        burst_calls: the model's fan-out burst, spread over the replicas as the options'
            latencies spread it (`problem.parts_latency_s`), so the net compares the
            latencies the options will have.
    """
    shapes = sorted(budgets, key=lambda s: s.key)
    dims = [(g, t) for g in sorted(caps) for t in sorted(caps[g])]
    limit = np.array([caps[g][t] for g, t in dims], dtype=np.int64)
    for i, a in enumerate(shapes):
        for b in shapes[i + 1 :]:
            if a.units < UNITS_PER_GPU and b.units < UNITS_PER_GPU:
                continue  # two shares of one model: never placed (one share per model)
            found: dict[tuple[int, int], None] = {}
            for major, minor in ((a, b), (b, a)):
                top = budgets[minor] if bound.minority_max is None else bound.minority_max
                for c_minor in range(1, min(budgets[minor], top) + 1):
                    for c_major in _row(
                        major, minor, c_minor, budgets[major], demand_per_s,
                        utilisation_cap, dims, limit, bound.resolution, fewest, burst_calls,
                    ):  # fmt: skip
                        key = (c_major, c_minor) if major is a else (c_minor, c_major)
                        found[key] = None
            for c_a, c_b in sorted(found):
                yield (a, c_a), (b, c_b)


def _resources(shape: ShapeCandidate, dims: Sequence[tuple[GpuType, int]]) -> np.ndarray:
    """Units one replica of `shape` adds to each capacity C_{g,t} (`packing.tp_capacities`):
    a whole replica all its units to every t up to its pipeline stage's size (the item
    placement packs); a share one whole GPU to t = 8 (exact for a mixture alone: it holds
    at most one share)."""
    g, size, stage = shape.key.gpu_type, shape.units, shape.key.stage_units
    taken = max(size, UNITS_PER_GPU)  # a share holds one GPU alone
    reach = max(stage, UNITS_PER_GPU)
    return np.array([taken if g == dg and reach >= t else 0 for dg, t in dims], dtype=np.int64)


def _row(
    major: ShapeCandidate,
    minor: ShapeCandidate,
    c_minor: int,
    budget: int,
    demand: float,
    cap: float,
    dims: Sequence[tuple[GpuType, int]],
    limit: np.ndarray,
    resolution: float,
    fewest: bool,
    burst_calls: float = 1.0,
) -> list[int]:
    """Kept counts of `major` next to `c_minor` replicas of `minor` (the latency net)."""
    counts = np.arange(1, budget + 1, dtype=np.int64)
    used = np.outer(counts, _resources(major, dims)) + c_minor * _resources(minor, dims)
    fits = np.all(used <= limit, axis=1)
    capacity = counts * major.capacity_per_s + c_minor * minor.capacity_per_s
    u = demand / capacity
    top_major = min(cap, major.ladder_utilisation[-1])
    top = min(top_major, minor.ladder_utilisation[-1])
    ok = fits & (u <= top)
    if not ok.any():
        return []
    if fewest:
        return [int(counts[int(np.argmax(ok))])]
    lat_major = _latency(major, u, major.capacity_per_s / capacity, burst_calls)
    lat_minor = _latency(minor, u, minor.capacity_per_s / capacity, burst_calls)
    latency = (
        counts * major.capacity_per_s * lat_major + c_minor * minor.capacity_per_s * lat_minor
    ) / capacity
    # The larger shape alone at the same count uses a subset of the mixture's resources:
    # the mixture is an option only if it is faster by the net factor.
    u_alone = demand / (counts * major.capacity_per_s)
    alone = np.where(
        u_alone <= top_major,
        _latency(major, u_alone, 1.0 / counts, burst_calls),
        np.inf,
    )
    ok &= latency * (1 + resolution) < alone
    if not ok.any():
        return []
    latency = np.where(ok, latency, np.inf)
    index = int(np.argmax(ok))
    kept = [index]
    while True:
        better = np.nonzero(latency[index + 1 :] * (1 + resolution) < latency[index])[0]
        if not better.size:
            return [int(counts[k]) for k in kept]
        index = index + 1 + int(better[0])
        kept.append(index)


def _latency(
    shape: ShapeCandidate, u: np.ndarray, replica_share: np.ndarray | float, burst_calls: float
) -> np.ndarray:
    """`problem.interpolate_latency_s` over arrays (inside the ladder), with the burst
    share of `problem.burst_share`."""
    base: np.ndarray = np.asarray(np.interp(u, shape.ladder_utilisation, shape.ladder_latency_s))
    if burst_calls <= 1.0 or not shape.ladder_burst_s:
        return base
    share = np.clip((burst_calls * np.asarray(replica_share) - 1.0) / (burst_calls - 1.0), 0, 1)
    extra = np.asarray(np.interp(u, shape.ladder_utilisation, shape.ladder_burst_s))
    out: np.ndarray = base + share * extra
    return out
