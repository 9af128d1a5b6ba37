"""The highest workflow rate an allocation sustains, found by simulation.

Criterion (stated in every report): a rate is *sustainable* when, over the measurement
window, the backlog of unfinished workflows grows by less than MAX_BACKLOG_GROWTH (2%) of
the workflows offered, i.e. completions keep up with arrivals (`SimResult.sustainable`).
The search brackets the rate with the capacity bound of the replicas' curves
(`capacity_bound`), then bisects. Every probe uses the same seed, so the arrival pattern
is the same one stretched in time (common random numbers): probes differ only in rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from planner.simulate.arrivals import ArrivalSpec, Pattern
from planner.simulate.engine import Replica
from planner.simulate.result import MAX_BACKLOG_GROWTH, SimResult
from planner.simulate.workload import Workload

CRITERION = (
    f"highest rate at which the backlog of unfinished workflows grows by less than "
    f"{MAX_BACKLOG_GROWTH:.0%} of the workflows offered during the measurement window"
)


@dataclass(frozen=True)
class RateSearch:
    """Outcome of the search.

    Attributes:
        max_rate_per_s: arrival rate realised in the measurement window of the highest
            sustainable probe (the nominal rate of a finite Poisson sample is off by
            about 1/sqrt(arrivals); the realised rate is what the replicas sustained).
        max_nominal_rate_per_s: the nominal rate of that probe.
        bound_rate_per_s: the capacity bound the search started from.
        probes: (rate, sustainable, throughput) of every simulation, in probe order.
        at_max: the simulation at `max_rate_per_s` (None if no rate was sustainable).
    """

    max_rate_per_s: float
    max_nominal_rate_per_s: float
    bound_rate_per_s: float
    probes: tuple[tuple[float, bool, float], ...]
    at_max: SimResult | None


@dataclass(frozen=True)
class SimSettings:
    """How long and how each simulation runs.

    Attributes:
        workflows: instances per simulation (warm-up included); None sizes it from
            `calls`: enough workflows for about that many calls, at least
            `min_workflows`.
        warmup_fraction: share of the arrival span excluded from the statistics.
        pattern: "poisson" or "trace" arrivals.
        seed: the arrival seed.
        rel_tolerance: the bisection stops when the bracket is this narrow (relative).
        mix: Poisson arrivals' share per workflow type (empty: the trace's mix).
    """

    workflows: int | None = None
    calls: int = 150_000
    min_workflows: int = 300
    warmup_fraction: float = 0.2
    pattern: Pattern = "poisson"
    seed: int = 0
    rel_tolerance: float = 0.01
    mix: Mapping[str, float] = field(default_factory=dict)

    def workflows_for(self, workload: Workload) -> int:
        if self.workflows is not None:
            return self.workflows
        per_workflow = workload.nodes / max(workload.workflows, 1)
        return max(self.min_workflows, round(self.calls / per_workflow))


def capacity_bound(workload: Workload, replicas: Sequence[Replica]) -> float:
    """min over models of (summed replica capacity, mean-shape calls/s) / calls per workflow.

    The APL's throughput bound computed from the simulator's own curves; workflows of a
    real run can fall short of it (fan-out bursts, KV caps), never exceed it by much.
    """
    n_m = workload.llm_calls_per_workflow()
    bound = np.inf
    for m in range(len(workload.models)):
        if n_m[m] <= 0:
            continue
        cap = sum(
            r.curve.capacity_per_s * _shape_factor(workload, r, m) for r in replicas if r.model == m
        )
        bound = min(bound, cap / n_m[m])
    return float(bound)


def _shape_factor(workload: Workload, replica: Replica, m: int) -> float:
    """Curve capacity is in reference calls; convert to the workload's mean calls."""
    c = replica.curve
    if not c.token_scaled:
        return 1.0
    ref = c.prefill_s + c.decode_s
    mean = c.prefill_s * max(workload.mean_input_tokens[m], 1.0) / c.ref_input_tokens + (
        c.decode_s * max(workload.mean_output_tokens[m], 1.0) / c.ref_output_tokens
    )
    return ref / mean if mean > 0 else 1.0


def simulate_at(
    workload: Workload, replicas: Sequence[Replica], rate_per_s: float, settings: SimSettings
) -> SimResult:
    """One simulation at `rate_per_s` with the settings' length, warm-up and seed."""
    from planner.simulate import simulate_workload  # the package entry; avoids a cycle

    spec = ArrivalSpec(
        rate_per_s,
        settings.pattern,
        settings.workflows_for(workload),
        settings.mix if settings.pattern == "poisson" else {},
    )
    span = _arrival_span(workload, spec, settings.seed)
    return simulate_workload(
        workload, replicas, spec, seed=settings.seed, warmup_s=settings.warmup_fraction * span
    )


def _arrival_span(workload: Workload, spec: ArrivalSpec, seed: int) -> float:
    from planner.simulate.arrivals import arrival_schedule

    times, _ = arrival_schedule(workload, spec, seed)
    return float(times[-1])


def max_sustainable_rate(
    workload: Workload, replicas: Sequence[Replica], settings: SimSettings
) -> RateSearch:
    """Bisect for the highest sustainable workflow rate (see the module's criterion)."""
    bound = capacity_bound(workload, replicas)
    probes: list[tuple[float, bool, float]] = []
    results: dict[float, SimResult] = {}

    def probe(rate: float) -> bool:
        res = simulate_at(workload, replicas, rate, settings)
        results[rate] = res
        probes.append((rate, res.sustainable, res.throughput_per_s))
        return res.sustainable

    hi = 1.1 * bound
    lo = 0.0
    while probe(hi):  # the bound is a heuristic: widen if it was too low
        lo, hi = hi, 2 * hi
    # Start from the bound's neighbourhood, where the answer usually is.
    first = 0.9 * bound
    if lo == 0.0 and first > 0:
        if probe(first):
            lo = first
        else:
            hi = first
    while lo == 0.0 and hi > 1e-9 * bound:
        mid = hi / 2
        if probe(mid):
            lo = mid
        else:
            hi = mid
    while hi - lo > settings.rel_tolerance * hi:
        mid = (lo + hi) / 2
        if probe(mid):
            lo = mid
        else:
            hi = mid
    at_max = results.get(lo)
    return RateSearch(
        max_rate_per_s=at_max.offered_rate_per_s if at_max else 0.0,
        max_nominal_rate_per_s=lo,
        bound_rate_per_s=bound,
        probes=tuple(probes),
        at_max=at_max,
    )
