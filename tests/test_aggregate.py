"""The Aggregate LLM Pipeline's definitions, pinned on hand-computed cases and checked
against a naive independent implementation on random traces."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.aggregate import aggregate_pipeline
from planner.io.traces import read_calls
from planner.types.apl import AggregatePipeline

HEADER = (
    "workflow_id,workflow_type,kind,model,start_time,end_time,input_tokens,output_tokens,"
    "cached_input_tokens,status,call_id,parent_call_id,agent\n"
)
# Type a: w1 has overlapping m1 calls, an m2 call and a tool; w2 one failed m1 call;
# w3 only a tool (calls no model). Type b: w4 one retried m1 call.
ROWS = """\
w1,a,llm,m1,0,4,10,1,,ok,c1,,planner
w1,a,llm,m1,1,3,20,2,,ok,c2,c1,planner
w1,a,llm,m2,4,6,30,3,,ok,c3,c2,coder
w1,a,tool,,6,8,,,,ok,t1,,
w2,a,llm,m1,10,12,100,4,50,error,c4,,planner
w3,a,tool,,20,25,,,,ok,t2,,
w4,b,llm,m1,0,1,5,5,,retry,c5,,
"""


@pytest.fixture()
def apl(tmp_path: Path) -> AggregatePipeline:
    path = tmp_path / "calls.csv"
    path.write_text(HEADER + ROWS)
    return aggregate_pipeline(read_calls(path))


def test_workflow_types_sorted_and_counted(apl: AggregatePipeline) -> None:
    assert [w.workflow_type for w in apl.workflows] == ["a", "b"]
    assert [w.workflow_count for w in apl.workflows] == [3, 1]


def test_calls_per_workflow_counts_workflows_without_the_model(apl: AggregatePipeline) -> None:
    a = apl.workflows[0]
    m1, m2 = a.model("m1"), a.model("m2")
    assert m1 is not None and m2 is not None
    assert m1.calls_per_workflow == pytest.approx(3 / 3)  # the error call counts
    assert m2.calls_per_workflow == pytest.approx(1 / 3)


def test_parallelism_is_mean_over_calling_workflows(apl: AggregatePipeline) -> None:
    a = apl.workflows[0]
    # w1: m1 busy 4 + 2 = 6 s over union [0, 4) = 4 s -> 1.5; w2: 1.0; w3 does not call.
    assert a.model("m1").parallelism == pytest.approx((1.5 + 1.0) / 2)  # type: ignore[union-attr]
    assert a.model("m2").parallelism == pytest.approx(1.0)  # type: ignore[union-attr]


def test_execution_share_is_aggregate_ratio_and_cv_counts_absent_model_as_zero(
    apl: AggregatePipeline,
) -> None:
    a = apl.workflows[0]
    m1, m2 = a.model("m1"), a.model("m2")
    assert m1 is not None and m2 is not None
    assert m1.execution_share == pytest.approx(8 / 10)
    assert m2.execution_share == pytest.approx(2 / 10)
    # Per-workflow shares over w1, w2 (w3 has no LLM time): m1 .75, 1.0; m2 .25, 0.
    assert m1.execution_share_cv == pytest.approx(0.125 / 0.875)
    assert m2.execution_share_cv == pytest.approx(1.0)


def test_workflow_level_rates_latency_and_llm_fraction(apl: AggregatePipeline) -> None:
    a, b = apl.workflows
    assert a.arrival_rate_per_s == pytest.approx(3 / 20)
    assert b.arrival_rate_per_s is None  # one workflow
    assert a.peak_rate_per_s == pytest.approx(3 / 60)
    assert a.latency_s is not None
    assert (a.latency_s.mean, a.latency_s.p50) == pytest.approx((5.0, 5.0))  # walls 8, 2, 5
    assert a.llm_time_fraction == pytest.approx((6 + 2 + 0) / (8 + 2 + 5))
    assert a.non_llm_time_s == pytest.approx(((8 - 6) + 0 + 5) / 3)


def test_tokens_errors_and_retries(apl: AggregatePipeline) -> None:
    a, b = apl.workflows
    m1 = a.model("m1")
    assert m1 is not None
    assert (m1.input_tokens.mean, m1.input_tokens.p50) == pytest.approx(((10 + 20 + 100) / 3, 20))
    assert m1.input_tokens.p95 == pytest.approx(np.percentile([10, 20, 100], 95))
    assert m1.cached_input_tokens is not None and m1.cached_input_tokens.mean == 50
    assert (m1.error_count, m1.retry_count) == (1, 0)
    assert b.models[0].retry_count == 1
    assert m1.mean_call_latency_s == pytest.approx((4 + 2 + 2) / 3)


def test_characterisation(apl: AggregatePipeline) -> None:
    c = apl.workflows[0].characterisation
    assert c["calls_per_workflow"]["mean"] == pytest.approx(4 / 3)
    assert c["calls_per_workflow"]["max"] == 3
    assert c["calls_per_workflow_histogram"] == {"0": 1, "1": 1, "3": 1}
    assert c["max_fanout"] == {"max": 2, "mean": pytest.approx(1.0)}  # 2, 1, 0
    assert c["call_graph_depth"]["max"] == 3  # c1 -> c2 -> c3
    assert c["tool_time_share"] == pytest.approx((2 + 5) / 15)
    assert c["tool_calls_per_workflow"] == pytest.approx(2 / 3)
    assert (c["error_calls"], c["retry_calls"]) == (1, 0)
    assert c["prefix_reuse"]["cached_input_fraction"] == pytest.approx(0.5)
    assert c["calls_by_agent"] == {"coder": 1, "planner": 3}


def test_touching_calls_do_not_overlap(tmp_path: Path) -> None:
    path = tmp_path / "seq.csv"
    path.write_text(HEADER + "w,a,llm,m,0,1,1,1,,ok,,,\nw,a,llm,m,1,2,1,1,,ok,,,\n")
    apl = aggregate_pipeline(read_calls(path))
    assert apl.workflows[0].models[0].parallelism == pytest.approx(1.0)
    assert apl.workflows[0].characterisation["max_fanout"]["max"] == 1


# --- an independent, loop-by-loop implementation of the definitions --------------------


def _naive(frame: pd.DataFrame) -> dict[tuple[str, str], tuple[float, float, float]]:
    out = {}
    for wtype, of_type in frame.groupby("workflow_type", observed=True):
        workflows = list(of_type.groupby("workflow_id", observed=True))
        llm = of_type[of_type["kind"] == "llm"]
        total = float((llm["end_s"] - llm["start_s"]).sum())
        for model in sorted(llm["model"].dropna().unique()):
            calls = llm[llm["model"] == model]
            ratios = []
            for _, wf_calls in calls.groupby("workflow_id", observed=True):
                intervals = sorted(zip(wf_calls["start_s"], wf_calls["end_s"], strict=True))
                busy = sum(e - s for s, e in intervals)
                union, cur_s, cur_e = 0.0, None, None
                for s, e in intervals:
                    if cur_e is None or s > cur_e:
                        union += 0 if cur_e is None else cur_e - cur_s
                        cur_s, cur_e = s, e
                    else:
                        cur_e = max(cur_e, e)
                union += cur_e - cur_s
                ratios.append(busy / union if union > 0 else 1.0)
            share = float((calls["end_s"] - calls["start_s"]).sum()) / total
            out[(str(wtype), str(model))] = (
                len(calls) / len(workflows),
                float(np.mean(ratios)),
                share,
            )
    return out


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 5),  # workflow
            st.sampled_from(["m1", "m2", "m3"]),
            st.integers(0, 20),  # start
            st.integers(1, 10),  # duration
        ),
        min_size=1,
        max_size=40,
        unique=True,  # ingest rejects exact repeats of a row (a call counted twice)
    )
)
def test_matches_naive_implementation(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[int, str, int, int]]
) -> None:
    path = tmp_path_factory.mktemp("h") / "calls.csv"
    # 100 output tokens per call keeps 10-100 ms per token: seconds, as ingest checks.
    lines = [f"w{w},t{w % 2},llm,{m},{s},{s + d},1,100,,ok,,,\n" for w, m, s, d in rows]
    path.write_text(HEADER + "".join(lines))
    calls = read_calls(path)
    apl = aggregate_pipeline(calls)
    expected = _naive(calls.frame)
    got = {
        (w.workflow_type, m.model): (m.calls_per_workflow, m.parallelism, m.execution_share)
        for w in apl.workflows
        for m in w.models
    }
    assert got.keys() == expected.keys()
    for key, values in expected.items():
        assert got[key] == pytest.approx(values, rel=1e-9), key
    for w in apl.workflows:
        assert math.isclose(sum(m.execution_share for m in w.models), 1.0)
        assert all(m.parallelism >= 1.0 - 1e-12 for m in w.models)


def test_histogram_bins_when_counts_spread() -> None:
    from planner.aggregate.characterise import _histogram

    assert _histogram(np.arange(0, 40)) == {f"{2 * i}-{2 * i + 1}": 2 for i in range(20)}


def test_burst_sizes_group_calls_starting_together(tmp_path: Path) -> None:
    # w1: three m1 calls dispatched together (within 0.1 s) and one later; w2: one call.
    rows = """\
w1,a,llm,m1,0.00,2,10,1,,ok,c1,,x
w1,a,llm,m1,0.05,3,10,1,,ok,c2,,x
w1,a,llm,m1,0.12,2,10,1,,ok,c3,,x
w1,a,llm,m1,5.00,6,10,1,,ok,c4,c2,x
w2,a,llm,m1,0.00,1,10,1,,ok,c5,,x
"""
    path = tmp_path / "calls.csv"
    path.write_text(HEADER + rows)
    m1 = aggregate_pipeline(read_calls(path)).workflows[0].model("m1")
    assert m1 is not None
    # calls in bursts of 3, 3, 3, 1, 1: mean burst a call arrives in (9 + 2) / 5
    assert m1.burst_calls == pytest.approx(11 / 5)
    # bursts per workflow of the type: size 1 twice, size 3 once, over 2 workflows
    assert m1.burst_sizes == ((1, pytest.approx(1.0)), (3, pytest.approx(0.5)))
