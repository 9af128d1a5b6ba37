"""The objectives beyond plain latency: the lexicographic default, min-cost with prices,
max-throughput below the target load."""

from __future__ import annotations

import pytest
from search_factory import model, problem, shape

from planner.search import SearchInfeasible, SolveSettings, search_plan
from planner.search.problem import ModelUse, SearchProblem, WorkflowDemand
from planner.search.validate import check_plan, mean_latency_s
from planner.types.cluster import Cluster, NodePool


def _wide() -> tuple:
    # One light model on 64 GPUs: every extra replica buys a sliver of latency.
    m = model("m", [shape("m", tp=t, capacity=10.0 * t, base_s=1.0 / t**0.3) for t in (1, 2)])
    cl = Cluster((NodePool("p", "G", 8, 8, 8),))
    return m, cl


def test_default_takes_fewest_gpus_within_the_tolerance() -> None:
    m, cl = _wide()
    p = problem([m], rate=4.0, cl=cl)
    fastest = search_plan(p, SolveSettings(latency_tolerance=0.0))
    default = search_plan(p, SolveSettings())
    assert check_plan(p, default) == ()
    lowest = fastest.solver.objective
    assert mean_latency_s(p, default.allocations) <= lowest * 1.01 + 1e-6
    assert default.gpus_used < fastest.gpus_used
    assert default.gpus_free == pytest.approx(64 - default.gpus_used)
    assert [s.stage for s in default.solver.stages] == ["latency", "gpus", "latency-tiebreak"]
    # a wider tolerance never needs more GPUs
    loose = search_plan(p, SolveSettings(latency_tolerance=0.1))
    assert loose.gpus_used <= default.gpus_used


def _priced(slo: float | None) -> tuple:
    fast = shape("m", gpu_type="fast", capacity=10.0, base_s=1.0)
    slow = shape("m", gpu_type="slow", capacity=5.0, base_s=2.0)
    cl = Cluster(
        (
            NodePool("f", "fast", 1, 4, 4, price_per_gpu_hour=4.0, power_w_per_gpu=700),
            NodePool("s", "slow", 1, 4, 4, price_per_gpu_hour=1.0, power_w_per_gpu=350),
        )
    )
    return problem([model("m", [fast, slow])], rate=3.0, cl=cl, slo=slo), cl


def test_min_cost_takes_the_cheaper_slower_type_when_it_meets_the_slo() -> None:
    p, _ = _priced(slo=5.0)
    plan = search_plan(p, SolveSettings(objective="min-cost"))
    assert {a.gpu_type for a in plan.allocations} == {"slow"}
    assert plan.cost_per_hour == pytest.approx(plan.gpus_used * 1.0)
    assert plan.power_kw == pytest.approx(plan.gpus_used * 0.35)
    assert plan.cost_per_1000_workflows == pytest.approx(plan.cost_per_hour / (3.0 * 3.6))


def test_min_cost_pays_for_the_faster_type_when_the_slow_one_misses_the_slo() -> None:
    # slow: idle latency 2 s + 0.5 s tool time reaches the 2.5 s SLO only with no load
    p, _ = _priced(slo=2.5)
    plan = search_plan(p, SolveSettings(objective="min-cost"))
    assert {a.gpu_type for a in plan.allocations} == {"fast"}
    assert check_plan(p, plan) == ()


def test_default_breaks_ties_on_cost_when_prices_are_known() -> None:
    p, _ = _priced(slo=None)
    plan = search_plan(p, SolveSettings(latency_tolerance=1.0))
    # within 2x the lowest latency the slow type is cheaper
    assert {a.gpu_type for a in plan.allocations} == {"slow"}
    assert plan.solver.stages[1].stage == "cost"


def test_min_cost_without_prices_is_bad_input() -> None:
    m, cl = _wide()
    with pytest.raises(Exception, match="price_per_gpu_hour"):
        search_plan(problem([m], rate=1.0, cl=cl), SolveSettings(objective="min-cost"))


def test_max_throughput_below_the_target_reports_the_scale_and_what_is_missing() -> None:
    m = model("m", [shape("m", capacity=10.0)])
    small = Cluster((NodePool("p", "G", 1, 2, 2),))
    p = problem([m], rate=50.0, cl=small)  # needs 6 GPUs at the 0.85 cap
    with pytest.raises(SearchInfeasible):
        search_plan(p)
    plan = search_plan(p, SolveSettings(objective="max-throughput"))
    assert plan.solver.objective == pytest.approx(2 * 10.0 * 0.85 / 50.0, rel=1e-6)
    assert plan.solver.objective < 1
    assert any("scale 1 needs 6 GPUs" in n and "4 missing" in n for n in plan.notes)
    assert [s.stage for s in plan.solver.stages] == ["scale", "latency"]


