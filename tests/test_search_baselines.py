"""Baselines on the same GPUs, and target rates / SLOs derived from an APL."""

from __future__ import annotations

import pytest
from search_factory import cluster, model, problem, shape

from planner.errors import InputError
from planner.search import SolveSettings, search_plan
from planner.search.baselines import greedy_plan, independent_plan, trim_to_cluster, uniform_plan
from planner.search.packing import first_fit_decreasing
from planner.search.problem import WorkloadTargets, workflow_demands
from planner.search.validate import check_plan, mean_latency_s
from planner.types.apl import AggregatePipeline, ModelStats, Stats, WorkflowStats
from planner.types.plan import Allocation


def mix():  # type: ignore[no-untyped-def]
    a = model("a", [shape("a", tp=t, capacity=10 * t**0.8, base_s=1 / t**0.5) for t in (1, 2, 4)])
    b = model("b", [shape("b", fraction=f, capacity=8 * f, base_s=0.8) for f in (1.0, 0.5, 0.25)])
    return problem([a, b], rate=12.0, cl=cluster(gpus_per_node=8))


@pytest.mark.parametrize("baseline", [uniform_plan, independent_plan, greedy_plan])
def test_baselines_use_the_same_gpus_and_are_placeable(baseline) -> None:  # type: ignore[no-untyped-def]
    p = mix()
    plan = baseline(p)
    assert plan.gpus_total == 8
    assert plan.gpus_used <= 8
    counts: dict[int, int] = {}
    for a in plan.allocations:
        size = a.shape.units
        counts[size] = counts.get(size, 0) + a.replicas
    assert first_fit_decreasing(counts, p.cluster, "G") == 0
    assert plan.solver.objective == pytest.approx(mean_latency_s(p, plan.allocations))


@pytest.mark.parametrize("baseline", [uniform_plan, independent_plan, greedy_plan])
def test_baselines_stay_on_the_gpus_when_demand_outgrows_them(baseline) -> None:  # type: ignore[no-untyped-def]
    # Each model sized alone wants more than half the cluster: together they overflow it,
    # and the baseline must still be an allocation of these 8 GPUs (trimmed, not grown).
    a = model("a", [shape("a", tp=t, capacity=10 * t**0.8, base_s=1 / t**0.5) for t in (1, 2, 4)])
    b = model("b", [shape("b", fraction=f, capacity=8 * f, base_s=0.8) for f in (1.0, 0.5, 0.25)])
    p = problem([a, b], rate=40.0, cl=cluster(gpus_per_node=8))
    plan = baseline(p)
    assert 0 < plan.gpus_used <= 8
    assert {a.model for a in plan.allocations if a.replicas} == {"a", "b"}  # trimmed, not dropped
    counts: dict[int, int] = {}
    for alloc in plan.allocations:
        size = alloc.shape.units
        counts[size] = counts.get(size, 0) + alloc.replicas
    assert first_fit_decreasing(counts, p.cluster, "G") == 0


def test_trimming_keeps_every_model_served_when_spares_exist() -> None:
    # 4 + 3 + 2 GPUs on 8: dropping the largest allocation (a single TP-4 replica) would
    # leave its model unserved; one spare replica elsewhere is enough.
    p = mix()
    allocs = [
        Allocation("a", "G", 4, 8, 1),
        Allocation("b", "G", 1, 8, 3),
        Allocation("c", "G", 2, 8, 1),
    ]
    trimmed = trim_to_cluster(p, allocs)
    assert sorted((a.model, a.replicas) for a in trimmed) == [("a", 1), ("b", 2), ("c", 1)]


def test_trimming_shrinks_a_last_replica_before_dropping_it() -> None:
    # A single TP-4 replica and a whole-GPU replica on a 4-GPU node: the TP-4 replica
    # becomes a TP-2 one instead of leaving model "a" unserved.
    a = model("a", [shape("a", tp=t, capacity=10 * t**0.8, base_s=1 / t**0.5) for t in (1, 2, 4)])
    b = model("b", [shape("b", fraction=f, capacity=8 * f, base_s=0.8) for f in (1.0, 0.5, 0.25)])
    p = problem([a, b], cl=cluster(gpus_per_node=4))
    trimmed = trim_to_cluster(p, [Allocation("a", "G", 4, 8, 1), Allocation("b", "G", 1, 8, 1)])
    assert sorted((x.model, x.tp, x.replicas) for x in trimmed) == [
        ("a", 2, 1),
        ("b", 1, 1),
    ]


def test_optimum_is_no_worse_than_any_valid_baseline() -> None:
    p = mix()
    best = search_plan(p, SolveSettings(resolution=0.0)).solver.objective
    for baseline in (uniform_plan, independent_plan, greedy_plan):
        plan = baseline(p)
        if check_plan(p, plan) == ():
            assert best <= plan.solver.objective + 1e-9
    assert check_plan(p, greedy_plan(p)) == ()


def test_uniform_split_gives_each_model_half() -> None:
    plan = uniform_plan(mix())
    assert {a.model: a.gpus for a in plan.allocations} == {"a": 4.0, "b": 4.0}


def _apl() -> AggregatePipeline:
    s = Stats(100.0, 100.0, 100.0)
    m = ModelStats("a", 2.0, 1.0, 1.0, 0.1, s, s)
    flows = tuple(
        WorkflowStats(t, 10, rate, None, Stats(2.0, 2.0, 3.0), 0.5, 0.1, (m,))
        for t, rate in (("rag", 1.0), ("code", 3.0))
    )
    return AggregatePipeline(flows)


def test_total_target_rate_splits_like_the_observed_mix() -> None:
    flows = workflow_demands(_apl(), WorkloadTargets(target_rate_per_s=8.0))
    assert {w.workflow_type: w.rate_per_s for w in flows} == {"rag": 2.0, "code": 6.0}


def test_headroom_and_per_type_rates() -> None:
    flows = workflow_demands(_apl(), WorkloadTargets(headroom=1.5, target_rate_per_s={"rag": 5.0}))
    assert {w.workflow_type: w.rate_per_s for w in flows} == {"rag": 5.0, "code": 4.5}


def test_p95_slo_uses_the_trace_ratio() -> None:
    flows = workflow_demands(_apl(), WorkloadTargets(slo_s={"rag": (4.0, "p95")}))
    rag = next(w for w in flows if w.workflow_type == "rag")
    assert (rag.slo_s, rag.slo_kind, rag.p95_over_mean) == (4.0, "p95", 1.5)


def test_unknown_type_in_slo_is_bad_input() -> None:
    with pytest.raises(InputError, match="known types: code, rag"):
        workflow_demands(_apl(), WorkloadTargets(slo_s={"rgb": (1.0, "mean")}))
