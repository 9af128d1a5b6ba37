"""The workload study (`planner characterise`) pinned on hand-computed traces, and run on
the shipped and the real traces."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from planner.cli import app
from planner.io.study_json import SCHEMA_VERSION, dumps_study
from planner.io.traces import load_mapping, read_calls
from planner.study import characterise_workload
from planner.study.graph import sequential_depth
from planner.study.numbers import burstiness
from planner.study.types import PatternLoop, PatternStep, WorkflowStudy, WorkloadStudy

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data" / "traces"

HEADER = (
    "workflow_id,workflow_type,kind,model,agent,start_time,end_time,input_tokens,"
    "output_tokens,cached_input_tokens,status,call_id,parent_call_id\n"
)
# Type "agent" (parent ids): w1 planner -> coder -> tool -> reviewer -> coder (a loop;
# depth 5; the coder's second call carries over its first call's 20 + 5 tokens);
# w2 planner -> coder -> coder (a chain; the second coder call errored, the third retried).
# Type "fan" (no ids): w3 three rerankers (in flight together 1-2 s) then a generator
# after all ended (fan-out/fan-in); w4 two overlapping calls (fan-out); w5 a single call.
ROWS = """\
w1,agent,llm,big,planner,0,2,10,4,5,ok,c1,
w1,agent,llm,mid,coder,3,5,20,5,,ok,c2,c1
w1,agent,tool,,grep,5,7,,,,ok,t1,c2
w1,agent,llm,big,reviewer,8,9,30,6,,ok,c3,t1
w1,agent,llm,mid,coder,9,10,40,7,,ok,c4,c3
w2,agent,llm,big,planner,100,101,10,1,,ok,c5,
w2,agent,llm,mid,coder,101,103,12,2,,error,c6,c5
w2,agent,llm,mid,coder,103,104,12,3,,retry,c7,c6
w3,fan,llm,small,reranker,0,2,8,1,,ok,,
w3,fan,llm,small,reranker,0,3,8,1,,ok,,
w3,fan,llm,small,reranker,1,2,8,1,,ok,,
w3,fan,llm,big,generator,4,5,50,9,,ok,,
w4,fan,llm,small,reranker,10,12,8,1,,ok,,
w4,fan,llm,small,reranker,11,13,8,1,,ok,,
w5,fan,llm,big,generator,30,31,50,9,,ok,,
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> WorkloadStudy:
    path = tmp_path_factory.mktemp("study") / "calls.csv"
    path.write_text(HEADER + ROWS)
    return characterise_workload(read_calls(path))


def _type(study: WorkloadStudy, name: str) -> WorkflowStudy:
    return next(w for w in study.workflows if w.workflow_type == name)


def test_counts_and_calls_per_workflow(study: WorkloadStudy) -> None:
    agent, fan = _type(study, "agent"), _type(study, "fan")
    assert (agent.workflow_count, agent.llm_calls, agent.tool_calls) == (2, 7, 1)
    assert agent.calls_per_workflow.mean == pytest.approx(3.5)  # 4 and 3 LLM calls
    assert fan.calls_per_workflow.max == 4 and fan.calls_per_workflow.min == 1
    assert fan.calls_per_workflow_histogram.counts == (1, 1, 0, 1)  # 1, 2, 3, 4 calls
    assert fan.calls_per_workflow_histogram.edges == (1.0, 2.0, 3.0, 4.0, 5.0)


def test_shapes(study: WorkloadStudy) -> None:
    assert dict(_type(study, "agent").shapes) == {"loop": 1, "chain": 1}
    assert dict(_type(study, "fan").shapes) == {"fan-out/fan-in": 1, "fan-out": 1, "single": 1}


def test_depth_from_parent_ids_and_from_timing(study: WorkloadStudy) -> None:
    agent, fan = _type(study, "agent"), _type(study, "fan")
    assert agent.depth_source == "parent_ids"
    assert (agent.depth.max, agent.depth.min) == (5, 3)  # type: ignore[union-attr]
    # w3: a reranker ending at 2, then the generator (4-5): 2; w4: overlapping: 1; w5: 1.
    assert fan.depth_source == "timing"
    assert sorted([fan.depth.max, fan.depth.min]) == [1, 2]  # type: ignore[union-attr]
    assert fan.max_concurrency.max == 3  # type: ignore[union-attr]
    assert agent.max_children.max == 1  # type: ignore[union-attr]
    assert fan.max_children is None  # no workflow of the type names a parent