def test_max_throughput_is_infeasible_only_when_the_models_do_not_fit_at_all() -> None:
    # Each model fits alone; one replica of both takes 3 of the 2 GPUs, at any load.
    a = model("a", [shape("a", tp=2, capacity=10.0)], heads=8)
    b = model("b", [shape("b", tp=1, capacity=10.0)], heads=8)
    small = Cluster((NodePool("p", "G", 1, 2, 2),))
    p = problem([a, b], rate=1.0, cl=small)
    with pytest.raises(SearchInfeasible, match=r"any scale > 0\) needs 3 GPUs"):
        search_plan(p, SolveSettings(objective="max-throughput"))


def _types(rates: dict[str, float], uses: dict[str, str], models: list) -> SearchProblem:
    flows = tuple(
        WorkflowDemand(w, rates[w], (ModelUse(uses[w], 1.0, 1.0),), 0.5) for w in sorted(rates)
    )
    return SearchProblem(flows, tuple(models), Cluster((NodePool("p", "G", 1, 2, 2),)), 0.85)


def test_max_throughput_serves_the_most_workflow_types_that_fit_together() -> None:
    # a takes both GPUs, b one: x (on a) and y, z (on b) cannot all run at once.
    a = model("a", [shape("a", tp=2, capacity=10.0)], heads=8)
    b = model("b", [shape("b", tp=1, capacity=10.0)], heads=8)
    p = _types({"x": 5.0, "y": 1.0, "z": 1.0}, {"x": "a", "y": "b", "z": "b"}, [a, b])
    plan = search_plan(p, SolveSettings(objective="max-throughput"))
    assert [w.workflow_type for w in plan.workflows] == ["y", "z"]  # two types beat one
    assert {al.model for al in plan.allocations} == {"b"}
    assert plan.solver.objective > 1  # y and z alone run above their target rates
    (note,) = [n for n in plan.notes if "not served" in n]
    assert "serves 2 of 3 workflow types; not served: x" in note and "needs 3 GPUs" in note


def test_max_throughput_between_equal_sets_serves_the_higher_rate() -> None:
    a = model("a", [shape("a", tp=2, capacity=10.0)], heads=8)
    b = model("b", [shape("b", tp=1, capacity=10.0)], heads=8)
    p = _types({"x": 5.0, "y": 1.0}, {"x": "a", "y": "b"}, [a, b])
    plan = search_plan(p, SolveSettings(objective="max-throughput"))
    assert [w.workflow_type for w in plan.workflows] == ["x"]


def test_max_throughput_is_infeasible_when_no_workflow_type_runs() -> None:
    big = model("a", [shape("a", tp=2, capacity=10.0, fits=False)], heads=8)
    other = model("b", [shape("b", tp=4, capacity=10.0)], heads=8)  # TP 4 > the 2-GPU node
    p = _types({"x": 1.0, "y": 1.0}, {"x": "a", "y": "b"}, [big, other])
    with pytest.raises(SearchInfeasible):
        search_plan(p, SolveSettings(objective="max-throughput"))


def test_plans_do_not_depend_on_wall_clock() -> None:
    m, cl = _wide()
    n = model("n", [shape("n", tp=t, capacity=6.0 * t, base_s=0.5 / t**0.5) for t in (1, 2, 4)])
    p = problem([m, n], rate=4.0, cl=cl, calls={"m": 1.0, "n": 2.0})
    a = search_plan(p, SolveSettings(time_limit_s=5.0))
    b = search_plan(p, SolveSettings(time_limit_s=5.0))
    assert a.allocations == b.allocations
    assert [s.status for s in a.solver.stages] == [s.status for s in b.solver.stages]


@pytest.mark.parametrize("objective", ["min-latency", "min-gpus", "max-throughput"])
def test_stages_share_one_deterministic_budget(
    objective: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every solve gets at most what the earlier solves of the plan left of the time limit,
    # and the last stage gets all of it: unused time passes on, none is spent twice.
    import planner.search as search
    import planner.search.throughput as throughput

    calls: list[tuple[float, float]] = []  # (budget, deterministic seconds spent)
    real = search.solve_options

    def recording(*args: object, **kwargs: object) -> object:
        result = real(*args, **kwargs)  # type: ignore[arg-type]
        budget = kwargs.get("budget_s", args[4] if len(args) > 4 else None)
        calls.append((float(budget), result.deterministic_s if result else 0.0))  # type: ignore[arg-type, union-attr]
        return result

    monkeypatch.setattr(search, "solve_options", recording)
    monkeypatch.setattr(throughput, "solve_options", recording)
    m, cl = _wide()
    n = model("n", [shape("n", tp=t, capacity=6.0 * t, base_s=0.5 / t**0.5) for t in (1, 2, 4)])
    p = problem([m, n], rate=4.0, cl=cl, calls={"m": 1.0, "n": 2.0})
    total = 7.0
    plan = search_plan(p, SolveSettings(objective=objective, time_limit_s=total))  # type: ignore[arg-type]
    assert plan.allocations  # search_plan ran the validator on it
    assert len(calls) >= 2
    spent = 0.0
    for budget, used in calls:
        assert budget <= total - spent + 1e-9
        spent += used
    assert calls[-1][0] == pytest.approx(total - sum(u for _, u in calls[:-1]))
