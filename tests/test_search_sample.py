"""Search on the shipped sample traces with the analytic profiles: every answer is either
a valid plan or an infeasibility report whose GPU count really suffices."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from planner.aggregate import aggregate_pipeline
from planner.catalog import resolve_model
from planner.io.configs import load_catalog
from planner.io.traces import read_calls
from planner.profiles.analytic import AnalyticProfiles
from planner.search import SearchInfeasible, SolveSettings, search_plan
from planner.search.problem import WorkloadTargets, build_problem
from planner.search.validate import check_plan
from planner.types.cluster import uniform_cluster

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def inputs():  # type: ignore[no-untyped-def]
    apl = aggregate_pipeline(read_calls(REPO / "traces"))
    catalog = load_catalog()
    specs = {name: resolve_model(catalog, name) for name in apl.models()}
    return apl, AnalyticProfiles(catalog), specs


@pytest.mark.parametrize("gpus", [2, 4, 8, 12])
@pytest.mark.parametrize("headroom", [1.0, 3.0])
def test_plan_or_correct_infeasibility(inputs, gpus: int, headroom: float) -> None:  # type: ignore[no-untyped-def]
    apl, profiles, specs = inputs
    targets = WorkloadTargets(headroom=headroom)
    node = uniform_cluster(8).pools  # the node shape `--gpus` grows in
    problem = build_problem(apl, profiles, uniform_cluster(gpus), specs, targets, growth=node)
    try:
        plan = search_plan(problem)
    except SearchInfeasible as err:
        assert err.gpus_needed is not None and err.gpus_needed > gpus
        bigger = 8 * math.ceil(err.gpus_needed / 8)
        retry = build_problem(apl, profiles, uniform_cluster(bigger), specs, targets)
        plan = search_plan(retry, SolveSettings(objective="min-gpus"))
        assert plan.gpus_used == pytest.approx(err.gpus_needed)
        return
    assert check_plan(problem, plan) == ()
    assert plan.gpus_used <= gpus
    assert {a.model for a in plan.allocations} == {m.model for m in problem.models}
