"""The allocations an evaluation compares: the plan, the baselines, a user's allocation.

The baselines are sized by `planner.search.baselines` for the plan's own target rates on
the same cluster, so every candidate answers the same question with the same GPUs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from planner.catalog import Catalog, resolve_model
from planner.errors import InputError, PlannerError
from planner.profiles import ProfileTable
from planner.types.apl import AggregatePipeline
from planner.types.cluster import Cluster
from planner.types.plan import Allocation, Plan, SolverFacts

BASELINES = ("uniform", "independent", "greedy")


def canonical_names(catalog: Catalog) -> Callable[[str], str]:
    """Model name -> catalog name (unknown names map to themselves)."""

    def name(model: str) -> str:
        try:
            return resolve_model(catalog, model).name
        except PlannerError:
            return model

    return name


def evaluation_candidates(
    plan: Plan,
    apl: AggregatePipeline,
    profiles: ProfileTable,
    cluster: Cluster,
    catalog: Catalog,
    user: Sequence[Allocation] | None = None,
    user_label: str = "allocation file",
) -> dict[str, Plan]:
    """{"plan", "uniform", "independent", "greedy"[, "user"]} -> Plan, in that order.

    Raises:
        InputError: the user's allocation needs more GPUs than the cluster has.
        ProfileError: a model of the traces is not in the catalog.
    """
    from planner.search.baselines import greedy_plan, independent_plan, uniform_plan
    from planner.search.predict import make_plan
    from planner.search.problem import build_problem
    from planner.search.validate import CAPACITY, check_plan
    from planner.types.settings import WorkloadTargets

    targets: Mapping[str, float] = {w.workflow_type: w.target_rate_per_s for w in plan.workflows}
    traced = {w.workflow_type for w in apl.workflows}
    if targets and not set(targets) <= traced:
        raise InputError(
            f"the plan was made for workflow types {', '.join(sorted(targets))} but the "
            f"traces hold {', '.join(sorted(traced))}; evaluate the plan on the traces it "
            "was made from"
        )
    # Problem models keep the traces' names and their shapes are named alike (profiles
    # resolve aliases); plans naming models either way match the workload (`canonical`).
    specs = {m: replace(resolve_model(catalog, m), name=m) for m in apl.models()}
    problem = build_problem(
        apl, profiles, cluster, specs, WorkloadTargets(target_rate_per_s=targets or None)
    )
    out = {
        "plan": plan,
        "uniform": uniform_plan(problem),
        "independent": independent_plan(problem),
        "greedy": greedy_plan(problem),
    }
    if user is not None:
        facts = SolverFacts("USER", float("nan"), float("nan"), float("nan"), 0.0)
        mine = make_plan(problem, user, "min-latency", facts, (user_label,))
        too_big = [v.message for v in check_plan(problem, mine) if v.constraint in CAPACITY]
        if too_big:
            raise InputError(
                f"{user_label}: the allocation does not fit the evaluation's GPUs: "
                + "; ".join(too_big)
                + "; evaluate it with --gpus or --cluster matching it"
            )
        out["user"] = mine
    return out
