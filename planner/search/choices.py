"""Per-model options: one or two shapes with replica counts, latency precomputed.

An option o of model m is a tuple of parts (shape k, replica count c_k): one part (a
single shape), or two parts of different shapes (a mixture, built in `mixtures.py`).
The load is split in proportion to capacity (as in `predict.py`), so every replica runs
at u = D_m / sum_k c_k cap_k and the option's per-call latency is
l_o = sum_k (c_k cap_k / C) l_k(u). An option is admissible when every shape is
structurally valid (TP divides the heads, fits an NVLink domain and a node, TP > 1 takes
whole GPUs), the weights plus minimum KV cache fit every share, u stays below the
utilisation cap and inside every shape's latency ladder, the option alone packs on the
cluster, and it holds at most one share of a GPU (k/8 with k < 8; see `replica_budget`).
Which shapes are admissible and how many replicas of each the cluster holds does not
depend on the rates: `admissible` computes it once per solve, and every option list of
the solve (max-throughput's probes at many scales included) reuses it.

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
dominates o when, on every GPU type g, o' takes no more units of whole replicas of
size >= t for every threshold t, and for every size s no more shares of size >= s
(a smaller share packs wherever a larger one did; see `packing.py`), and
l_o' <= l_o. Any plan using o stays feasible, and no worse in any objective, with o'.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from planner.defaults import SHARE_EIGHTHS, UNITS_PER_GPU
from planner.search.mixtures import mixtures
from planner.search.packing import SHARE_SIZES, gpus_of_type, tp_capacities
from planner.search.predict import mixture_latency_s, option_latency_s
from planner.search.prefix import cache_choice
from planner.search.problem import ModelCandidates, SearchProblem, ShapeCandidate
from planner.types.names import GpuType, ModelName
from planner.types.settings import DEFAULT_RESOLUTION, MixBound
from planner.types.shapes import ShapeKey

#: A packing quantity of one GPU type: (g, t) with t >= 8 is the units of whole
#: replicas of >= t units on g; (g, s) with s < 8 the number of shares of s eighths.
Resource = tuple[GpuType, int]
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
    """One or two parts (shapes with replica counts) serving the whole demand of a model.

    Its figures (units, packing usage) are computed once, on first use: the CP-SAT model
    and the dominance scan read them for every option of every solve.
    """

    model: ModelName
    parts: tuple[Part, ...]  # sorted by shape key; two parts have different shapes
    latency_s: float  # per-call latency at the model's demand

    @cached_property
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

    @cached_property
    def capacity_per_s(self) -> float:
        return sum(p.replicas * p.shape.capacity_per_s for p in self.parts)

    @property
    def top_utilisation(self) -> float:
        """Highest load per replica inside every part's latency ladder."""
        return min(p.shape.ladder_utilisation[-1] for p in self.parts)

    @cached_property
    def usage(self) -> Mapping[Resource, int]:
        """The packing quantities the option takes (see `Resource`), non-zero only."""
        out: dict[Resource, int] = {}
        for p in self.parts:
            g, size = p.shape.key.gpu_type, p.shape.units
            if size < UNITS_PER_GPU:
                out[(g, size)] = out.get((g, size), 0) + p.replicas
                continue
            t = UNITS_PER_GPU  # the packed item is a pipeline stage (a TP group)
            while t <= p.shape.key.stage_units:
                out[(g, t)] = out.get((g, t), 0) + p.units
                t *= 2
        return out

    def whole_units_at_least(self, gpu_type: GpuType, threshold: int) -> int:
        """Units of whole replicas of >= `threshold` units on `gpu_type`."""
        return self.usage.get((gpu_type, threshold), 0)

    def shares(self, gpu_type: GpuType, eighths: int) -> int:
        """Shares of `eighths` of a GPU on `gpu_type`."""
        return self.usage.get((gpu_type, eighths), 0)

    def cost_per_hour(self, prices: Mapping[GpuType, float]) -> float:
        return sum(p.units / UNITS_PER_GPU * prices[p.shape.key.gpu_type] for p in self.parts)


def single(model: ModelName, shape: ShapeCandidate, replicas: int, latency_s: float) -> Option:
    return Option(model, (Part(shape, replicas),), latency_s)


def shape_fits_memory(shape: ShapeCandidate) -> bool:
    """Weights + minimum KV cache fit the share (from ProfileTable.memory)."""
    return shape.fits_memory and bool(shape.ladder_utilisation) and shape.capacity_per_s > 0


def shape_is_structural(
    problem: SearchProblem, model: ModelCandidates, shape: ShapeCandidate
) -> bool:
    """TP divides the heads, stays in one NVLink domain and node; TP > 1 is whole GPUs;
    data-parallel attention only with EP, in one node."""
    key = shape.key
    if key.tp < 1 or key.tp & (key.tp - 1) or model.attention_heads % key.tp:
        return False
    if key.share_eighths not in SHARE_EIGHTHS or (
        key.tp > 1 and key.share_eighths != UNITS_PER_GPU
    ):
        return False
    if key.dp > 1 and (not key.expert_parallel or key.pp > 1):
        return False
    # The tp x dp GPUs of a data-parallel replica share one node (one vLLM server).
    return any(
        p.gpu_type == key.gpu_type
        and key.group_gpus <= p.tp_limit
        and (key.dp == 1 or key.group_gpus <= p.gpus_per_node)
        for p in problem.cluster.pools
    )


