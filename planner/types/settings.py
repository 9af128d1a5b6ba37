"""What a planning request asks of the search: targets, SLOs and solver settings.

These sit below the stages so the CLI and the jobs layer can build a request without
importing the solver (OR-Tools loads only when a search runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from planner.defaults import (
    LATENCY_TOLERANCE,
    NUM_WORKERS,
    RANDOM_SEED,
    TIME_LIMIT_S,
    UTILISATION_CAP,
)
from planner.types.names import WorkflowType
from planner.types.plan import Objective

SloKind = Literal["mean", "p95"]

#: Latency net of the per-model options (search/choices.py): options whose latency is
#: within 0.2% of a kept one at more GPUs are dropped.
DEFAULT_RESOLUTION = 0.002


@dataclass(frozen=True)
class WorkloadTargets:
    """How target rates and SLOs are derived from the observed APL."""

    headroom: float = 1.0  # target = observed rate x headroom (unless a rate is given)
    target_rate_per_s: Mapping[WorkflowType, float] | float | None = None  # per type or total
    slo_s: Mapping[WorkflowType, tuple[float, SloKind]] = field(default_factory=dict)
    utilisation_cap: float = UTILISATION_CAP  # a replica's load stays below this share


@dataclass(frozen=True)
class MixBound:
    """Which two-shape mixtures are options (see search/mixtures.py)."""

    minority_max: int | None = 2  # a mixture's smaller replica count is at most this
    resolution: float = 0.05  # latency net along the larger count


# The default bound: two replicas of the second shape and a 5% net keep the 1,024-GPU,
# 50-model benchmark at a proven optimum in seconds; four replicas or a 2% net leave it
# at a 5-12% gap after 55 s (benchmarks/search_scale.py, docs/benchmarks.md).
DEFAULT_MIX = MixBound()


@dataclass(frozen=True)
class SolveSettings:
    """How to search. `num_workers` and `random_seed` are pinned for determinism."""

    objective: Objective = "min-latency"
    time_limit_s: float = TIME_LIMIT_S  # CP-SAT deterministic seconds over all stages
    num_workers: int = NUM_WORKERS  # one worker is deterministic and, here, fastest
    random_seed: int = RANDOM_SEED
    resolution: float = DEFAULT_RESOLUTION  # latency net of search/choices.py
    mix: MixBound | None = DEFAULT_MIX  # two-shape mixtures; None: one shape per model
    use_hint: bool = True
    latency_tolerance: float = LATENCY_TOLERANCE  # min-latency's second stage; 0: none