def test_time_split_adds_up_to_wall_time(study: WorkloadStudy) -> None:
    agent, fan = _type(study, "agent"), _type(study, "fan")
    # w1: wall 10: LLM [0,2)+[3,5)+[8,10) = 6, tool [5,7) = 2, gaps [2,3)+[7,8) = 2.
    # w2: wall 4, all LLM.
    s = agent.time_split
    assert s is not None
    assert (s.llm_s, s.tool_s, s.orchestration_s) == pytest.approx((5.0, 1.0, 1.0))
    assert s.llm_fraction == pytest.approx(10 / 14)
    assert s.tool_fraction == pytest.approx(2 / 14)
    # w3: LLM [0,3)+[4,5) = 4 of 5; w4: 3 of 3; w5: 1 of 1.
    f = fan.time_split
    assert f is not None and f.orchestration_fraction == pytest.approx(1 / 9)


def test_failures(study: WorkloadStudy) -> None:
    f = _type(study, "agent").failures
    assert (f.error_calls, f.retry_calls) == (1, 1)
    assert f.error_call_fraction == pytest.approx(1 / 7)
    assert f.workflows_with_failures_fraction == pytest.approx(0.5)


def test_prefix_reuse(study: WorkloadStudy) -> None:
    r = _type(study, "agent").prefix_reuse
    assert r.cached_input_fraction == pytest.approx(5 / 10)  # one call reported 5 of 10
    assert r.repeated_prefix_fraction is None
    # Same workflow and role, start order: w1 coder 40 <- 20 + 5 -> 25; w2 coder 12 <- 12
    # + 2 -> 12; over all input 10+20+30+40+10+12+12 = 134.
    assert r.context_carryover_fraction == pytest.approx((25 + 12) / 134)


def test_roles_and_patterns(study: WorkloadStudy) -> None:
    agent = _type(study, "agent")
    roles = {r.role: r for r in agent.roles}
    assert set(roles) == {"coder", "planner", "reviewer"}
    coder = roles["coder"]
    assert coder.calls == 4 and coder.calls_per_workflow == pytest.approx(2.0)
    assert coder.output_token_share == pytest.approx((5 + 7 + 2 + 3) / 28)
    assert coder.latency_share == pytest.approx((2 + 1 + 2 + 1) / 10)
    assert coder.models == ("mid",)
    assert (coder.output_tokens_p10, coder.output_tokens_p90) == pytest.approx(
        np.percentile([5, 7, 2, 3], [10, 90])
    )
    patterns = {p.pattern: p.coverage for p in agent.patterns}
    assert patterns == {
        "planner -> coder -> reviewer -> coder": 0.5,
        "planner -> coder{2}": 0.5,
    }
    fan = _type(study, "fan")
    assert [(p.pattern, p.workflows) for p in fan.patterns] == [
        ("generator", 1),
        ("reranker{2}", 1),
        ("reranker{3} -> generator", 1),
    ]  # equally common: sorted by role sequence


def test_stability_next_to_latency_spread(study: WorkloadStudy) -> None:
    agent = _type(study, "agent")
    walls = np.array([10.0, 4.0])
    assert agent.latency_cv == pytest.approx(walls.std() / walls.mean())
    shares = {m.model: m.execution_share for m in agent.stability}
    assert shares["big"] == pytest.approx((2 + 1 + 1) / 10)


def test_sequential_depth_is_the_longest_non_overlapping_chain() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(1, 9))
        start = rng.integers(0, 10, n).astype(float)
        end = start + rng.integers(0, 4, n)
        best = 0
        for mask in range(1, 2**n):  # brute force: every subset that chains
            chosen = sorted((start[i], end[i]) for i in range(n) if mask >> i & 1)
            if all(a[1] <= b[0] for a, b in itertools.pairwise(chosen)):
                best = max(best, len(chosen))
        got = sequential_depth(np.zeros(n, dtype=np.int64), start, end, 1)
        assert got[0] == best


def test_burstiness_peak_to_mean() -> None:
    starts = np.array([0.0, 0.1, 0.2, 5.0, 10.0])
    (one, ten) = burstiness(starts, (1.0, 10.0))
    assert one.peak_per_window == 3 and one.mean_per_window == pytest.approx(0.5)
    assert one.peak_to_mean == pytest.approx(6.0)
    assert ten.peak_per_window == 4
    assert burstiness(starts, (60.0,)) == ()  # longer than the span


def test_json_contract_and_determinism(study: WorkloadStudy) -> None:
    text = dumps_study(study)
    assert text == dumps_study(study)
    doc = json.loads(text)
    assert doc["schema_version"] == SCHEMA_VERSION
    agent, fan = doc["workflows"]
    assert fan["shapes"] == {"single": 1, "fan-out/fan-in": 1, "fan-out": 1}
    for key in (
        "calls_per_workflow", "max_concurrency", "depth", "time_split", "failures",
        "prefix_reuse", "input_tokens", "output_tokens", "burstiness", "stability",
        "roles", "patterns", "latency_s", "latency_cv",
    ):  # fmt: skip
        assert key in fan
    assert agent["patterns"][0]["pattern"] == "planner -> coder{2}"
    assert agent["patterns"][0]["steps"][1] == {"role": "coder", "min_repeat": 2, "max_repeat": 2}


