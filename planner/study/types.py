"""The workload study's typed result: what `planner characterise` measures per workflow type.

Every figure is defined in docs/characterise.md (the JSON contract); the field docstrings
below are the short form. Units live in the names; `None` means the trace cannot tell
(no end times, no agent names, no parent ids...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from planner.types.names import ModelName, WorkflowType

# The graph shape classes, in the order they are tested (first match wins).
Shape = Literal["single", "tree", "fan-out/fan-in", "fan-out", "loop", "chain"]
SHAPES: tuple[Shape, ...] = ("single", "tree", "fan-out/fan-in", "fan-out", "loop", "chain")

DepthSource = Literal["parent_ids", "timing", "mixed"]


@dataclass(frozen=True)
class Distribution:
    """Summary of a sample: count, mean and percentiles (linear interpolation)."""

    count: int
    mean: float
    p10: float
    p50: float
    p90: float
    p99: float
    min: float
    max: float


@dataclass(frozen=True)
class Histogram:
    """Counts per bin [edges[i], edges[i + 1]); len(edges) == len(counts) + 1."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True)
class TimeSplit:
    """Where a workflow's end-to-end time goes, instant by instant.

    Each instant of a workflow's wall time (first start to last end) is LLM time when at
    least one LLM call runs, tool time when only tool calls run, and orchestration time
    when neither does (the framework's own work, queueing before the first token is
    recorded, think time). The three add up to the wall time: the critical path seen
    from the outside.

    Attributes:
        llm_s, tool_s, orchestration_s: means over the type's workflows.
        llm_fraction, tool_fraction, orchestration_fraction: shares of the summed wall time.
    """

    llm_s: float
    tool_s: float
    orchestration_s: float
    llm_fraction: float
    tool_fraction: float
    orchestration_fraction: float


@dataclass(frozen=True)
class Failures:
    """Calls that failed or were retried (LLM calls only).

    Attributes:
        error_calls, retry_calls: LLM calls with status error / retry.
        error_call_fraction, retry_call_fraction: of the type's LLM calls.
        workflows_with_failures_fraction: workflows with at least one error or retry.
    """

    error_calls: int
    retry_calls: int
    error_call_fraction: float
    retry_call_fraction: float
    workflows_with_failures_fraction: float


@dataclass(frozen=True)
class PrefixReuse:
    """How much of the prompts a prefix cache could serve.

    Attributes:
        cached_input_fraction: cached input tokens / input tokens, over calls whose
            server reported cached tokens (None when none did).
        repeated_prefix_fraction: share of calls whose prefix key was seen before in the
            type (None without prefix keys).
        context_carryover_fraction: the reuse an append-only conversation offers: each
            call may reuse min(its input, the previous call's input + output) tokens of
            the previous call of the same workflow and role (agent, else model); summed
            over calls / all input tokens. Not a bound: a cache also reuses prefixes
            shared across roles and workflows (system prompts), which this leaves out.
    """

    cached_input_fraction: float | None
    repeated_prefix_fraction: float | None
    context_carryover_fraction: float


@dataclass(frozen=True)
class Burst:
    """Peak-to-mean of workflow arrivals at one window length.

    Attributes:
        window_s: window length.
        peak_per_window: most workflow starts in any window [t, t + window_s).
        mean_per_window: workflows / arrival span x window_s.
        peak_to_mean: their ratio (1 for perfectly even arrivals).
    """

    window_s: float
    peak_per_window: int
    mean_per_window: float
    peak_to_mean: float


@dataclass(frozen=True)
class ModelStability:
    """One model's execution share against the spread of end-to-end latency.

    Attributes:
        execution_share: the model's summed call time / all LLM call time of the type.
        execution_share_cv: coefficient of variation of the per-workflow share.
        calls_per_workflow: mean calls per workflow (n_m).
    """

    model: ModelName
    calls_per_workflow: float
    execution_share: float
    execution_share_cv: float


@dataclass(frozen=True)
class RoleStats:
    """One agent role (the `agent` column of LLM calls) of a workflow type.

    Attributes:
        calls_per_workflow: the role's calls / workflows of the type.
        call_share, input_token_share, output_token_share, latency_share: the role's
            share of the type's LLM calls, input and output tokens, and summed call time
            (latency_share None without end times).
        models: the models that served the role's calls, sorted.
        output_tokens_p10, output_tokens_p90: the role's output-length range.
    """

    role: str
    calls: int
    calls_per_workflow: float
    call_share: float
    input_token_share: float
    output_token_share: float
    latency_share: float | None
    models: tuple[ModelName, ...]
    output_tokens_p10: float
    output_tokens_p90: float


@dataclass(frozen=True)
class PatternStep:
    """One role of a path pattern, repeated between min_repeat and max_repeat times."""

    role: str
    min_repeat: int
    max_repeat: int


@dataclass(frozen=True)
class PatternLoop:
    """Steps repeated as a whole (engineer then reviewer, again and again) between
    min_iterations and max_iterations times."""

    loop: tuple[PatternStep, ...]
    min_iterations: int
    max_iterations: int


@dataclass(frozen=True)
class RolePattern:
    """A workflow path over roles with repetition ranges, and the workflows it covers.

    Attributes:
        pattern: the compact form, e.g.
            `planner -> explorer{3,4} -> (engineer -> reviewer){1,3} -> verifier`.
        steps: the pattern's roles and loops in order.
        workflows: workflows whose path has this form.
        coverage: workflows / workflows of the type with named roles.
    """

    pattern: str
    steps: tuple[PatternStep | PatternLoop, ...]
    workflows: int
    coverage: float


@dataclass(frozen=True)
class WorkflowStudy:
    """The workload study of one workflow type.

    Attributes:
        calls_per_workflow: LLM calls per workflow.
        max_concurrency: most LLM calls of a workflow in flight at once (None untimed).
        max_children: most calls (LLM or tool) naming one call as parent, per workflow
            (the explicit fan-out; None without parent ids).
        depth: longest dependency chain of LLM and tool calls per workflow: from parent
            ids in workflows where a call names a parent, else from timing (the most
            calls of the workflow that run one after another without overlapping);
            depth_source says which ("mixed": some workflows each way).
        shapes: workflows per graph shape class (see docs/characterise.md).
        time_split: critical-path split of end-to-end time (None untimed).
        latency_s: end-to-end latency (None untimed); latency_cv its std / mean.
        burstiness: workflow arrival peak-to-mean at each window shorter than the span.
        stability: each model's execution share and its cv, next to latency_cv.
        roles, patterns: per agent role figures and role path patterns (empty without
            agent names).
    """

    workflow_type: WorkflowType
    workflow_count: int
    llm_calls: int
    tool_calls: int
    calls_per_workflow: Distribution
    calls_per_workflow_histogram: Histogram
    max_concurrency: Distribution | None
    max_children: Distribution | None
    depth: Distribution | None
    depth_source: DepthSource | None
    shapes: tuple[tuple[Shape, int], ...]
    time_split: TimeSplit | None
    failures: Failures
    prefix_reuse: PrefixReuse
    input_tokens: Distribution
    output_tokens: Distribution
    input_tokens_histogram: Histogram
    output_tokens_histogram: Histogram
    latency_s: Distribution | None
    latency_cv: float | None
    burstiness: tuple[Burst, ...]
    stability: tuple[ModelStability, ...]
    roles: tuple[RoleStats, ...]
    patterns: tuple[RolePattern, ...]


@dataclass(frozen=True)
class WorkloadStudy:
    """The study of every workflow type of a trace, sorted by workflow type."""

    workflows: tuple[WorkflowStudy, ...]
    calls: int
    sources: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
