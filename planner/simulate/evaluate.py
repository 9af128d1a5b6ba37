"""Evaluate plans by simulation: max sustainable rate, latency at the target, APL error.

    evaluate_plans(workload, plans, profiles, settings) -> Evaluation

Every candidate (the plan, the baselines, a user allocation) is simulated on the same
compiled workload with the same seeds: its highest sustainable workflow rate (see
`rates.CRITERION`), its latency and per-model load at the target rate, and the APL's
predictions for it set against the simulation:

- predicted max rate: the APL's saturation rate, `sum_w R_w * min_m C_m / D_m` (the
  plan's own `throughput_per_s` figures stop at the utilisation cap; saturation is what
  the simulation's max rate measures);
- predicted mean latency: `sum_w R_w L_w / sum_w R_w` at the target rates.

Errors are relative and signed: (predicted - simulated) / simulated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from planner.errors import InputError
from planner.profiles import ProfileTable
from planner.progress import stage
from planner.simulate import build_replicas
from planner.simulate.prefix_hits import PrefixHitCheck
from planner.simulate.rates import (
    CRITERION,
    RateSearch,
    SimSettings,
    max_sustainable_rate,
    simulate_at,
)
from planner.simulate.result import SimResult
from planner.simulate.workload import Workload
from planner.types.plan import Allocation, Plan, WorkflowPrediction


@dataclass(frozen=True)
class CandidateResult:
    """One allocation under simulation.

    Attributes:
        name: "plan", "uniform", "independent", "greedy" or "user".
        max_rate_per_s: highest sustainable workflow rate (0 when it cannot serve).
        at_target: the simulation at the evaluation's target rate.
        search: the rate search's probes and capacity bound.
        predicted_max_rate_per_s / predicted_mean_latency_s: the APL's figures.
        problem: why the allocation cannot serve the workload at all, if so.
    """

    name: str
    allocations: tuple[Allocation, ...]
    gpus: float
    max_rate_per_s: float
    at_target: SimResult | None
    search: RateSearch | None
    predicted_max_rate_per_s: float
    predicted_mean_latency_s: float
    problem: str | None = None
    predicted_workflows: tuple[WorkflowPrediction, ...] = ()

    @property
    def throughput_error(self) -> float:
        return _rel_error(self.predicted_max_rate_per_s, self.max_rate_per_s)

    @property
    def latency_error(self) -> float:
        sim = self.at_target.latency_s.mean if self.at_target else math.nan
        return _rel_error(self.predicted_mean_latency_s, sim)


@dataclass(frozen=True)
class Evaluation:
    """All candidates on one workload, at one target rate."""

    target_rate_per_s: float
    criterion: str
    settings: SimSettings
    candidates: tuple[CandidateResult, ...]
    # The plan's predicted prefix-cache hit rates against a block-level LRU replay.
    prefix_hits: tuple[PrefixHitCheck, ...] = ()
    notes: tuple[str, ...] = ()  # what the reader must know (workflow types left out)

    def candidate(self, name: str) -> CandidateResult:
        for c in self.candidates:
            if c.name == name:
                return c
        raise KeyError(name)


def evaluate_plans(
    workload: Workload,
    plans: Mapping[str, Plan],
    profiles: ProfileTable,
    settings: SimSettings | None = None,
    target_rate_per_s: float | None = None,
    canonical: Callable[[str], str] | None = None,
) -> Evaluation:
    """Simulate every plan; `plans` maps candidate names to plans, the first is the subject.

    Args:
        target_rate_per_s: where latency is measured; default the first plan's summed
            target rates.
        canonical: model name -> catalog name (see `build_replicas`).

    Raises:
        InputError: no target rate can be derived.
        ProfileError: a shape cannot hold a single call.
    """
    settings = settings or SimSettings()
    if not plans:
        raise InputError("nothing to evaluate: no plan given")
    first = next(iter(plans.values()))
    target = target_rate_per_s or sum(w.target_rate_per_s for w in first.workflows)
    if not target > 0:
        raise InputError("the plan has no target rate; give one with --rate")
    mix = {w.workflow_type: w.target_rate_per_s for w in first.workflows}
    if sum(mix.values()) > 0 and set(mix) <= set(workload.workflow_types):
        settings = replace(settings, mix=mix)
    out = []
    for name, plan in plans.items():
        with stage(f"simulate {name}"):
            out.append(_candidate(name, plan, workload, profiles, settings, target, canonical))
    return Evaluation(target, CRITERION, settings, tuple(out))


def _candidate(
    name: str,
    plan: Plan,
    workload: Workload,
    profiles: ProfileTable,
    settings: SimSettings,
    target: float,
    canonical: Callable[[str], str] | None,
) -> CandidateResult:
    predicted_rate = predicted_max_rate_per_s(plan)
    predicted_latency = predicted_mean_latency_s(plan)
    try:
        replicas = build_replicas(workload, plan.allocations, profiles, canonical)
    except InputError as exc:
        return CandidateResult(
            name, plan.allocations, plan.gpus_used, 0.0, None, None,
            predicted_rate, predicted_latency, str(exc),
        )  # fmt: skip
    search = max_sustainable_rate(workload, replicas, settings)
    at_target = simulate_at(workload, replicas, target, settings)
    return CandidateResult(
        name=name,
        allocations=plan.allocations,
        gpus=plan.gpus_used,
        max_rate_per_s=search.max_rate_per_s,
        at_target=at_target,
        search=search,
        predicted_max_rate_per_s=predicted_rate,
        predicted_mean_latency_s=predicted_latency,
        predicted_workflows=plan.workflows,
    )


def predicted_max_rate_per_s(plan: Plan) -> float:
    """The APL's saturation rate of the plan: all target rates scaled until a model's
    demand reaches its capacity."""
    scales = [m.capacity_per_s / m.demand_per_s for m in plan.models if m.demand_per_s > 0]
    total = sum(w.target_rate_per_s for w in plan.workflows)
    return total * min(scales) if scales else math.inf


def predicted_mean_latency_s(plan: Plan) -> float:
    """Rate-weighted mean of the plan's predicted workflow latencies."""
    total = sum(w.target_rate_per_s for w in plan.workflows)
    if total <= 0:
        return math.nan
    return sum(w.target_rate_per_s * w.mean_latency_s for w in plan.workflows) / total


