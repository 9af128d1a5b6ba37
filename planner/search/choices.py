"""Per-model options: one or two shapes with replica counts, latency precomputed.

An option o of model m is a tuple of parts (shape k, replica count c_k): one part (a
single shape), or two parts of different shapes (a mixture, built in `mixtures.py`).
The load is split in proportion to capacity (as in `predict.py`), so every replica runs
at u = D_m / sum_k c_k cap_k and the option's per-call latency is
l_o = sum_k (c_k cap_k / C) l_k(u). An option is admissible when every shape is
structurally valid (TP divides the heads, fits an NVLink domain and a node, TP > 1 takes
whole GPUs), the weights plus minimum KV cache fit every share, u stays below the
utilisation cap and inside every shape's latency ladder, the option alone packs on the
cluster, and it holds at most one share of a GPU (fraction < 1; see `replica_budget`).

Single shapes: counts run from the fewest that meet the demand upward, thinned to a
latency net: a count is kept only if its latency is below 1/(1 + resolution) of the
last kept one, and counts stop once the latency is within `resolution` of the idle
latency. Every dropped count has a kept count with fewer GPUs and at most
(1 + resolution) times its latency, so the optimum over options is within a factor
(1 + resolution) of the optimum over all counts (resolution 0 keeps every count).

With prefix caching (a model with `prefix` evidence) an option's shapes are taken at its
own hit rate and routing (`prefix.cache_choice`: fewer, larger replicas keep more of a
session's and the shared prefixes in one cache; more, smaller ones split them). Latency
then need not fall with the count, so counts are scanned upward from the fewest that
could meet the demand at the best hit rate, keeping a count when its latency beats the
last kept one by the net, until the latency is within the net of the idle latency at the
top hit rate or NET_PATIENCE counts in a row were not kept. Mixtures are evaluated at
their own hit rate too.

Finally options dominated in resources and latency are dropped (`prune_dominated`): o'
dominates o when, for every GPU type g and size threshold t, o' takes no more units of
replicas of size >= t on g (the quantities the packing constraints count), and
l_o' <= l_o. Any plan using o stays feasible, and no worse in any objective, with o'.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from planner.defaults import SHARE_EIGHTHS, UNITS_PER_GPU
from planner.search.mixtures import mixtures
from planner.search.packing import item_threshold, threshold_capacities
from planner.search.predict import mixture_latency_s, option_latency_s
from planner.search.prefix import cache_choice
from planner.search.problem import ModelCandidates, SearchProblem, ShapeCandidate
from planner.types.names import GpuType, ModelName
from planner.types.settings import DEFAULT_RESOLUTION, MixBound
from planner.types.shapes import ShapeKey

NET_PATIENCE = 8  # counts in a row without a kept option end a prefix-aware scan


@dataclass(frozen=True)
class Part:
    """`replicas` copies of one shape inside an option."""

    shape: ShapeCandidate
    replicas: int

    @property
    def units(self) -> int:
        return self.replicas * self.shape.units


@dataclass(frozen=True)
class Option:
    """One or two parts (shapes with replica counts) serving the whole demand of a model."""

    model: ModelName
    parts: tuple[Part, ...]  # sorted by shape key; two parts have different shapes
    latency_s: float  # per-call latency at the model's demand

    @property
    def units(self) -> int:
        return sum(p.units for p in self.parts)

    @property
    def is_single(self) -> bool:
        return len(self.parts) == 1

    @property
    def shape(self) -> ShapeCandidate:
        """The shape of a single-shape option (the first part of a mixture)."""
        return self.parts[0].shape

    @property
    def replicas(self) -> int:
        return sum(p.replicas for p in self.parts)

    @property
    def gpu_types(self) -> tuple[GpuType, ...]:
        return tuple(sorted({p.shape.key.gpu_type for p in self.parts}))

    @property
    def capacity_per_s(self) -> float:
        return sum(p.replicas * p.shape.capacity_per_s for p in self.parts)

    @property
    def top_utilisation(self) -> float:
        """Highest load per replica inside every part's latency ladder."""
        return min(p.shape.ladder_utilisation[-1] for p in self.parts)

    def units_at_least(self, gpu_type: GpuType, threshold: int) -> int:
        """Units of replicas on `gpu_type` whose packing threshold is >= `threshold`.

        The packed item is a pipeline stage: a replica of `pp` stages adds `pp` items of
        its stage size (all of its units) at the stage's threshold."""
        return sum(
            p.units
            for p in self.parts
            if p.shape.key.gpu_type == gpu_type
            and item_threshold(p.shape.key.stage_units) >= threshold
        )


