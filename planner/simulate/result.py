"""What a simulation measured: throughput, workflow latency, per-model load."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from planner.simulate.engine import EngineOutput, Replica
from planner.types.apl import Stats
from planner.types.names import ModelName, WorkflowType

# A rate is sustainable when, over the measurement window, the calls waiting for KV space
# (beyond every replica's max concurrency) grow by less than MAX_QUEUE_GROWTH of the LLM
# calls offered, or the backlog of unfinished workflows grows by less than
# MAX_BACKLOG_GROWTH of the workflows offered. An overloaded replica fills its KV slots
# and then its queue grows with the excess load; a replica near (but under) capacity
# also accumulates calls in service, but slowly converges (its throughput rises with
# concurrency), which a finite window cannot tell from overload by the backlog alone.
MAX_BACKLOG_GROWTH = 0.02
MAX_QUEUE_GROWTH = 0.01


@dataclass(frozen=True)
class ModelSimStats:
    """One model's replicas over the measurement window.

    Attributes:
        utilisation: completed work / the replicas' saturation capacity (1 = saturated).
        busy_fraction: share of time a replica had at least one call in service.
        mean_concurrency: mean calls in service per replica.
        mean_call_latency_s / mean_queue_wait_s: per completed call, ready to done and
            ready to admitted (waiting for KV capacity).
    """

    model: ModelName
    replicas: int
    calls: int
    utilisation: float
    busy_fraction: float
    mean_concurrency: float
    mean_call_latency_s: float
    mean_queue_wait_s: float


@dataclass(frozen=True)
class SimResult:
    """Outcome of one simulation at one offered rate.

    Attributes:
        offered_rate_per_s: workflow arrivals per second in the measurement window.
        throughput_per_s: workflows completed per second in the window.
        latency_s: end-to-end latency of the workflows arriving in the window.
        backlog_growth: (unfinished workflows at the window's end - at its start) /
            workflows arriving in it; about 0 when stable, (rate - capacity) / rate when
            overloaded. The queue-growth indicator.
        queue_growth: (calls waiting for KV space at the window's end - at its start) /
            LLM calls offered in the window.
        window_s: measurement window (after warm-up, up to the last arrival).
        calls_simulated: LLM and tool calls replayed, warm-up included.
        latency_by_type_s: end-to-end latency per workflow type of the workflows arriving
            in the window (types with none left out), sorted by type.
    """

    offered_rate_per_s: float
    throughput_per_s: float
    latency_s: Stats
    workflows_measured: int
    backlog_growth: float
    queue_growth: float
    window_s: float
    calls_simulated: int
    models: tuple[ModelSimStats, ...]
    seed: int
    latency_by_type_s: tuple[tuple[WorkflowType, Stats], ...] = ()

    @property
    def sustainable(self) -> bool:
        """No queue builds up: see MAX_QUEUE_GROWTH and MAX_BACKLOG_GROWTH."""
        return self.queue_growth < MAX_QUEUE_GROWTH or self.backlog_growth < MAX_BACKLOG_GROWTH

    def model(self, name: ModelName) -> ModelSimStats | None:
        return next((m for m in self.models if m.model == name), None)


def summarise(
    out: EngineOutput,
    replicas: Sequence[Replica],
    models: Sequence[ModelName],
    window_start_s: float,
    window_end_s: float,
    seed: int,
    llm_calls_offered: int,
    instance_type: np.ndarray | None = None,
    type_names: Sequence[WorkflowType] = (),
) -> SimResult:
    """Turn raw engine output into a SimResult.

    Args:
        instance_type: workflow type index (into `type_names`) per simulated instance,
            in arrival order; None leaves latency_by_type_s empty.
    """
    window = window_end_s - window_start_s
    arr, end = out.arrival_s, out.end_s
    measured = (arr >= window_start_s) & (arr <= window_end_s)
    latency = end[measured] - arr[measured]
    completed = int(((end >= window_start_s) & (end <= window_end_s)).sum())

    def in_system(t: float) -> int:
        return int((arr <= t).sum() - (end <= t).sum())

    offered = int(measured.sum())
    growth = (in_system(window_end_s) - in_system(window_start_s)) / max(offered, 1)
    per_model = []
    for m, name in enumerate(models):
        idx = [r for r, rep in enumerate(replicas) if rep.model == m]
        if not idx:
            continue
        capacity = sum(
            float((np.arange(1, len(s)) * s[1:]).max())
            for s in (replicas[r].curve.speed for r in idx)
        )
        calls = int(out.replica_calls[idx].sum())
        per_model.append(
            ModelSimStats(
                model=name,
                replicas=len(idx),
                calls=calls,
                utilisation=float(out.replica_work_s[idx].sum() / (capacity * window)),
                busy_fraction=float(out.replica_busy_s[idx].sum() / (len(idx) * window)),
                mean_concurrency=float(out.replica_area[idx].sum() / (len(idx) * window)),
                mean_call_latency_s=float(out.replica_latency_s[idx].sum() / max(calls, 1)),
                mean_queue_wait_s=float(out.replica_wait_s[idx].sum() / max(calls, 1)),
            )
        )
    stats = _stats(latency)
    by_type: list[tuple[WorkflowType, Stats]] = []
    if instance_type is not None:
        measured_type = instance_type[measured]
        for t, name in enumerate(type_names):
            here = latency[measured_type == t]
            if len(here):
                by_type.append((name, _stats(here)))
    return SimResult(
        offered_rate_per_s=offered / window,
        throughput_per_s=completed / window,
        latency_s=stats,
        workflows_measured=offered,
        backlog_growth=float(growth),
        queue_growth=(out.waiting_at_window[1] - out.waiting_at_window[0])
        / max(llm_calls_offered, 1),
        window_s=window,
        calls_simulated=out.calls,
        models=tuple(per_model),
        seed=seed,
        latency_by_type_s=tuple(sorted(by_type)),
    )


def _stats(latency: np.ndarray) -> Stats:
    if not len(latency):
        return Stats(float("nan"), float("nan"), float("nan"))
    return Stats(
        mean=float(latency.mean()),
        p50=float(np.percentile(latency, 50)),
        p95=float(np.percentile(latency, 95)),
    )
