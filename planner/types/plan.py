"""A Plan: the search's answer, with its predictions and the solver's facts.

Produced by `search`, placed by `place`, rendered by `render`, simulated by `simulate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from planner.defaults import UNITS_PER_GPU
from planner.types.names import GpuType, ModelName, WorkflowType
from planner.types.shapes import ShapeKey

Objective = Literal["min-latency", "max-throughput", "min-gpus", "min-cost"]
OBJECTIVES: tuple[Objective, ...] = ("min-latency", "max-throughput", "min-gpus", "min-cost")


Routing = Literal["balanced", "session"]


@dataclass(frozen=True, order=True)
class Allocation:
    """`replicas` copies of a model on one shape.

    `routing` and `prefix_hit_rate` are the model's (every allocation of a model carries
    the same): how calls reach its replicas (balanced: any replica; session: a
    workflow's calls stay on one) and the predicted share of input tokens served from
    the prefix cache. `kv_cache_tokens` is one replica's KV-cache capacity.
    """

    model: ModelName
    gpu_type: GpuType
    tp: int
    share_eighths: int  # of each GPU, 8 = whole GPUs (see ShapeKey)
    replicas: int
    pp: int = 1  # pipeline stages per replica (> 1: the replica spans nodes)
    # MoE: experts split across the TP GPUs (vLLM --enable-expert-parallel).
    expert_parallel: bool = False
    dp: int = 1  # data-parallel attention ranks per replica (MoE with EP; see ShapeKey)
    routing: Routing = "balanced"
    prefix_hit_rate: float = 0.0
    kv_cache_tokens: int = 0

    @property
    def shape(self) -> ShapeKey:
        return ShapeKey(
            self.model,
            self.gpu_type,
            self.tp,
            self.share_eighths,
            self.pp,
            self.expert_parallel,
            self.dp,
        )

    @property
    def group_gpus(self) -> int:
        """GPUs of one pipeline stage placed in one NVLink domain (tp x dp)."""
        return self.tp * self.dp

    @property
    def gpu_fraction(self) -> float:
        """The share of each GPU as a fraction (for files and display)."""
        return self.shape.gpu_fraction

    @property
    def units(self) -> int:
        """Eighths of a GPU all replicas occupy."""
        return self.replicas * self.shape.units

    @property
    def gpus(self) -> float:
        return self.units / UNITS_PER_GPU


@dataclass(frozen=True)
class WorkflowPrediction:
    workflow_type: WorkflowType
    target_rate_per_s: float
    throughput_per_s: float  # highest rate the allocation sustains at this type's mix
    mean_latency_s: float  # predicted mean end-to-end latency at the target rate
    slo_s: float | None = None
    p95_latency_s: float | None = None  # the trace's p95/mean ratio x the predicted mean


@dataclass(frozen=True)
class ModelPrediction:
    model: ModelName
    demand_per_s: float  # calls/s at the target rates
    capacity_per_s: float  # calls/s the allocation sustains
    utilisation: float  # demand / capacity
    call_latency_s: float  # predicted mean per-call latency at the demand
    prefix_hit_rate: float = 0.0  # predicted cached share of input tokens
    routing: Routing = "balanced"


@dataclass(frozen=True)
class StageFacts:
    """One solve of a lexicographic search: what it optimised and how far it got."""

    stage: str  # "latency", "gpus", "cost", "scale"
    status: str  # "OPTIMAL" or "FEASIBLE"
    objective: float  # in the stage's unit: s, GPUs, $/hour, scale
    bound: float
    gap: float
    wall_s: float


@dataclass(frozen=True)
class SolverFacts:
    """The headline: the plan's objective and bound; `status` is the worst stage's."""

    status: str  # "OPTIMAL", "FEASIBLE", or the baseline's name
    objective: float
    bound: float
    gap: float  # relative gap between objective and bound
    wall_s: float
    stages: tuple[StageFacts, ...] = ()


@dataclass(frozen=True)
class Plan:
    objective: Objective
    allocations: tuple[Allocation, ...]
    workflows: tuple[WorkflowPrediction, ...]
    models: tuple[ModelPrediction, ...]
    solver: SolverFacts
    gpus_total: int
    inputs_digest: str = ""
    bottleneck_model: ModelName | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    cost_per_hour: float | None = None  # $ per hour of the GPUs used; None without prices
    power_kw: float | None = None  # typical board power of the GPUs used; None unknown

    @property
    def units_used(self) -> int:
        """Eighths of a GPU the allocations occupy."""
        return sum(a.units for a in self.allocations)

    @property
    def gpus_used(self) -> float:
        return self.units_used / UNITS_PER_GPU

    @property
    def gpus_free(self) -> float:
        """GPUs (in eighths) the plan leaves unallocated."""
        return self.gpus_total - self.gpus_used

    @property
    def cost_per_1000_workflows(self) -> float | None:
        """$ per 1,000 workflows at the target rates; None without prices or rates."""
        rate = sum(w.target_rate_per_s for w in self.workflows)
        if self.cost_per_hour is None or rate <= 0:
            return None
        return self.cost_per_hour / (rate * 3600.0) * 1000.0
