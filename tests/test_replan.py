from __future__ import annotations

from dataclasses import replace

import pytest
from deploy_helpers import H100, make_plan

from planner.replan import ReplanPolicy, decide_replan, improvement
from planner.types.plan import Allocation, Plan, WorkflowPrediction
from planner.types.shapes import share_eighths

BUDGET = {H100: 8}


def with_latency(plan: Plan, latency_s: float) -> Plan:
    return replace(plan, workflows=(WorkflowPrediction("default", 1.0, 2.0, latency_s),))


def a(model: str, replicas: int, tp: int = 1, fraction: float = 1.0) -> Allocation:
    return Allocation(model, H100, tp, share_eighths(fraction), replicas)


def test_first_run_applies_everything() -> None:
    proposed = make_plan(a("x", 3), a("y", 1, tp=2))
    d = decide_replan(None, proposed, BUDGET)
    assert d.apply and d.reason == "no plan is running"
    assert d.allocations == tuple(sorted(proposed.allocations))


def test_small_gain_keeps_the_running_plan() -> None:
    current = with_latency(make_plan(a("x", 2)), 10.0)
    proposed = with_latency(make_plan(a("x", 3)), 9.5)  # 5 % better, margin 10 %
    d = decide_replan(current, proposed, BUDGET)
    assert not d.apply
    assert d.allocations == (a("x", 2),)
    assert "only 5.0% better" in d.log_line()


def test_big_gain_applies() -> None:
    current = with_latency(make_plan(a("x", 2)), 10.0)
    proposed = with_latency(make_plan(a("x", 3)), 8.0)
    d = decide_replan(current, proposed, BUDGET)
    assert d.apply and "20.0% better on min-latency" in d.reason
    assert d.allocations == (a("x", 3),)
    assert d.log_line().startswith("replan: apply: the new plan is 20.0% better")


def test_unsustained_load_applies_even_without_gain() -> None:
    current = with_latency(make_plan(a("x", 2), capacity={"x": 0.5}), 10.0)
    proposed = with_latency(make_plan(a("x", 3)), 10.0)  # demand 1.0/s > 0.5/s capacity
    d = decide_replan(current, proposed, BUDGET)
    assert d.apply
    assert "no longer sustains the load (x demand 1/s > capacity 0.5/s)" in d.reason


def test_cap_scale_up_first_then_down_in_later_runs() -> None:
    # Move 4 replicas from y to x with at most 3 changes per run, on an 8-GPU budget
    # that has 2 GPUs free.
    current = with_latency(make_plan(a("x", 2), a("y", 4)), 10.0)
    proposed = with_latency(make_plan(a("x", 6)), 5.0)
    policy = ReplanPolicy(margin=0.1, max_replica_changes=3)
    d1 = decide_replan(current, proposed, BUDGET, policy)
    # Two scale-ups fit the free GPUs; the third needs a GPU, so one y goes first.
    assert d1.allocations == (a("x", 4), a("y", 3))
    assert [c.text() for c in d1.scale_up] == ["+2 x (H100-SXM-80GB tp1 x1)"]
    assert [c.text() for c in d1.scale_down] == ["-1 y (H100-SXM-80GB tp1 x1)"]
    assert d1.deferred_changes == 5
    assert "5 replica change(s) deferred" in d1.log_line()
    # Next run continues from what runs now.
    d2 = decide_replan(replace(current, allocations=d1.allocations), proposed, BUDGET, policy)
    # One GPU free: +1 x, then -1 y to make room for the last +1 x.
    assert d2.allocations == (a("x", 6), a("y", 2))
    d3 = decide_replan(replace(current, allocations=d2.allocations), proposed, BUDGET, policy)
    assert d3.allocations == (a("x", 6),) and d3.complete


def test_scale_downs_wait_for_scale_ups() -> None:
    current = with_latency(make_plan(a("x", 1), a("y", 2)), 10.0)
    proposed = with_latency(make_plan(a("x", 3), a("y", 1)), 5.0)
    d = decide_replan(current, proposed, BUDGET, ReplanPolicy(max_replica_changes=2))
    assert d.allocations == (a("x", 3), a("y", 2))  # both changes spent on scale-ups
    assert d.scale_down == () and d.deferred_changes == 1


