"""The event engine on hand-computable cases, with explicit latency curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from planner.errors import InputError
from planner.simulate import (
    ArrivalSpec,
    Replica,
    ServerCurve,
    compile_workload,
    constant_curve,
    run_engine,
    simulate_workload,
)
from planner.types.calls import CALL_COLUMNS, CallTable


def calls_table(rows: list[dict[str, object]]) -> CallTable:
    """A CallTable from partial rows (missing columns are NaN / defaults)."""
    defaults: dict[str, object] = {
        "workflow_type": "default",
        "kind": "llm",
        "agent": None,
        "call_id": None,
        "parent_call_id": None,
        "input_tokens": 100,
        "output_tokens": 10,
        "cached_input_tokens": np.nan,
        "status": "ok",
        "prefix_hash": None,
    }
    full = [{**defaults, **row} for row in rows]
    frame = pd.DataFrame(full, columns=list(CALL_COLUMNS))
    frame = frame.astype(CALL_COLUMNS)
    return CallTable(frame)


def llm(wf: str, start: float, end: float, model: str = "m", **extra: object) -> dict[str, object]:
    return {"workflow_id": wf, "model": model, "start_s": start, "end_s": end, **extra}


def tool(wf: str, start: float, end: float) -> dict[str, object]:
    return {
        "workflow_id": wf,
        "kind": "tool",
        "model": None,
        "start_s": start,
        "end_s": end,
        "input_tokens": 0,
        "output_tokens": 0,
    }


def run(workload, replicas, arrivals, window=(0.0, 1e9)):  # type: ignore[no-untyped-def]
    arrivals = np.asarray(arrivals, dtype=float)
    order = np.zeros(len(arrivals), dtype=np.int64)
    return run_engine(workload, replicas, arrivals, order, *window)


def latencies(out) -> list[float]:  # type: ignore[no-untyped-def]
    return [round(float(x), 9) for x in out.end_s - out.arrival_s]


def test_single_server_fifo_queueing_matches_hand_computation() -> None:
    # One replica holding one call at a time, 1 s per call, a call every 0.5 s:
    # call k starts at k (the server is the bottleneck) and ends at k + 1.
    w = compile_workload(calls_table([llm("a", 0.0, 3.0)]))
    out = run(w, [Replica(0, constant_curve(1.0, 1))], [0.0, 0.5, 1.0, 1.5])
    assert latencies(out) == [1.0, 1.5, 2.0, 2.5]


def test_chain_latency_is_sum_of_calls_plus_tool_gap() -> None:
    # The traced calls took 3 s and 1 s with a 2 s gap; the simulated replica takes 1 s.
    w = compile_workload(calls_table([llm("a", 0.0, 3.0), llm("a", 5.0, 6.0)]))
    out = run(w, [Replica(0, constant_curve(1.0, 8))], [10.0])
    assert latencies(out) == [4.0]


def test_tool_rows_keep_their_duration() -> None:
    rows = [llm("a", 0.0, 1.0), tool("a", 1.0, 3.5), llm("a", 3.5, 4.0)]
    w = compile_workload(calls_table(rows))
    out = run(w, [Replica(0, constant_curve(2.0, 8))], [0.0])
    assert latencies(out) == [2.0 + 2.5 + 2.0]


def test_fan_out_on_k_replicas_takes_one_call_time() -> None:
    # a -> (b1..b4 in parallel) -> c
    rows = [llm("a", 0.0, 1.0)] + [llm("a", 1.0, 2.0) for _ in range(4)] + [llm("a", 2.0, 3.0)]
    w = compile_workload(calls_table(rows))
    assert w.node_deps.tolist() == [0, 1, 1, 1, 1, 4]
    four = [Replica(0, constant_curve(1.0, 1)) for _ in range(4)]
    assert latencies(run(w, four, [0.0])) == [3.0]
    one = [Replica(0, constant_curve(1.0, 1))]
    assert latencies(run(w, one, [0.0])) == [6.0]


def test_processor_sharing_slows_every_call_in_service() -> None:
    # e2e(n) = n seconds: with n calls in service each progresses at 1/n.
    speed = np.array([0.0, 1.0, 0.5, 1.0 / 3.0])
    curve = ServerCurve(speed, 0.0, 1.0, 1.0, 1.0)
    w = compile_workload(calls_table([llm("a", 0.0, 1.0, output_tokens=1)]))
    # Two calls together: both finish at 2 s.
    assert latencies(run(w, [Replica(0, curve)], [0.0, 0.0])) == [2.0, 2.0]
    # Staggered by 0.5 s: the first has 0.5 s of work left at 0.5, done at 1.5; the
    # second has done 0.5 by then and finishes alone at 2.0.
    assert latencies(run(w, [Replica(0, curve)], [0.0, 0.5])) == [1.5, 1.5]


def test_work_scales_with_tokens() -> None:
    # Mean shape is 100 in / 10 out; prefill 1 s, decode 2 s for that shape.
    rows = [
        llm("a", 0.0, 1.0, input_tokens=50, output_tokens=5),
        llm("b", 0.0, 1.0, input_tokens=150, output_tokens=15),
    ]
    w = compile_workload(calls_table(rows))
    curve = ServerCurve(np.ones(9), 1.0, 2.0, 100.0, 10.0)
    out = run_engine(w, [Replica(0, curve)], np.array([0.0, 10.0]), np.array([0, 1]), 0.0, 1e9)
    assert latencies(out) == [1.5, 4.5]


def test_join_shortest_queue_spreads_calls() -> None:
    w = compile_workload(calls_table([llm("a", 0.0, 1.0)]))
    two = [Replica(0, constant_curve(1.0, 1)), Replica(0, constant_curve(1.0, 1))]
    assert latencies(run(w, two, [0.0, 0.0, 0.0])) == [1.0, 1.0, 2.0]


def test_join_shortest_queue_weighs_capacity() -> None:
    # A replica four times faster takes four calls for every one of the slow replica.
    w = compile_workload(calls_table([llm("a", 0.0, 1.0)]))
    fast, slow = Replica(0, constant_curve(0.25, 1)), Replica(0, constant_curve(1.0, 1))
    out = run(w, [slow, fast], [0.0] * 5)
    assert sorted(latencies(out)) == [0.25, 0.5, 0.75, 1.0, 1.0]


def test_inferred_dependencies_follow_the_frontier() -> None:
    # a; b1, b2 in parallel after a; c after b1 only (b2 still running); d after b2 and c.
    rows = [
        llm("w", 0.0, 1.0),  # 0 a
        llm("w", 1.0, 2.0),  # 1 b1
        llm("w", 1.0, 4.0),  # 2 b2
        llm("w", 2.5, 3.0),  # 3 c
        llm("w", 4.0, 5.0),  # 4 d
    ]
    w = compile_workload(calls_table(rows))
    succ = {i: w.succ[w.succ_start[i] : w.succ_start[i + 1]].tolist() for i in range(w.nodes)}
    assert succ == {0: [1, 2], 1: [3], 2: [4], 3: [4], 4: []}
    assert w.node_delay_s.tolist() == [0.0, 0.0, 0.0, 0.5, 0.0]


def test_parent_ids_take_precedence_over_timestamps() -> None:
    # By timestamps c would follow b; the trace says its parent is a (parallel branches).
    rows = [
        llm("w", 0.0, 1.0, call_id="a"),
        llm("w", 1.0, 1.04, call_id="b", parent_call_id="a"),
        llm("w", 1.05, 2.0, call_id="c", parent_call_id="a"),
    ]
    w = compile_workload(calls_table(rows))
    assert w.node_deps.tolist() == [0, 1, 1]
    assert w.node_delay_s.tolist() == pytest.approx([0.0, 0.0, 0.05])
    out = run(w, [Replica(0, constant_curve(1.0, 8))], [0.0])
    assert latencies(out) == [2.05]  # a (1) + max(b: 1, c: 0.05 s gap + 1)


def test_overload_shows_backlog_growth_and_throughput_at_capacity() -> None:
    w = compile_workload(calls_table([llm("a", 0.0, 1.0), llm("b", 1.0, 2.0)]))
    servers = [Replica(0, constant_curve(1.0, 1))]  # capacity: 1 workflow/s
    over = simulate_workload(w, servers, ArrivalSpec(2.0, workflows=2000), seed=1, warmup_s=50)
    assert over.throughput_per_s == pytest.approx(1.0, rel=0.02)
    assert over.backlog_growth == pytest.approx(0.5, abs=0.03)
    assert not over.sustainable
    under = simulate_workload(w, servers, ArrivalSpec(0.5, workflows=2000), seed=1, warmup_s=50)
    assert under.sustainable
    assert under.throughput_per_s == pytest.approx(0.5, rel=0.1)
    m = under.models[0]
    assert m.utilisation == pytest.approx(0.5, rel=0.1)
    # M/D/1 at load 0.5: mean wait = rho / (2 mu (1 - rho)) = 0.5 s, plus 1 s service.
    assert under.latency_s.mean == pytest.approx(1.5, rel=0.1)


def test_seeded_and_deterministic() -> None:
    w = compile_workload(calls_table([llm("a", 0.0, 1.0), llm("b", 0.5, 2.0)]))
    servers = [Replica(0, constant_curve(1.0, 2))]
    spec = ArrivalSpec(1.0, workflows=300)
    a = simulate_workload(w, servers, spec, seed=7, warmup_s=10)
    b = simulate_workload(w, servers, spec, seed=7, warmup_s=10)
    c = simulate_workload(w, servers, spec, seed=8, warmup_s=10)
    assert a == b
    assert a.latency_s != c.latency_s


def test_warm_up_excluded() -> None:
    w = compile_workload(calls_table([llm("a", 0.0, 1.0), llm("b", 1.0, 2.0)]))
    servers = [Replica(0, constant_curve(1.0, 4))]
    spec = ArrivalSpec(1.0, pattern="trace", workflows=10)  # arrivals at 0, 1, ..., 9
    res = simulate_workload(w, servers, spec, seed=0, warmup_s=4.5)
    assert res.workflows_measured == 5
    assert res.window_s == pytest.approx(4.5)
    with pytest.raises(InputError, match="warm-up"):
        simulate_workload(w, servers, spec, seed=0, warmup_s=9.0)


def test_trace_pattern_is_scaled_to_the_rate() -> None:
    rows = [llm("a", 0.0, 1.0), llm("b", 1.0, 2.0), llm("c", 4.0, 5.0)]
    w = compile_workload(calls_table(rows))
    from planner.simulate.arrivals import arrival_schedule

    times, order = arrival_schedule(w, ArrivalSpec(1.0, pattern="trace", workflows=6), 0)
    # Traced starts 0, 1, 4 (mean gap 2 s) at 1/s: 0, 0.5, 2; the cycle repeats after 3 s.
    assert times.tolist() == [0.0, 0.5, 2.0, 3.0, 3.5, 5.0]
    assert order.tolist() == [0, 1, 2, 0, 1, 2]


def test_barrier_after_a_lineage_parent_waits_for_every_call_ended_since() -> None:
    # Two branches b1 (ends at 2) and b2 (ends at 6); c names b1 as its (lineage) parent
    # but started at 6.01, after b2: it waited at a barrier for both.
    rows = [
        llm("w", 0.0, 1.0, call_id="a"),
        llm("w", 1.0, 2.0, call_id="b1", parent_call_id="a"),
        llm("w", 1.0, 6.0, call_id="b2", parent_call_id="a"),
        llm("w", 6.01, 7.0, call_id="c", parent_call_id="b1"),
    ]
    w = compile_workload(calls_table(rows))
    assert w.node_deps.tolist() == [0, 1, 1, 2]
    assert w.node_delay_s[3] == pytest.approx(0.01)


def test_kv_cache_admits_by_tokens_first_come_first_served() -> None:
    # KV of 1000 tokens; calls of 600, 300 and 500 tokens (input + output) arrive at 0:
    # the first two fit together, the third waits for the first to end (600 + 300 > 1000
    # - 500 until then), and a later small call queues behind it (FCFS).
    rows = [
        llm("a", 0.0, 1.0, input_tokens=590, output_tokens=10),
        llm("b", 0.0, 1.0, input_tokens=290, output_tokens=10),
        llm("c", 0.0, 1.0, input_tokens=490, output_tokens=10),
        llm("d", 0.0, 1.0, input_tokens=40, output_tokens=10),
    ]
    w = compile_workload(calls_table(rows))
    curve = ServerCurve(np.ones(9), 0.0, 1.0, 1.0, 1.0, token_scaled=False, kv_tokens=1000.0)
    out = run_engine(w, [Replica(0, curve)], np.array([0.0, 0.0, 0.0, 0.1]), np.arange(4), 0.0, 1e9)
    # a, b run 0-1; c (500) fits once a ends at 1: 1-2; d (50) arrived at 0.1, queued
    # behind c, admitted with it at 1 (300 + 500 + 50 <= 1000): 1-2.
    assert latencies(out) == [1.0, 1.0, 2.0, 1.9]


def test_replicas_run_up_to_the_profiles_sequence_limit() -> None:
    # vLLM's max-num-seqs on an H100 is 1024 (the catalog's vllm_max_num_seqs): a small
    # model's replica runs more than 256 calls at once, as its profile says.
    from planner.io.configs import load_catalog
    from planner.profiles.analytic import AnalyticProfiles
    from planner.simulate.servers import profile_curve
    from planner.types.shapes import ShapeKey

    profiles = AnalyticProfiles(load_catalog())
    key = ShapeKey("Qwen/Qwen3-Reranker-0.6B", "H100-SXM-80GB", 1, 8)
    n_max = profiles.at_concurrency(key, 500.0, 1.0, 1.0).max_concurrency
    assert n_max > 256
    assert profile_curve(profiles, key, 500.0, 1.0).max_concurrency == int(n_max)
