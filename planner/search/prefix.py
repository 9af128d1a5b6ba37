"""Prefix caching in the search: every option's own hit rate and routing policy.

A model with prefix-reuse evidence (`ModelCandidates.prefix`) has each candidate shape
profiled at a grid of hit rates h (cached prefix = h x mean input tokens); a shape at
any h between grid points interpolates capacity and ladder latencies linearly
(`PrefixCandidates.shape_at`). An option (parts (shape k, c_k), R = sum_k c_k replicas)
gets, for each routing policy r, the hit rate that is consistent with the load it
implies, by fixed-point iteration:

    h_0      = hit(KV_k tokens per replica, R, r)                 (an idle cache)
    u        = D / sum_k c_k cap_k(h)                              (per-replica load)
    n_k      = D cap_k(h) / sum_j c_j cap_j(h) * l_k(h, u)         (running per replica)
    h_{i+1}  = sum_k (c_k cap_k / C) hit(KV_k - n_k O / 2, R, r)

(`hit` is `planner.profiles.prefix_cache.hit_rate`; a running request holds its output
blocks, O/2 on average, besides its prompt blocks, which are part of the reference
stream). The sequence falls monotonically (more hits, faster calls, fewer running, more
cache), so it converges to the largest fixed point. The routing with the lower latency
is chosen (ties: balanced, which needs no affinity). Session-affine routing's load
imbalance between replicas is not modelled. A replica with d data-parallel attention
ranks caches per rank (KV_k above is divided by d): vLLM spreads a pod's requests over
its ranks by load, not by prefix. Balanced routing then spreads calls over all ranks (R
counts ranks); session routing pins a session to a pod, not a rank, and is counted per
pod with the rank's cache, which overstates its hits where a session's calls land on
several ranks of its pod.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from planner.profiles.prefix_cache import ROUTINGS, HitCurves, Routing, hit_rate
from planner.search.problem import (
    ModelCandidates,
    ShapeCandidate,
    interpolate_latency_s,
    parts_latency_s,
)
from planner.types.shapes import ShapeKey

# Hit rates each shape is profiled at: denser where agentic workloads sit.
HIT_GRID: tuple[float, ...] = (
    0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98,
)  # fmt: skip
FIXED_POINT_STEPS = 8
TOLERANCE = 1e-4


@dataclass(frozen=True)
class PrefixCandidates:
    """A model's reuse evidence (tabulated) and its shapes profiled on the hit grid."""

    curves: HitCurves
    hit_grid: tuple[float, ...]
    variants: Mapping[ShapeKey, tuple[ShapeCandidate, ...]]  # aligned with hit_grid

    def shape_at(self, base: ShapeCandidate, hit: float) -> ShapeCandidate:
        """The shape with a cached prefix of `hit` x input tokens (linear between grid
        points; beyond the grid's top the top point)."""
        grid = self.hit_grid
        variants = self.variants.get(base.key)
        if not variants or hit <= grid[0]:
            return base
        if hit >= grid[len(variants) - 1]:
            return variants[-1]
        upper = next(i for i, g in enumerate(grid) if g >= hit)
        lo, hi = variants[upper - 1], variants[upper]
        t = (hit - grid[upper - 1]) / (grid[upper] - grid[upper - 1])
        return _blend(lo, hi, t)


def _blend(a: ShapeCandidate, b: ShapeCandidate, t: float) -> ShapeCandidate:
    if not a.fits_memory or not b.fits_memory:
        return a
    n = min(len(a.ladder_utilisation), len(b.ladder_utilisation))
    return replace(
        a,
        capacity_per_s=a.capacity_per_s + t * (b.capacity_per_s - a.capacity_per_s),
        ladder_utilisation=a.ladder_utilisation[:n],
        ladder_latency_s=tuple(
            x + t * (y - x)
            for x, y in zip(a.ladder_latency_s[:n], b.ladder_latency_s[:n], strict=True)
        ),
        ladder_burst_s=tuple(
            x + t * (y - x) for x, y in zip(a.ladder_burst_s[:n], b.ladder_burst_s[:n], strict=True)
        ),
    )


@dataclass(frozen=True)
class CacheChoice:
    """An option's routing, its predicted hit rate and its shapes at that hit rate."""

    routing: Routing
    hit_rate: float
    shapes: tuple[ShapeCandidate, ...]  # aligned with the option's parts
    latency_s: float  # per-call latency at the model's demand


NO_CACHE: Routing = "balanced"


def cache_choice(
    model: ModelCandidates, parts: Sequence[tuple[ShapeCandidate, int]], demand_per_s: float
) -> CacheChoice:
    """The routing (and its hit rate) giving `parts` the lowest latency at the demand."""
    if model.prefix is None:
        shapes = tuple(s for s, _ in parts)
        return CacheChoice(
            NO_CACHE, 0.0, shapes, parts_latency_s(parts, demand_per_s, model.burst_calls)
        )
    choices = [_fixed_point(model, model.prefix, parts, demand_per_s, r) for r in ROUTINGS]
    return min(choices, key=lambda c: (c.latency_s, ROUTINGS.index(c.routing)))


def _fixed_point(
    model: ModelCandidates,
    prefix: PrefixCandidates,
    parts: Sequence[tuple[ShapeCandidate, int]],
    demand: float,
    routing: Routing,
) -> CacheChoice:
    replicas = sum(c for _, c in parts)
    if routing == "balanced":  # calls spread over every rank of every replica alike
        replicas = sum(c * s.key.dp for s, c in parts)
    weights = _capacity_weights([(s, c) for s, c in parts])
    hit = sum(
        w * hit_rate(prefix.curves, s.kv_cache_tokens / s.key.dp, replicas, routing).hit_rate
        for (s, _), w in zip(parts, weights, strict=True)
    )
    for _ in range(FIXED_POINT_STEPS):
        shapes = [(prefix.shape_at(s, hit), c) for s, c in parts]
        capacity = sum(c * s.capacity_per_s for s, c in shapes)
        if capacity <= 0:
            break
        u = demand / capacity
        new = 0.0
        for (base, _), (s, _), w in zip(parts, shapes, _capacity_weights(shapes), strict=True):
            latency = _ladder_latency(s, u)
            running = demand * s.capacity_per_s / capacity * latency
            cache = (base.kv_cache_tokens - running * model.output_tokens / 2.0) / base.key.dp
            new += w * hit_rate(prefix.curves, cache, replicas, routing).hit_rate
        converged = abs(new - hit) < TOLERANCE
        hit = min(hit, new)  # the sequence falls; min guards against interpolation wiggles
        if converged:
            break
    effective = [(prefix.shape_at(s, hit), c) for s, c in parts]
    return CacheChoice(
        routing,
        hit,
        tuple(s for s, _ in effective),
        parts_latency_s(effective, demand, model.burst_calls),
    )


def _capacity_weights(parts: Sequence[tuple[ShapeCandidate, int]]) -> list[float]:
    total = sum(c * s.capacity_per_s for s, c in parts)
    if total <= 0:
        return [1.0 / len(parts)] * len(parts)
    return [c * s.capacity_per_s / total for s, c in parts]


def _ladder_latency(shape: ShapeCandidate, utilisation: float) -> float:
    """Latency on the ladder, held at its last point beyond it (for the running count)."""
    latency = interpolate_latency_s(shape, utilisation)
    if math.isinf(latency) and shape.ladder_latency_s:
        return shape.ladder_latency_s[-1]
    return latency
