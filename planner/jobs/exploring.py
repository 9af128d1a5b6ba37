"""Exploring a plan after `plan_job`: where its replicas sit, how it holds up as the load
grows, and how the baselines do on the same problem (what plan_visualisation.ipynb shows).

All three use the planning result's own SearchProblem, so the figures are the APL's
predictions on the same profiles, targets and GPUs as the plan.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from planner.jobs.planning import PlanningResult
from planner.place import Placement
from planner.search.validate import Violation
from planner.types.cluster import Cluster
from planner.types.plan import Plan
from planner.types.settings import SolveSettings

# The planner's own plan first, then the baselines of `planner evaluate`.
PLANNER = "planner (CP-SAT)"
BASELINES = ("uniform", "independent", "greedy")


def placement_job(plan: Plan, cluster: Cluster) -> Placement:
    """Every replica of `plan` on a node and GPU indices of `cluster` (the placement
    `planner plan` writes as placement.yaml).

    Raises:
        PlacementError: the plan does not fit the cluster.
    """
    from planner.place import place

    return place(plan, cluster)


@dataclass(frozen=True)
class ScalePoint:
    """The predicted mean workflow latency at `scale` x the target rates.

    Attributes:
        replanned_latency_s: of the plan searched for the scaled rates (NaN when no plan
            on the cluster meets them).
        fixed_latency_s: of the given plan's allocations kept as they are (inf once a model
            saturates).
    """

    scale: float
    replanned_latency_s: float
    fixed_latency_s: float


@dataclass(frozen=True)
class RateSweep:
    points: tuple[ScalePoint, ...]
    sustained_scale: float  # the given plan's highest common factor under the cap


def rate_sweep_job(
    result: PlanningResult, scales: Sequence[float], settings: SolveSettings | None = None
) -> RateSweep:
    """Re-plan at each scale of the target rates (with `settings`, default the planner's
    defaults) and evaluate the fixed plan there too; both latencies by the same APL
    predictor (`mean_latency_s`)."""
    from planner.search import SearchInfeasible, search_plan
    from planner.search.validate import mean_latency_s, sustained_scale

    settings = settings or SolveSettings()
    points = []
    for scale in scales:
        problem = result.problem.scaled(scale)
        try:
            replanned = search_plan(problem, settings)
            searched = mean_latency_s(problem, replanned.allocations)
        except SearchInfeasible:
            searched = math.nan
        fixed = mean_latency_s(problem, result.plan.allocations)
        points.append(ScalePoint(scale, searched, fixed))
    return RateSweep(tuple(points), sustained_scale(result.problem, result.plan.allocations))


@dataclass(frozen=True)
class MethodResult:
    """One method's plan for the planning result's problem and what the APL predicts.

    Attributes:
        max_scale: the highest common factor on the target rates it sustains.
        violations: the constraints it breaks (the independent validator's).
    """

    method: str
    plan: Plan
    mean_latency_s: float
    max_scale: float
    violations: tuple[Violation, ...]


def baselines_job(result: PlanningResult) -> tuple[MethodResult, ...]:
    """The planner's plan, then the uniform, independent and greedy baselines sized for
    the same problem, each with its predicted latency, sustainable scale and violations."""
    from planner.search.baselines import greedy_plan, independent_plan, uniform_plan
    from planner.search.validate import check_plan, mean_latency_s, sustained_scale

    makers = dict(zip(BASELINES, (uniform_plan, independent_plan, greedy_plan), strict=True))
    plans = [(PLANNER, result.plan)] + [(name, makers[name](result.problem)) for name in BASELINES]
    problem = result.problem
    return tuple(
        MethodResult(
            name,
            plan,
            mean_latency_s(problem, plan.allocations),
            sustained_scale(problem, plan.allocations),
            check_plan(problem, plan),
        )
        for name, plan in plans
    )