def predicted_p95_latency_s(workflows: Sequence[WorkflowPrediction]) -> float:
    """p95 of the workflow latency over the mix of types: each type log-normal with its
    predicted mean and p95, mixed by target rate (the 95th percentile of the mixture, by
    bisection; exact for one type)."""
    flows = [
        w
        for w in workflows
        if w.target_rate_per_s > 0 and w.p95_latency_s is not None and w.mean_latency_s > 0
    ]
    total = sum(w.target_rate_per_s for w in flows)
    if not flows or not all(math.isfinite(w.mean_latency_s) for w in flows):
        return math.nan
    if len(flows) == 1:
        return flows[0].p95_latency_s or math.nan
    params = [
        (w.target_rate_per_s / total, *_lognormal(w.mean_latency_s, w.p95_latency_s or 0.0))
        for w in flows
    ]

    def above(x: float) -> float:
        return sum(
            share
            * (
                0.5 * math.erfc((math.log(x) - mu) / (sigma * math.sqrt(2.0)))
                if sigma > 0
                else float(math.log(x) < mu)
            )
            for share, mu, sigma in params
        )

    lo = min(w.mean_latency_s for w in flows) * 1e-3
    hi = max(w.p95_latency_s or w.mean_latency_s for w in flows) * 10.0
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if above(mid) > 0.05:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


def _lognormal(mean: float, p95: float) -> tuple[float, float]:
    """(mu, sigma) of the log-normal with this mean and 95th percentile: ln(p95 / mean) =
    z sigma - sigma^2 / 2 (the smaller root; sigma = z when p95 / mean is above its max)."""
    z = 1.6448536269514722
    gap = math.log(max(p95, mean) / mean)
    sigma = z - math.sqrt(max(z * z - 2.0 * gap, 0.0))
    return math.log(mean) - sigma * sigma / 2.0, sigma


def _rel_error(predicted: float, simulated: float) -> float:
    if not simulated > 0 or not math.isfinite(predicted):
        return math.nan
    return (predicted - simulated) / simulated
