"""What a replay measured, summarised: workflow rate and latency, per-model call timings.

Times are seconds since the replay started. The measurement window runs from the
warm-up's end to the end of arrivals: throughput counts the workflows that finished
inside it (a saturated system then shows its capacity), latency covers the workflows
that arrived inside it and finished (during the window or the drain after it).
TPOT is (e2e - TTFT) / (output tokens - 1) per call, as `vllm bench serve` computes it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from planner.types.apl import Stats
from planner.types.names import ModelName, WorkflowType

CALL_OK = "ok"
CALL_ERROR = "error"
CALL_TIMEOUT = "timeout"

WORKFLOW_OK = "ok"
WORKFLOW_FAILED = "failed"  # a call failed or timed out; the rest of the workflow was dropped
WORKFLOW_INCOMPLETE = "incomplete"  # still running when the replay stopped

# A replay is called sustainable when the backlog (workflows arrived and not yet finished)
# grew over the window by less than this share of the workflows offered in it. In steady
# state the backlog stays near rate x latency (Little's law) and only fluctuates; under
# overload it grows by (offered - capacity) x window.
MAX_BACKLOG_GROWTH = 0.1


@dataclass(frozen=True)
class CallRecord:
    """One LLM call as sent and answered (tool rows are not recorded)."""

    instance: int
    model: ModelName
    endpoint: str
    sent_s: float
    first_token_s: float  # NaN when no token arrived
    done_s: float
    input_tokens: int
    output_tokens: int  # tokens received (the usage the server reported)
    status: str  # CALL_OK, CALL_ERROR or CALL_TIMEOUT
    error: str = ""


@dataclass(frozen=True)
class WorkflowRecord:
    """One replayed workflow instance."""

    instance: int
    workflow_type: WorkflowType
    arrival_s: float
    done_s: float  # when it finished or failed; NaN while incomplete
    status: str


@dataclass(frozen=True)
class ReplayLog:
    """Everything a replay recorded, before summarising.

    Attributes:
        offered_rate_per_s: the Poisson rate asked for.
        warmup_s / arrivals_end_s: the measurement window.
        elapsed_s: wall time from start to stop (including the drain).
        interrupted: stopped early (Ctrl-C, or an endpoint went down).
        stop_reason: why it stopped early ("" when it ran its course).
    """

    offered_rate_per_s: float
    warmup_s: float
    arrivals_end_s: float
    elapsed_s: float
    calls: tuple[CallRecord, ...]
    workflows: tuple[WorkflowRecord, ...]
    interrupted: bool = False
    stop_reason: str = ""


@dataclass(frozen=True)
class CallTimings:
    """Per-call latency statistics of one model, in ms."""

    ttft_ms: Stats
    tpot_ms: Stats
    e2e_ms: Stats


@dataclass(frozen=True)
class ModelMeasure:
    """One model's calls in the window.

    Attributes:
        endpoints: distinct endpoints (replicas) the calls went to.
        call_rate_per_s: calls completed in the window per second.
        mean_concurrency: mean calls in flight (summed call time / window).
        mean_input_tokens / mean_output_tokens: of the completed calls.
        first_error: the first error or timeout message ("" when none).
    """

    model: ModelName
    endpoints: int
    calls: int
    ok: int
    errors: int
    timeouts: int
    call_rate_per_s: float
    mean_concurrency: float
    mean_input_tokens: float
    mean_output_tokens: float
    timings: CallTimings
    first_error: str = ""
    # Every completed call of the replay, warm-up and drain included (what the servers'
    # histograms count between the scrapes before and after it).
    run_ok: int = 0
    run_timings: CallTimings | None = None


@dataclass(frozen=True)
class WorkflowMeasure:
    """One workflow type (or all types together, named "*")."""

    workflow_type: WorkflowType
    offered: int  # arrived in the window
    completed: int  # of those, finished
    failed: int
    incomplete: int
    offered_rate_per_s: float
    throughput_per_s: float  # finished inside the window, per second
    latency_s: Stats
    backlog_growth: float  # backlog at the window's end minus at its start, / offered


@dataclass(frozen=True)
class ReplayMeasure:
    """The summary `planner replay` prints and compares with a plan's prediction."""

    offered_rate_per_s: float
    window_s: float
    total: WorkflowMeasure
    workflows: tuple[WorkflowMeasure, ...]
    models: tuple[ModelMeasure, ...]
    interrupted: bool
    stop_reason: str
    elapsed_s: float
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Workflow rate the bottleneck model's measured call rate supports: its calls/s over
    # its calls per workflow (the APL's throughput bound, measured); NaN unknown.
    bottleneck_rate_per_s: float = math.nan
    bottleneck_model: ModelName = ""

    @property
    def max_rate_per_s(self) -> float:
        """The maximum workflow rate an overloaded replay measured: the bottleneck model's
        (most calls in flight per endpoint) call rate over its calls per workflow.
        Workflows finishing inside the window would undercount it: under overload every
        workflow slows, and a window shorter than their latency sees few finish. NaN
        when the replay kept up (then only a lower bound is known)."""
        return math.nan if self.sustainable else self.bottleneck_rate_per_s

    @property
    def sustainable(self) -> bool:
        t = self.total
        return t.offered > 0 and t.failed == 0 and t.backlog_growth <= MAX_BACKLOG_GROWTH


_NAN_STATS = Stats(math.nan, math.nan, math.nan)


