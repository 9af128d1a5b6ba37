"""The highest workflow rate an allocation sustains, found by simulation.

Criterion (stated in every report, `CRITERION`): a rate is *sustainable* when, over the
measurement window, the calls waiting for KV space grow by less than 1% of the calls
offered, or the backlog of unfinished workflows grows by less than 2% of the workflows
offered (`SimResult.sustainable`; see `result.py` for why both).
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
from planner.simulate.result import MAX_BACKLOG_GROWTH, MAX_QUEUE_GROWTH, SimResult
from planner.simulate.workload import Workload

CRITERION = (
    f"highest rate at which, over the measurement window, the calls waiting for KV-cache "
    f"space grow by less than {MAX_QUEUE_GROWTH:.0%} of the calls offered, or the backlog "
    f"of unfinished workflows by less than {MAX_BACKLOG_GROWTH:.0%} of the workflows offered"
)


@dataclass(frozen=True)
class RateSearch:
    """Outcome of the search.

    Attributes:
        max_rate_per_s: arrival rate realised in the measurement window of the highest
            sustainable probe (the nominal rate of a finite Poisson sample is off by
            about 1/sqrt(arrivals); the realised rate is what the replicas sustained),
            at most the capacity bound.
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


def capacity_bound(
    workload: Workload, replicas: Sequence[Replica], mix: Mapping[str, float] | None = None
) -> float:
    """The highest workflow rate the replicas could ever sustain, from their own curves.

    Per model m: capacity in work-seconds per second, sum_r max_n n speed_r[n], over the
    work one workflow brings it (its calls' isolated latencies on the replica, at the
    mix's mean call). In steady state no run can exceed min_m of that ratio (the APL's
    throughput bound); fan-out bursts, routing imbalance and KV caps can make it fall
    short. `mix`: share per workflow type (None or empty: the trace's own mix).
    """
    n_m, in_m, out_m = _per_workflow_demand(workload, mix or {})
    bound = np.inf
    for m in range(len(workload.models)):
        if n_m[m] <= 0:
            continue
        calls_per_s = 0.0
        for r in replicas:
            if r.model != m:
                continue
            c = r.curve
            work = (
                c.prefill_s + c.decode_s
                if not c.token_scaled
                else c.prefill_s * max(in_m[m], 1.0) / c.ref_input_tokens
                + c.decode_s * max(out_m[m], 1.0) / c.ref_output_tokens
            )
            n = np.arange(1, len(c.speed))
            calls_per_s += float((n * c.speed[1:]).max()) / max(work, 1e-12)
        bound = min(bound, calls_per_s / n_m[m])
    return float(bound)


def _per_workflow_demand(
    workload: Workload, mix: Mapping[str, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per model: LLM calls per workflow, mean input and output tokens, under the mix."""
    n_types = len(workload.workflow_types)
    counts = np.bincount(workload.workflow_type, minlength=n_types).astype(np.float64)
    if mix:
        shares = np.array([max(float(mix.get(t, 0.0)), 0.0) for t in workload.workflow_types])
    else:
        shares = counts.copy()
    shares = shares / shares.sum()
    llm = workload.node_model >= 0
    node_type = np.repeat(workload.workflow_type, workload.node_count)[llm]
    model = workload.node_model[llm]
    # Per (type, model) sums, weighted by the type's share per traced workflow of the type.
    weight = (shares / np.maximum(counts, 1.0))[node_type]
    k = len(workload.models)
    n_m = np.bincount(model, weights=weight, minlength=k)
    in_sum = np.bincount(model, weights=weight * workload.node_input_tokens[llm], minlength=k)
    out_sum = np.bincount(model, weights=weight * workload.node_output_tokens[llm], minlength=k)
    safe = np.maximum(n_m, 1e-12)
    return n_m, in_sum / safe, out_sum / safe


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
    """Bisect for the highest sustainable workflow rate (see the module's criterion).

    The search is bracketed by `capacity_bound`: a rate above it cannot be sustained in
    steady state, however long a finite window takes to show it.
    """
    bound = capacity_bound(
        workload, replicas, settings.mix if settings.pattern == "poisson" else {}
    )
    probes: list[tuple[float, bool, float]] = []
    results: dict[float, SimResult] = {}

    def probe(rate: float) -> bool:
        res = simulate_at(workload, replicas, rate, settings)
        results[rate] = res
        probes.append((rate, res.sustainable, res.throughput_per_s))
        return res.sustainable

    hi = bound
    lo = 0.0
    if probe(hi):
        lo = hi
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
    while lo < hi and hi - lo > settings.rel_tolerance * hi:
        mid = (lo + hi) / 2
        if probe(mid):
            lo = mid
        else:
            hi = mid
    at_max = results.get(lo)
    return RateSearch(
        max_rate_per_s=min(at_max.offered_rate_per_s, bound) if at_max else 0.0,
        max_nominal_rate_per_s=lo,
        bound_rate_per_s=bound,
        probes=tuple(probes),
        at_max=at_max,
    )