def test_cli_json_and_file(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(HEADER + ROWS)
    out = tmp_path / "study.json"
    result = CliRunner().invoke(app, ["characterise", str(path), "--json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == json.loads(out.read_text())
    table = CliRunner().invoke(app, ["characterise", str(path)])
    assert table.exit_code == 0 and "path (50%): planner -> coder{2}" in table.output


def test_shipped_traces() -> None:
    study = characterise_workload(read_calls(REPO / "traces"))
    by_type = {w.workflow_type: w for w in study.workflows}
    assert dict(by_type["beam_search"].shapes) == {"tree": 90}
    assert dict(by_type["rag"].shapes) == {"fan-out/fan-in": 900}
    coding = by_type["coding_agent"]
    assert coding.patterns[0].pattern.startswith("planner")
    assert sum(p.coverage for p in coding.patterns) <= 1.0
    assert coding.time_split is not None and coding.time_split.tool_fraction > 0.1


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs the real traces in ../shared/data")
@pytest.mark.parametrize(
    ("trace", "mapping"),
    [
        ("azure_llm_2023_conv.csv", "azure_llm_2023_conv.yaml"),
        ("mooncake_conversation_trace.jsonl", "mooncake_conversation.yaml"),
        ("tracelab_round_trace.jsonl", "tracelab_rounds.yaml"),
    ],
)
def test_real_traces(trace: str, mapping: str) -> None:
    calls = read_calls(SHARED / trace, load_mapping(REPO / "traces" / "mappings" / mapping))
    study = characterise_workload(calls)
    json.loads(dumps_study(study))
    for w in study.workflows:
        assert sum(n for _, n in w.shapes) <= w.workflow_count
        assert w.input_tokens.count == w.llm_calls


def test_loops_fold_into_one_pattern(tmp_path: Path) -> None:
    # w1: a b a b c (the a-b loop twice); w2: a b c (once); w3: a a b a b a b c (three
    # times, the first a twice). One pattern covers all three workflows.
    rows = []
    for wf, roles in (("w1", "ababc"), ("w2", "abc"), ("w3", "aababab" + "c")):
        for i, role in enumerate(roles):
            rows.append(f"{wf},t,llm,m,{role},{i},{i + 1},10,1,,ok,,")
    path = tmp_path / "calls.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    (w,) = characterise_workload(read_calls(path)).workflows
    assert [(p.pattern, p.workflows, p.coverage) for p in w.patterns] == [
        ("(a{1,2} -> b){1,3} -> c", 3, 1.0)
    ]
    (loop, last) = w.patterns[0].steps
    assert isinstance(loop, PatternLoop) and (loop.min_iterations, loop.max_iterations) == (1, 3)
    assert loop.loop[0] == PatternStep("a", 1, 2) and last == PatternStep("c", 1, 1)
    assert dict(w.shapes) == {"loop": 2, "chain": 1}  # w2 runs the loop body once


def test_otlp_spans_feed_roles_tools_and_the_graph(tmp_path: Path) -> None:
    # The research workflow of tests/test_otlp.py: planner chat m1 [0,2), tool [2,3),
    # writer chat m2 [3,6) linked to the tool, and m2 calling m1 [4,5) (a nested call).
    from test_otlp import _current, _export

    path = tmp_path / "spans.json"
    path.write_text(json.dumps(_export(_current())))
    (w,) = characterise_workload(read_calls(path)).workflows
    assert (w.workflow_type, w.llm_calls, w.tool_calls) == ("research", 3, 1)
    s = w.time_split
    assert s is not None
    assert (s.llm_s, s.tool_s, s.orchestration_s) == pytest.approx((5.0, 1.0, 0.0))
    assert (w.depth_source, w.depth.max) == ("parent_ids", 3)  # type: ignore[union-attr]
    assert w.max_children.max == 2  # type: ignore[union-attr]  # two root calls
    assert w.max_concurrency.max == 2  # type: ignore[union-attr]
    assert dict(w.shapes) == {"fan-out": 1}  # the nested call overlaps its caller
    assert [(r.role, r.calls) for r in w.roles] == [("planner", 1), ("writer", 2)]
    assert [p.pattern for p in w.patterns] == ["planner -> writer{2}"]
    assert w.prefix_reuse.cached_input_fraction == pytest.approx(40 / 100)
