"""The Aggregate LLM Pipeline (APL): per workflow type, per model aggregate statistics.

Produced by `aggregate.aggregate_pipeline(calls)`, consumed by `search` (demand and the
latency predictor) and printed by `planner ingest --json` (a public contract: see
DESIGN.md; keys may be added, never removed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from planner.types.names import ModelName, WorkflowType


@dataclass(frozen=True)
class Stats:
    """Mean, median and 95th percentile of a quantity."""

    mean: float
    p50: float
    p95: float


@dataclass(frozen=True)
class ModelStats:
    """One model's share of one workflow type.

    Attributes:
        calls_per_workflow: n_m, calls to the model over all workflows of the type.
        parallelism: p_m, mean over workflows calling the model of (summed call time /
            length of the union of its call intervals); 1.0 when calls never overlap.
        execution_share: the model's summed call time over all LLM call time of the type.
        execution_share_cv: coefficient of variation of the per-workflow share.
        mean_call_latency_s: observed mean per-call latency (None without end times).
        prefix_reuse_potential: share of the input tokens whose prefix block an earlier
            call sent (the hit rate of one infinite cache; see aggregate/reuse.py).
        prefix_reuse_source: the evidence behind it: hashes, session, provider or none.
        burst_calls: mean over the model's calls of the calls to it in the same workflow
            that started with it (each within BURST_GAP_S of the previous, itself
            included): the fan-out a call arrives in (1.0: calls arrive alone).
        burst_sizes: (size, such bursts per workflow of the type), sizes ascending (empty:
            unknown; every call alone is ((1, calls_per_workflow),)).
    """

    model: ModelName
    calls_per_workflow: float
    parallelism: float
    execution_share: float
    execution_share_cv: float
    input_tokens: Stats
    output_tokens: Stats
    cached_input_tokens: Stats | None = None
    mean_call_latency_s: float | None = None
    error_count: int = 0
    retry_count: int = 0
    prefix_reuse_potential: float | None = None
    prefix_reuse_source: str = "none"
    burst_calls: float = 1.0
    burst_sizes: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class WorkflowStats:
    """One workflow type's aggregate pipeline.

    Attributes:
        arrival_rate_per_s: workflows / span of workflow start times (None with < 2).
        peak_rate_per_s: most workflow starts in any one-minute window, per second.
        latency_s: end-to-end workflow latency (None without end times).
        llm_time_fraction: union of LLM busy time over workflow wall time.
        non_llm_time_s: mean workflow time not covered by any LLM call (tools, waiting).
        characterisation: the workload study (distributions, fan-out, depth, tools,
            prefix reuse); free-form JSON-ready values.
    """

    workflow_type: WorkflowType
    workflow_count: int
    arrival_rate_per_s: float | None
    peak_rate_per_s: float | None
    latency_s: Stats | None
    llm_time_fraction: float | None
    non_llm_time_s: float | None
    models: tuple[ModelStats, ...]
    characterisation: dict[str, Any] = field(default_factory=dict)

    def model(self, name: ModelName) -> ModelStats | None:
        return next((m for m in self.models if m.model == name), None)


@dataclass(frozen=True)
class AggregatePipeline:
    """All workflow types found in a CallTable, sorted by workflow type."""

    workflows: tuple[WorkflowStats, ...]
    sources: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def models(self) -> tuple[ModelName, ...]:
        """Every model any workflow type calls, sorted."""
        return tuple(sorted({m.model for w in self.workflows for m in w.models}))