@dataclass(frozen=True)
class Admissible:
    """What does not depend on the rates, computed once per solve: per GPU type its
    capacities C_t (`packing.tp_capacities`) and GPUs; per model its admissible shapes
    (structural, fitting memory) with the most replicas of each the cluster holds."""

    caps: Mapping[GpuType, Mapping[int, int]]
    gpus: Mapping[GpuType, int]
    budgets: Mapping[ModelName, Mapping[ShapeCandidate, int]]


def admissible(problem: SearchProblem) -> Admissible:
    caps = {g: tp_capacities(problem.cluster, g) for g in problem.gpu_types()}
    gpus = {g: gpus_of_type(problem.cluster, g) for g in problem.gpu_types()}
    budgets: dict[ModelName, dict[ShapeCandidate, int]] = {}
    for m in problem.models:
        budgets[m.model] = {}
        for shape in m.shapes:
            if not shape_is_structural(problem, m, shape) or not shape_fits_memory(shape):
                continue
            budget = replica_budget(shape, caps.get(shape.key.gpu_type, {}))
            if budget > 0:
                budgets[m.model][shape] = budget
    return Admissible(caps, gpus, budgets)


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
    known: Admissible | None = None,
) -> tuple[Option, ...]:
    """Admissible, thinned, non-dominated options of one model, deterministic order.

    Args:
        resolution: latency net of single-shape counts (0 keeps every count).
        max_replicas: extra cap on the count of any one shape.
        mix: which two-shape mixtures are options too (None: single shapes only).
        known: `admissible(problem)`, when the caller has it already.
    """
    known = known or admissible(problem)
    demand = problem.demand_per_s(model.model)
    out: list[Option] = []
    budgets: dict[ShapeCandidate, int] = {}
    for shape, budget in known.budgets[model.model].items():
        if max_replicas is not None:
            budget = min(budget, max_replicas)
        budgets[shape] = budget
        if model.prefix is not None:
            out.extend(_cached_net(problem, model, shape, demand, budget, resolution))
            continue
        lowest = fewest_replicas(shape, demand, problem.utilisation_cap)
        if lowest == 0 or lowest > budget:
            continue
        out.extend(
            _latency_net(model.model, shape, demand, lowest, budget, resolution, model.burst_calls)
        )
    if mix is not None and demand > 0:
        for parts in mixtures(
            budgets, demand, problem.utilisation_cap, known.caps, mix, burst_calls=model.burst_calls
        ):
            if model.prefix is None:
                latency = mixture_latency_s(parts, demand, model.burst_calls)
                out.append(Option(model.model, tuple(Part(s, c) for s, c in parts), latency))
                continue
            option = cached_option(problem, model, parts, demand)
            if option is not None:
                out.append(option)
    return prune_dominated(out, known.caps)


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
    better than two small ones).
    """
    if shape.units < UNITS_PER_GPU:
        return 1 if caps.get(UNITS_PER_GPU, 0) >= UNITS_PER_GPU else 0
    # the packed item is a pipeline stage: C at the stage's threshold over all its units
    return caps.get(max(shape.key.stage_units, UNITS_PER_GPU), 0) // shape.units


def _latency_net(
    model: ModelName,
    shape: ShapeCandidate,
    demand: float,
    lowest: int,
    budget: int,
    resolution: float,
    burst_calls: float = 1.0,
) -> list[Option]:
    def latency(count: int) -> float:
        return option_latency_s(shape, count, demand, burst_calls)

    idle = shape.ladder_latency_s[0]
    kept = [single(model, shape, lowest, latency(lowest))]
    count = lowest
    while count < budget and kept[-1].latency_s > idle * (1 + resolution) and demand > 0:
        if resolution <= 0:
            count += 1
        else:
            goal = kept[-1].latency_s / (1 + resolution)
            if latency(budget) > goal:
                break
            # Latency falls with the count: bisect for the first count at or under `goal`.
            lo, hi = count + 1, budget
            while lo < hi:
                mid = (lo + hi) // 2
                if latency(mid) <= goal:
                    hi = mid
                else:
                    lo = mid + 1
            count = hi
        found = latency(count)
        if found < kept[-1].latency_s:
            kept.append(single(model, shape, count, found))
    return kept


def dominance_row(o: Option, index: Mapping[Resource, int], size: int) -> np.ndarray:
    """The option's usage on the dims of `index` (`dominance_dims`); share dims (g, s < 8)
    count shares of >= s eighths."""
    row = np.zeros(size, dtype=np.int64)
    for (g, k), v in o.usage.items():
        if k >= UNITS_PER_GPU:
            row[index[(g, k)]] += v
        else:
            for s in range(1, k + 1):  # a share of k eighths is a share of >= s for s <= k
                row[index[(g, s)]] += v
    return row


def dominance_dims(caps: Mapping[GpuType, Mapping[int, int]]) -> list[Resource]:
    return [(g, k) for g in sorted(caps) for k in (*sorted(caps[g]), *SHARE_SIZES)]


def prune_dominated(
    options: Sequence[Option], caps: Mapping[GpuType, Mapping[int, int]]
) -> tuple[Option, ...]:
    """Drop options that another option beats on every packing resource and on latency.

    Options are scanned fastest first (then fewest units); an option is dropped when an
    earlier one takes no more of every packing quantity (`dominance_row`). By
    transitivity it suffices to compare with options already kept.
    """
    dims = dominance_dims(caps)
    index = {d: i for i, d in enumerate(dims)}
    order = sorted(options, key=_order_key)
    kept: list[Option] = []
    table = np.zeros((len(order), len(dims)), dtype=np.int64)
    for o in order:
        row = dominance_row(o, index, len(dims))
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
