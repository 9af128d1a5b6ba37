"""The APL predictor: throughput and latency of any allocation, without a solver.

For model m with demand D_m (calls/s) on allocations a = (shape, c_a replicas) of
saturation capacity cap_a per replica, the load is split in proportion to capacity, so
every replica runs at the same utilisation u_m = D_m / C_m with C_m = sum_a c_a cap_a,
and the per-call latency is the capacity-weighted mean of the shapes' latencies:

    L_m = sum_a (c_a cap_a / C_m) * l_a(u_m)

where l_a(u) interpolates the shape's latency ladder linearly in u (infinite past its
last point), plus the share of the model's fan-out burst (`burst_calls` b) that lands on
the replica: b c_a cap_a / C - 1 of the b - 1 calls its burst ladder assumes (see
`queueing`: the ladders are the simulator's server under Poisson bursts, solved).
Per workflow type w (DESIGN.md, after Scepsy):

    L_w = sum_m L_m * r_wm * n_wm / p_wm + non_llm_time_w

with r_wm the type's mean call work over the model's (`ModelUse.work_ratio`: a shared
model's long-prompt type waits longer per call than its short-prompt type)
    throughput_w = R_w * min_{m in w} (cap_u * C_m / D_m)

i.e. the highest rate of w, all types scaled together, that keeps every model under the
utilisation cap cap_u. The mean workflow latency of a plan is sum_w R_w L_w / sum_w R_w.

With prefix caching, an allocation's shape is taken at its predicted hit rate (capacity
and latency with the cached prefix skipped in prefill); `assign_cache` sets every
model's routing and hit rate from its allocations (`planner.search.prefix`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from planner.search.prefix import cache_choice
from planner.search.problem import (
    SearchProblem,
    ShapeCandidate,
    burst_share,
    interpolate_latency_s,
    parts_latency_s,
)
from planner.types.names import GpuType, ModelName
from planner.types.plan import (
    Allocation,
    ModelPrediction,
    Objective,
    Plan,
    SolverFacts,
    WorkflowPrediction,
)


def option_latency_s(
    shape: ShapeCandidate, replicas: int, demand_per_s: float, burst_calls: float = 1.0
) -> float:
    """Per-call latency of `replicas` copies of `shape` sharing `demand_per_s`, fan-out
    bursts of `burst_calls` calls spread over them."""
    if replicas <= 0 or shape.capacity_per_s <= 0:
        return math.inf if demand_per_s > 0 else 0.0
    return interpolate_latency_s(
        shape,
        demand_per_s / (replicas * shape.capacity_per_s),
        burst_share(burst_calls, 1.0 / replicas),
    )


def mixture_latency_s(
    parts: Sequence[tuple[ShapeCandidate, int]], demand_per_s: float, burst_calls: float = 1.0
) -> float:
    """Per-call latency of replicas of several shapes sharing `demand_per_s` in proportion
    to their capacity (every replica at the same utilisation), as `model_latency_s`."""
    return parts_latency_s(parts, demand_per_s, burst_calls)


def find_shape(problem: SearchProblem, alloc: Allocation) -> ShapeCandidate | None:
    """The problem's candidate matching an allocation's shape, if any."""
    try:
        cands = problem.model(alloc.model)
    except KeyError:
        return None
    key = alloc.shape
    base = next((s for s in cands.shapes if s.key == key), None)
    if base is None or cands.prefix is None or alloc.prefix_hit_rate <= 0:
        return base
    return cands.prefix.shape_at(base, alloc.prefix_hit_rate)


def assign_cache(problem: SearchProblem, allocations: Iterable[Allocation]) -> list[Allocation]:
    """The allocations with each model's routing and predicted hit rate (the option's
    fixed point, `planner.search.prefix.cache_choice`) and each shape's KV capacity."""
    out: list[Allocation] = []
    for model, allocs in sorted(_by_model(problem, allocations).items()):
        try:
            cands = problem.model(model)
        except KeyError:
            out.extend(allocs)
            continue
        bases = [next((s for s in cands.shapes if s.key == a.shape), None) for a in allocs]
        parts = [(s, a.replicas) for s, a in zip(bases, allocs, strict=True) if s is not None]
        choice = cache_choice(cands, parts, problem.demand_per_s(model)) if parts else None
        for a, s in zip(allocs, bases, strict=True):
            out.append(
                replace(
                    a,
                    routing=choice.routing if choice else "balanced",
                    prefix_hit_rate=choice.hit_rate if choice else 0.0,
                    kv_cache_tokens=s.kv_cache_tokens if s is not None else 0,
                )
            )
    return out


def model_capacity_per_s(problem: SearchProblem, allocs: Iterable[Allocation]) -> float:
    total = 0.0
    for a in allocs:
        shape = find_shape(problem, a)
        if shape is not None:
            total += a.replicas * shape.capacity_per_s
    return total