def single(model: ModelName, shape: ShapeCandidate, replicas: int, latency_s: float) -> Option:
    return Option(model, (Part(shape, replicas),), latency_s)


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
    if key.share_eighths not in SHARE_EIGHTHS or (
        key.tp > 1 and key.share_eighths != UNITS_PER_GPU
    ):
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
    mix: MixBound | None = None,
) -> tuple[Option, ...]:
    """Admissible, thinned, non-dominated options of one model, deterministic order.

    Args:
        resolution: latency net of single-shape counts (0 keeps every count).
        max_replicas: extra cap on the count of any one shape.
        mix: which two-shape mixtures are options too (None: single shapes only).
    """
    demand = problem.demand_per_s(model.model)
    caps = {t: threshold_capacities(problem.cluster, t) for t in problem.gpu_types()}
    out: list[Option] = []
    budgets: dict[ShapeCandidate, int] = {}
    for shape in model.shapes:
        if not shape_is_structural(problem, model, shape) or not shape_fits_memory(shape):
            continue
        budget = replica_budget(shape, caps.get(shape.key.gpu_type, {}))
        if max_replicas is not None:
            budget = min(budget, max_replicas)
        if budget <= 0:
            continue
        budgets[shape] = budget
        if model.prefix is not None:
            out.extend(_cached_net(problem, model, shape, demand, budget, resolution))
            continue
        lowest = fewest_replicas(shape, demand, problem.utilisation_cap)
        if lowest == 0 or lowest > budget:
            continue
        out.extend(_latency_net(model.model, shape, demand, lowest, budget, resolution))
    if mix is not None and demand > 0:
        for parts in mixtures(budgets, demand, problem.utilisation_cap, caps, mix):
            if model.prefix is None:
                latency = mixture_latency_s(parts, demand)
                out.append(Option(model.model, tuple(Part(s, c) for s, c in parts), latency))
                continue
            option = cached_option(problem, model, parts, demand)
            if option is not None:
                out.append(option)
    return prune_dominated(out, caps)


def fewest_cached(
    problem: SearchProblem,
    model: ModelCandidates,
    shape: ShapeCandidate,
    demand: float,
    budget: int,
) -> Option | None:
    """The fewest replicas of `shape` meeting the demand at their own hit rate."""
    net = _cached_net(problem, model, shape, demand, budget, DEFAULT_RESOLUTION)
    return net[0] if net else None


def cached_option(
    problem: SearchProblem,
    model: ModelCandidates,
    parts: Sequence[tuple[ShapeCandidate, int]],
    demand: float,
) -> Option | None:
    """The option at its own hit rate and routing; None when it is not admissible."""
    choice = cache_choice(model, parts, demand)
    shaped = tuple(Part(s, c) for s, (_, c) in zip(choice.shapes, parts, strict=True))
    option = Option(model.model, shaped, choice.latency_s)
    capacity = option.capacity_per_s
    if capacity <= 0 or not math.isfinite(choice.latency_s):
        return None
    if demand / capacity > min(problem.utilisation_cap, option.top_utilisation):
        return None
    return option


def _cached_net(
    problem: SearchProblem,
    model: ModelCandidates,
    shape: ShapeCandidate,
    demand: float,
    budget: int,
    resolution: float,
) -> list[Option]:
    """Counts of one shape at their own hit rates, thinned to a latency net."""
    assert model.prefix is not None  # the caller checked
    best = model.prefix.variants.get(shape.key, (shape,))[-1]
    lowest = fewest_replicas(best, demand, problem.utilisation_cap)
    if lowest == 0 or lowest > budget:
        return []
    idle = best.ladder_latency_s[0] if best.ladder_latency_s else 0.0
    kept: list[Option] = []
    misses = 0
    for count in range(lowest, budget + 1):
        option = cached_option(problem, model, [(shape, count)], demand)
        if option is not None and (
            not kept or option.latency_s < kept[-1].latency_s / (1 + resolution)
        ):
            kept.append(option)
            misses = 0
        elif kept:
            misses += 1
        if kept and (kept[-1].latency_s <= idle * (1 + resolution) or misses >= NET_PATIENCE):
            break
        if demand <= 0 and kept:
            break
    return kept


def replica_budget(shape: ShapeCandidate, caps: Mapping[int, int]) -> int:
    """Most replicas of `shape` the GPU type holds; one for a share of a GPU.

    A model runs at most one fractional replica: placement never puts two shares of one
    model on a GPU (a model's Service routes per model, and one larger share serves
    better than two small ones), and with one share per model the packing stays exact.
    """
    if shape.units < UNITS_PER_GPU:
        return 1 if caps.get(1, 0) >= shape.units else 0
    return caps.get(item_threshold(shape.key.stage_units), 0) // shape.units


def _latency_net(
    model: ModelName,
    shape: ShapeCandidate,
    demand: float,
    lowest: int,
    budget: int,
    resolution: float,
) -> list[Option]:
    idle = shape.ladder_latency_s[0]
    kept = [single(model, shape, lowest, option_latency_s(shape, lowest, demand))]
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
            kept.append(single(model, shape, count, latency))
    return kept


def prune_dominated(
    options: Sequence[Option], caps: Mapping[GpuType, Mapping[int, int]]
) -> tuple[Option, ...]:
    """Drop options that another option beats on every packing resource and on latency.

    Options are scanned fastest first (then fewest units); an option is dropped when an
    earlier one takes no more units of size >= t on every GPU type g, for every t. By
    transitivity it suffices to compare with options already kept.
    """
    dims = [(g, t) for g in sorted(caps) for t in sorted(caps[g])]
    order = sorted(options, key=_order_key)
    kept: list[Option] = []
    table = np.zeros((len(order), len(dims)), dtype=np.int64)
    for o in order:
        row = np.array([o.units_at_least(g, t) for g, t in dims], dtype=np.int64)
        n = len(kept)
        if n and bool(np.any(np.all(table[:n] <= row, axis=1))):
            continue
        table[n] = row
        kept.append(o)
    return tuple(sorted(kept, key=_sort_key))


def _order_key(o: Option) -> tuple[float, int, tuple[tuple[ShapeKey, int], ...]]:
    return (o.latency_s, o.units, _sort_key(o))


def _sort_key(o: Option) -> tuple[tuple[ShapeKey, int], ...]:
    return tuple((p.shape.key, p.replicas) for p in o.parts)
