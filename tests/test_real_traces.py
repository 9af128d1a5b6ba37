"""The shipped mappings read the real public serving traces in ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.aggregate import aggregate_pipeline
from planner.io.traces import load_mapping, read_calls

CASES = [
    ("azure_llm_2023_code.csv", "azure_llm_2023_code.yaml", 8819),
    ("azure_llm_2023_conv.csv", "azure_llm_2023_conv.yaml", 19366),
    ("mooncake_conversation_trace.jsonl", "mooncake_conversation.yaml", 12031),
]


@pytest.mark.parametrize(("trace", "mapping", "requests"), CASES)
def test_serving_traces(
    shared_data: Path, repo: Path, trace: str, mapping: str, requests: int
) -> None:
    calls = read_calls(
        shared_data / "traces" / trace, load_mapping(repo / "traces" / "mappings" / mapping)
    )
    assert len(calls) == requests and not calls.has_end_times
    apl = aggregate_pipeline(calls)
    (workflow,) = apl.workflows
    (model,) = workflow.models
    assert workflow.workflow_count == requests and workflow.latency_s is None
    assert (model.calls_per_workflow, model.parallelism, model.execution_share) == (1.0, 1.0, 1.0)
    frame = calls.frame
    span = frame["start_s"].max() - frame["start_s"].min()
    assert workflow.arrival_rate_per_s == pytest.approx(requests / span)
    assert 3000 <= span <= 3700  # one hour of arrivals (Mooncake ~ 59 min)
    assert model.input_tokens.mean == pytest.approx(frame["input_tokens"].mean())
    assert any("serving-level" in note for note in apl.notes)


def test_mooncake_prefix_reuse(shared_data: Path, repo: Path) -> None:
    calls = read_calls(
        shared_data / "traces" / "mooncake_conversation_trace.jsonl",
        load_mapping(repo / "traces" / "mappings" / "mooncake_conversation.yaml"),
    )
    reuse = aggregate_pipeline(calls).workflows[0].characterisation["prefix_reuse"]
    first_blocks = calls.frame["prefix_hash"]
    assert reuse["repeated_prefix_fraction"] == pytest.approx(
        1 - first_blocks.nunique() / len(first_blocks)
    )
    assert reuse["repeated_prefix_fraction"] > 0.5  # most requests share a first block


def test_tracelab_coding_agent_rounds(shared_data: Path, repo: Path) -> None:
    calls = read_calls(
        shared_data / "traces" / "tracelab_round_trace.jsonl",
        load_mapping(repo / "traces" / "mappings" / "tracelab_rounds.yaml"),
    )
    assert len(calls) == 19 and calls.has_end_times
    apl = aggregate_pipeline(calls)
    assert [w.workflow_type for w in apl.workflows] == ["claude", "codex"]
    claude, codex = apl.workflows
    assert [m.model for m in claude.models] == ["claude-opus-4-8"]
    assert claude.models[0].calls_per_workflow == 10 and codex.models[0].calls_per_workflow == 9
    assert claude.latency_s is not None and claude.latency_s.mean > 60
    assert 0 < claude.llm_time_fraction < 1  # type: ignore[operator]
    assert claude.characterisation["prefix_reuse"]["cached_input_fraction"] > 0.5
