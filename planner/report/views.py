"""What the report shows, computed from the stages' results (pure; no plotting here).

- `profile_views`: per model of the plan, the profile's throughput-latency curve of each
  shape (TP degree and GPU share) on the plan's GPU type that holds the model, at the
  model's mean token shape in the traces, and the point each used shape runs at.
- `allocation_costs`: each allocation's $/hour, $ per 1,000 workflows and power.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from planner.defaults import SHARE_EIGHTHS, TP_DEGREES, UNITS_PER_GPU
from planner.errors import InputError, PlannerError
from planner.profiles import ProfileTable
from planner.types.apl import AggregatePipeline
from planner.types.names import GpuType, ModelName
from planner.types.plan import Plan
from planner.types.shapes import ShapeKey

# Load levels each profile curve is drawn at, as fractions of the shape's capacity.
LOAD_FRACTIONS = tuple(float(x) for x in np.linspace(0.05, 0.95, 19))


@dataclass(frozen=True)
class ProfileSeries:
    """One shape's curve: (requests/s per replica, mean latency s) per load level.

    Attributes:
        used_point: the plan's load per replica on this shape and its latency (None when
            the plan does not use the shape).
        sources: which profile sources answered (measured, imported, kernels, roofline).
    """

    tp: int
    share_eighths: int
    capacity_per_s: float
    points: tuple[tuple[float, float], ...]
    used_point: tuple[float, float] | None
    sources: tuple[str, ...] = ()  # the profile sources that answered, sorted

    @property
    def label(self) -> str:
        share = "" if self.share_eighths == UNITS_PER_GPU else f" {self.share_eighths}/8 GPU"
        return f"TP{self.tp}{share}"


@dataclass(frozen=True)
class ProfileView:
    model: ModelName
    gpu_type: GpuType
    input_tokens: float
    output_tokens: float
    series: tuple[ProfileSeries, ...]


def mean_token_shape(
    apl: AggregatePipeline, model: ModelName, canonical: Callable[[str], str] = str
) -> tuple[float, float]:
    """Call-weighted mean input and output tokens of `model` over all workflow types
    (`canonical` maps the traces' model names to the plan's)."""
    weight = inputs = outputs = 0.0
    for w in apl.workflows:
        for m in w.models:
            if canonical(m.model) != model:
                continue
            calls = m.calls_per_workflow * w.workflow_count
            weight += calls
            inputs += calls * m.input_tokens.mean
            outputs += calls * m.output_tokens.mean
    if weight <= 0:
        raise InputError(
            f"the plan serves {model}, which no workflow of the traces calls; report on the "
            "traces the plan was made from"
        )
    return inputs / weight, outputs / weight


def profile_views(
    plan: Plan,
    apl: AggregatePipeline,
    profiles: ProfileTable,
    max_tp: int,
    canonical: Callable[[str], str] = str,
) -> tuple[ProfileView, ...]:
    """Per (model, GPU type) of the plan, sorted: every shape up to `max_tp` that fits.

    The plan's load on a model splits over its replicas in proportion to their capacity
    (the router's least-load routing), so each used shape is marked at
    demand x its capacity share / its replicas.
    """
    demand = {m.model: m.demand_per_s for m in plan.models}
    out = []
    for model, gpu_type in sorted({(a.model, a.gpu_type) for a in plan.allocations}):
        inp, outp = mean_token_shape(apl, model, canonical)
        used = [a for a in plan.allocations if a.model == model and a.gpu_type == gpu_type]
        capacity = {a.shape: _capacity(profiles, a.shape, inp, outp) * a.replicas for a in used}
        total_capacity = sum(capacity.values())
        replicas = {a.shape: a.replicas for a in used}
        series = []
        for tp, share in _shapes(max_tp):
            key = ShapeKey(model, gpu_type, tp, share)
            try:
                if not profiles.memory(key).fits:
                    continue
                cap = profiles.capacity_per_s(key, inp, outp)
                if not cap > 0:
                    continue
                answers = [profiles.at_rate(key, inp, outp, f * cap) for f in LOAD_FRACTIONS]
                points = tuple(
                    (f * cap, a.e2e_ms / 1000) for f, a in zip(LOAD_FRACTIONS, answers, strict=True)
                )
                used_point = None
                if key in capacity and total_capacity > 0:
                    rate = demand.get(model, 0.0) * capacity[key] / total_capacity / replicas[key]
                    used_point = (rate, profiles.at_rate(key, inp, outp, rate).e2e_ms / 1000)
            except PlannerError:
                continue  # a shape the model cannot run at (heads not divisible, ...)
            sources = tuple(sorted({a.source for a in answers}))
            series.append(ProfileSeries(tp, share, cap, points, used_point, sources))
        out.append(ProfileView(model, gpu_type, inp, outp, tuple(series)))
    return tuple(out)


def _capacity(profiles: ProfileTable, key: ShapeKey, inp: float, outp: float) -> float:
    try:
        return profiles.capacity_per_s(key, inp, outp)
    except PlannerError:
        return 0.0


def _shapes(max_tp: int) -> list[tuple[int, int]]:
    """(tp, share eighths): fractional shares at TP 1 only, whole GPUs at every TP."""
    shapes = [(1, s) for s in sorted(SHARE_EIGHTHS)]
    shapes += [(tp, UNITS_PER_GPU) for tp in TP_DEGREES if 1 < tp <= max_tp]
    return shapes


@dataclass(frozen=True)
class AllocationCost:
    """One allocation's share of the plan's cost and power (None: not known)."""

    cost_per_hour: float | None
    cost_per_1000_workflows: float | None
    power_kw: float | None


def allocation_costs(
    plan: Plan,
    prices: Mapping[str, float] | None = None,
    power_w: Mapping[str, float] | None = None,
) -> tuple[AllocationCost, ...] | None:
    """Per allocation (in plan order): the GPUs it uses x their $ per GPU-hour and board
    power. A plan on one GPU type splits its own `cost_per_hour` and `power_kw` by GPUs
    (so the rows add up to the plan's totals); a plan on several types uses the cluster's
    per-type `prices` and `power_w`. None when the plan carries neither cost nor power.
    """
    if plan.cost_per_hour is None and plan.power_kw is None:
        return None
    types = {a.gpu_type for a in plan.allocations}
    used = plan.gpus_used

    def per_gpu(
        total: float | None, given: Mapping[str, float] | None, scale: float
    ) -> dict[str, float] | None:
        if total is None:
            return None
        if len(types) == 1 and used > 0:
            return {t: total / used for t in types}
        if given is not None and types <= set(given):
            return {t: float(given[t]) * scale for t in types}
        return None

    price = per_gpu(plan.cost_per_hour, prices, 1.0)
    power = per_gpu(plan.power_kw, power_w, 1e-3)
    rate = sum(w.target_rate_per_s for w in plan.workflows)
    out = []
    for a in plan.allocations:
        cost = a.gpus * price[a.gpu_type] if price is not None else None
        per_1k = cost / (rate * 3600.0) * 1000.0 if cost is not None and rate > 0 else None
        kw = a.gpus * power[a.gpu_type] if power is not None else None
        out.append(AllocationCost(cost, per_1k, kw))
    return tuple(out)