def stats_of(values: Sequence[float] | np.ndarray) -> Stats:
    """Mean, median and 95th percentile (NaN when empty)."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return _NAN_STATS
    return Stats(float(arr.mean()), float(np.percentile(arr, 50)), float(np.percentile(arr, 95)))


def summarise_replay(
    log: ReplayLog, calls_per_workflow: Mapping[ModelName, float] | None = None
) -> ReplayMeasure:
    """Summarise a replay's records over its measurement window.

    Args:
        calls_per_workflow: per model, mean LLM calls per replayed workflow (the APL's
            n_m at the replayed mix), for the bottleneck rate; None: not computed.
    """
    start, end = log.warmup_s, log.arrivals_end_s
    window = max(end - start, 0.0)
    types = sorted({w.workflow_type for w in log.workflows})
    per_type = tuple(_workflow_measure(t, log.workflows, start, end, window) for t in types)
    total = _workflow_measure("*", log.workflows, start, end, window)
    by_model: dict[ModelName, list[CallRecord]] = {}
    for call in log.calls:
        by_model.setdefault(call.model, []).append(call)
    models = tuple(_model_measure(m, by_model[m], start, end, window) for m in sorted(by_model))
    # The bottleneck is where calls pile up: the model with the most calls in flight per
    # endpoint. Models upstream of it see every arrival, models downstream only what it
    # releases, so neither the smallest nor the largest calls/s over n_m would do.
    loaded = [
        (m.mean_concurrency / max(m.endpoints, 1), m.model, m.call_rate_per_s / n)
        for m in models
        if (n := (calls_per_workflow or {}).get(m.model, 0.0)) > 0
        and math.isfinite(m.call_rate_per_s)
        and math.isfinite(m.mean_concurrency)
    ]
    _, bottleneck, rate = max(loaded) if loaded else (0.0, "", math.nan)
    notes: list[str] = []
    if window <= 0:
        notes.append("the replay stopped before its warm-up ended: nothing was measured")
    return ReplayMeasure(
        offered_rate_per_s=log.offered_rate_per_s,
        window_s=window,
        total=total,
        workflows=per_type,
        models=models,
        interrupted=log.interrupted,
        stop_reason=log.stop_reason,
        elapsed_s=log.elapsed_s,
        notes=tuple(notes),
        bottleneck_rate_per_s=rate,
        bottleneck_model=bottleneck,
    )


def _workflow_measure(
    name: WorkflowType,
    records: Sequence[WorkflowRecord],
    start: float,
    end: float,
    window: float,
) -> WorkflowMeasure:
    mine = [w for w in records if name in ("*", w.workflow_type)]
    arrived = [w for w in mine if start <= w.arrival_s < end]
    done = [w for w in arrived if w.status == WORKFLOW_OK]
    finished_inside = sum(1 for w in mine if w.status == WORKFLOW_OK and start <= w.done_s <= end)

    def backlog(t: float) -> int:
        # NaN done times (still running) never compare below t: they stay in the backlog.
        return sum(1 for w in mine if w.arrival_s < t) - sum(1 for w in mine if w.done_s < t)

    return WorkflowMeasure(
        workflow_type=name,
        offered=len(arrived),
        completed=len(done),
        failed=sum(1 for w in arrived if w.status == WORKFLOW_FAILED),
        incomplete=sum(1 for w in arrived if w.status == WORKFLOW_INCOMPLETE),
        offered_rate_per_s=len(arrived) / window if window > 0 else math.nan,
        throughput_per_s=finished_inside / window if window > 0 else math.nan,
        latency_s=stats_of([w.done_s - w.arrival_s for w in done]),
        backlog_growth=(backlog(end) - backlog(start)) / len(arrived) if arrived else math.nan,
    )


def _model_measure(
    model: ModelName,
    calls: Sequence[CallRecord],
    start: float,
    end: float,
    window: float,
) -> ModelMeasure:
    inside = [c for c in calls if start <= c.sent_s < end]
    ok = [c for c in inside if c.status == CALL_OK]
    every_ok = [c for c in calls if c.status == CALL_OK]
    # Time in flight clipped to the window, for the mean number of calls in flight.
    busy = sum(max(0.0, min(c.done_s, end) - max(c.sent_s, start)) for c in calls)
    failures = [c for c in inside if c.status != CALL_OK]
    return ModelMeasure(
        model=model,
        endpoints=len({c.endpoint for c in calls}),
        calls=len(inside),
        ok=len(ok),
        errors=sum(1 for c in inside if c.status == CALL_ERROR),
        timeouts=sum(1 for c in inside if c.status == CALL_TIMEOUT),
        call_rate_per_s=sum(1 for c in calls if c.status == CALL_OK and start <= c.done_s <= end)
        / window
        if window > 0
        else math.nan,
        mean_concurrency=busy / window if window > 0 else math.nan,
        mean_input_tokens=float(np.mean([c.input_tokens for c in ok])) if ok else math.nan,
        mean_output_tokens=float(np.mean([c.output_tokens for c in ok])) if ok else math.nan,
        timings=_timings(ok),
        first_error=failures[0].error if failures else "",
        run_ok=len(every_ok),
        run_timings=_timings(every_ok),
    )


def _timings(ok: Sequence[CallRecord]) -> CallTimings:
    ttft = [1000 * (c.first_token_s - c.sent_s) for c in ok]
    e2e = [1000 * (c.done_s - c.sent_s) for c in ok]
    tpot = [
        1000 * (c.done_s - c.first_token_s) / (c.output_tokens - 1)
        for c in ok
        if c.output_tokens > 1 and math.isfinite(c.first_token_s)
    ]
    return CallTimings(stats_of(ttft), stats_of(tpot), stats_of(e2e))


def workflow_mix(measure: ReplayMeasure) -> Mapping[WorkflowType, float]:
    """Share of arrivals per workflow type in the window."""
    total = sum(w.offered for w in measure.workflows)
    return {w.workflow_type: w.offered / total for w in measure.workflows} if total else {}