def model_latency_s(
    problem: SearchProblem, model: ModelName, allocs: Sequence[Allocation]
) -> float:
    """L_m: mean per-call latency of the model at its demand on these allocations."""
    demand = problem.demand_per_s(model)
    parts = [(s, a.replicas) for a in allocs if (s := find_shape(problem, a)) is not None]
    if sum(c * s.capacity_per_s for s, c in parts if c > 0) <= 0:
        return math.inf if demand > 0 else 0.0
    try:
        burst = problem.model(model).burst_calls
    except KeyError:
        burst = 1.0
    return parts_latency_s(parts, demand, burst)


def _by_model(
    problem: SearchProblem, allocations: Iterable[Allocation]
) -> dict[ModelName, list[Allocation]]:
    out: dict[ModelName, list[Allocation]] = {m.model: [] for m in problem.models}
    for a in allocations:
        out.setdefault(a.model, []).append(a)
    return out


def predict_models(
    problem: SearchProblem, allocations: Iterable[Allocation]
) -> tuple[ModelPrediction, ...]:
    """Per model: demand, capacity, utilisation, per-call latency, hit rate and routing
    (every model's cache choice follows from its allocations: `assign_cache`)."""
    allocations = assign_cache(problem, allocations)
    out = []
    for model, allocs in sorted(_by_model(problem, allocations).items()):
        demand = problem.demand_per_s(model)
        capacity = model_capacity_per_s(problem, allocs)
        util = demand / capacity if capacity > 0 else (math.inf if demand > 0 else 0.0)
        hit = allocs[0].prefix_hit_rate if allocs else 0.0
        routing = allocs[0].routing if allocs else "balanced"
        latency = model_latency_s(problem, model, allocs)
        out.append(ModelPrediction(model, demand, capacity, util, latency, hit, routing))
    return tuple(out)


def predict_workflows(
    problem: SearchProblem, models: Sequence[ModelPrediction]
) -> tuple[WorkflowPrediction, ...]:
    """Per workflow type: sustainable rate (under the utilisation cap) and mean latency."""
    by_name = {m.model: m for m in models}
    out = []
    for w in problem.workflows:
        latency = w.non_llm_time_s
        scale = math.inf
        for u in w.uses:
            m = by_name[u.model]
            latency += m.call_latency_s * u.latency_weight
            if m.demand_per_s > 0:
                scale = min(scale, problem.utilisation_cap * m.capacity_per_s / m.demand_per_s)
        out.append(
            WorkflowPrediction(
                w.workflow_type,
                w.rate_per_s,
                w.rate_per_s * scale,
                latency,
                w.slo_s,
                w.p95_over_mean * latency,
            )
        )
    return tuple(out)


def mean_workflow_latency_s(problem: SearchProblem, flows: Sequence[WorkflowPrediction]) -> float:
    """sum_w R_w L_w / sum_w R_w (plain mean when every rate is zero)."""
    total = sum(w.rate_per_s for w in problem.workflows)
    if total <= 0:
        return sum(f.mean_latency_s for f in flows) / max(1, len(flows))
    return (
        sum(w.rate_per_s * f.mean_latency_s for w, f in zip(problem.workflows, flows, strict=True))
        / total
    )


def throughput_scale(problem: SearchProblem, models: Sequence[ModelPrediction]) -> float:
    """Highest common factor on all target rates keeping every model under the cap."""
    scales = [
        problem.utilisation_cap * m.capacity_per_s / m.demand_per_s
        for m in models
        if m.demand_per_s > 0
    ]
    return min(scales) if scales else math.inf


def make_plan(
    problem: SearchProblem,
    allocations: Iterable[Allocation],
    objective: Objective,
    solver: SolverFacts,
    notes: Sequence[str] = (),
) -> Plan:
    """A Plan with the APL predictions of these allocations."""
    allocs = tuple(sorted(assign_cache(problem, (a for a in allocations if a.replicas > 0))))
    models = predict_models(problem, allocs)
    flows = predict_workflows(problem, models)
    loaded = [m for m in models if m.demand_per_s > 0]
    bottleneck = max(loaded, key=lambda m: (m.utilisation, m.model)).model if loaded else None
    return Plan(
        objective=objective,
        allocations=allocs,
        workflows=flows,
        models=models,
        solver=solver,
        gpus_total=problem.cluster.gpus,
        bottleneck_model=bottleneck,
        notes=tuple(notes),
        cost_per_hour=_per_gpu_sum(allocs, problem.cluster.prices()),
        power_kw=_per_gpu_sum(allocs, problem.cluster.power_w(), 1e-3),
    )


def _per_gpu_sum(
    allocs: Sequence[Allocation], per_gpu: Mapping[GpuType, float] | None, factor: float = 1.0
) -> float | None:
    """sum over allocations of GPUs x the per-GPU figure of their type (None: unknown)."""
    if per_gpu is None:
        return None
    return math.fsum(a.gpus * per_gpu[a.gpu_type] for a in allocs) * factor