def test_budget_blocks_all_moves() -> None:
    current = with_latency(make_plan(a("x", 8), capacity={"x": 0.1}), 10.0)
    proposed = with_latency(make_plan(a("x", 8), a("z", 1, tp=2)), 5.0)
    d = decide_replan(current, proposed, BUDGET)
    assert not d.apply and "no replica can move within the GPU budget" in d.reason


def test_pipeline_and_data_parallel_replicas_count_all_their_gpus() -> None:
    # One TP 4 x PP 2 replica takes all 8 GPUs: a second must wait for GPUs to free.
    staged = Allocation("x", H100, 4, 8, 1, pp=2)
    current = with_latency(make_plan(staged, capacity={"x": 0.1}), 10.0)
    proposed = with_latency(make_plan(replace(staged, replicas=2)), 5.0)
    d = decide_replan(current, proposed, BUDGET)
    assert not d.apply and "no replica can move within the GPU budget" in d.reason
    # Four GPUs free: one TP 2 x DP 2 replica (4 GPUs) fits, a second does not.
    wide = Allocation("m", H100, 2, 8, 1, expert_parallel=True, dp=2)
    current = with_latency(make_plan(a("x", 4), capacity={"x": 0.1}), 10.0)
    proposed = with_latency(make_plan(replace(wide, replicas=2), a("x", 4)), 5.0)
    d = decide_replan(current, proposed, BUDGET)
    assert d.allocations == (wide, a("x", 4)) and d.deferred_changes == 1


@pytest.mark.parametrize(
    ("objective", "expected"),
    [("min-gpus", 0.5), ("max-throughput", 1.0), ("min-latency", 0.5)],
)
def test_improvement_per_objective(objective: str, expected: float) -> None:
    cur = replace(
        make_plan(a("x", 4)),
        objective=objective,  # type: ignore[arg-type]
        workflows=(WorkflowPrediction("w", 1.0, 2.0, 10.0),),
    )
    new = replace(
        make_plan(a("x", 2)),
        objective=objective,  # type: ignore[arg-type]
        workflows=(WorkflowPrediction("w", 1.0, 4.0, 5.0),),
    )
    assert improvement(cur, new) == pytest.approx(expected)


def test_recent_window_keeps_whole_recent_workflows() -> None:
    import pandas as pd

    from planner.replan import recent_window
    from planner.types.calls import CallTable

    frame = pd.DataFrame(
        {
            "workflow_id": pd.Categorical(["old", "old", "edge", "edge", "new"]),
            "start_s": [0.0, 500.0, 390.0, 420.0, 1000.0],
        }
    )
    got = recent_window(CallTable(frame), 600.0)  # keep workflows starting at >= 400 s
    assert list(got.frame["workflow_id"]) == ["new"]
    got = recent_window(CallTable(frame), 610.0)  # edge starts at 390 s: kept whole
    assert list(got.frame["workflow_id"]) == ["edge", "edge", "new"]


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("6h", 21600), ("2d", 172800), ("45", 45)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    from planner.replan import parse_duration_s

    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "-1h", "1w"])
def test_parse_duration_rejects(text: str) -> None:
    from planner.errors import InputError
    from planner.replan import parse_duration_s

    with pytest.raises(InputError):
        parse_duration_s(text)


def test_max_utilisation_threshold() -> None:
    current = with_latency(make_plan(a("x", 2), capacity={"x": 1.2}), 10.0)
    proposed = with_latency(make_plan(a("x", 3)), 10.0)  # demand 1.0/s
    assert not decide_replan(current, proposed, BUDGET).apply  # 83 % of capacity: fine
    strict = ReplanPolicy(max_utilisation=0.8)
    d = decide_replan(current, proposed, BUDGET, strict)
    assert d.apply and "capacity 0.96/s" in d.reason
