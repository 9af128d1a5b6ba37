"""OpenTelemetry GenAI spans in OTLP/JSON, both attribute naming generations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.aggregate import aggregate_pipeline
from planner.errors import InputError
from planner.io.traces import read_calls

S = 1_000_000_000  # nanoseconds per second
BASE = 1_700_000_000 * S


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}  # int64 as a JSON string
    return {"key": key, "value": {"stringValue": value}}


def _span(
    trace: str, span: str, parent: str, name: str, start: float, end: float, **attrs: Any
) -> dict[str, Any]:
    links = attrs.pop("links", None)
    error = attrs.pop("error", False)
    record: dict[str, Any] = {
        "traceId": trace,
        "spanId": span,
        "name": name,
        "kind": 3,
        "startTimeUnixNano": str(BASE + int(start * S)),
        "endTimeUnixNano": str(BASE + int(end * S)),
        "attributes": [_attr(k.replace("__", "."), v) for k, v in attrs.items()],
    }
    if parent:
        record["parentSpanId"] = parent
    if error:
        record["status"] = {"code": 2}
    if links:
        record["links"] = links
    return record


def _export(spans: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": []},
                "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}],
            }
        ]
    }


def _current() -> list[dict[str, Any]]:
    """A research workflow: planner agent -> chat m1, a tool, writer agent -> chat m2 that
    itself calls chat m1 (an LLM-to-LLM dependency); plus an HTTP span that is ignored."""
    t = "a" * 32
    return [
        _span(
            t,
            "w",
            "",
            "invoke_workflow research",
            0,
            6,
            gen_ai__operation__name="invoke_workflow",
            gen_ai__workflow__name="research",
        ),
        _span(
            t,
            "p",
            "w",
            "invoke_agent planner",
            0,
            2,
            gen_ai__operation__name="invoke_agent",
            gen_ai__agent__name="planner",
        ),
        _span(
            t,
            "c1",
            "p",
            "chat m1",
            0,
            2,
            gen_ai__operation__name="chat",
            gen_ai__request__model="m1",
            gen_ai__response__model="m1-2024",
            gen_ai__usage__input_tokens=100,
            gen_ai__usage__output_tokens=10,
            gen_ai__usage__cache_read__input_tokens=40,
        ),
        _span(
            t,
            "tl",
            "w",
            "execute_tool search",
            2,
            3,
            gen_ai__operation__name="execute_tool",
            gen_ai__tool__name="search",
        ),
        _span(t, "h", "tl", "GET /search", 2, 3, http__method="GET"),
        _span(
            t,
            "r",
            "w",
            "invoke_agent writer",
            3,
            6,
            gen_ai__operation__name="invoke_agent",
            gen_ai__agent__name="writer",
        ),
        _span(
            t,
            "c2",
            "r",
            "chat m2",
            3,
            6,
            gen_ai__operation__name="chat",
            gen_ai__request__model="m2",
            gen_ai__usage__input_tokens=200,
            gen_ai__usage__output_tokens=20,
            links=[{"traceId": t, "spanId": "tl"}],  # waited for the search tool
        ),
        _span(
            t,
            "c3",
            "c2",
            "chat m1",
            4,
            5,
            gen_ai__operation__name="chat",
            gen_ai__request__model="m1",
            gen_ai__usage__input_tokens=50,
            gen_ai__usage__output_tokens=5,
        ),
    ]


def test_current_attribute_names_one_export_per_file(tmp_path: Path) -> None:
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(_export(_current()), indent=2))
    frame = read_calls(path).frame
    assert list(frame["kind"]) == ["llm", "tool", "llm", "llm"]  # ordered by start time
    assert list(frame["model"].astype(object).fillna("-")) == ["m1", "-", "m2", "m1"]
    assert list(frame["agent"].astype(object).fillna("-")) == [
        "planner",
        "search",
        "writer",
        "writer",
    ]
    assert set(frame["workflow_id"]) == {"a" * 32} and set(frame["workflow_type"]) == {"research"}
    assert list(frame["input_tokens"]) == [100, 0, 200, 50]
    assert frame["cached_input_tokens"].iloc[0] == 40
    # c3's parent span is the LLM call c2; c2 links to the tool call it waited for.
    assert list(frame["parent_call_id"].astype(object).fillna("-")) == ["-", "-", "tl", "c2"]
    assert list(frame["end_s"] - frame["start_s"]) == pytest.approx([2, 1, 3, 1])
    assert frame["start_s"].iloc[0] == pytest.approx(1_700_000_000.0)

    research = aggregate_pipeline(read_calls(path)).workflows[0]
    m1, m2 = research.model("m1"), research.model("m2")
    assert m1 is not None and m2 is not None
    assert (m1.calls_per_workflow, m2.calls_per_workflow) == (2.0, 1.0)
    assert m1.execution_share == pytest.approx(3 / 6)
    assert research.characterisation["tool_time_share"] == pytest.approx(1 / 6)
    assert research.characterisation["call_graph_depth"]["max"] == 3  # tl -> c2 -> c3
    assert research.characterisation["max_fanout"]["max"] == 2


def _older() -> list[dict[str, Any]]:
    """Older instrumentation: gen_ai.system, prompt/completion tokens, no operation name;
    two traces of one conversation form one workflow."""
    return [
        _span(
            "b" * 32,
            "o1",
            "",
            "openai.chat",
            0,
            1,
            gen_ai__system="openai",
            gen_ai__request__model="m3",
            gen_ai__usage__prompt_tokens=7,
            gen_ai__usage__completion_tokens=3,
            gen_ai__conversation__id="conv-1",
        ),
        _span(
            "c" * 32,
            "o2",
            "",
            "openai.chat",
            5,
            7,
            gen_ai__system="openai",
            gen_ai__request__model="m3",
            gen_ai__usage__prompt_tokens=9,
            gen_ai__usage__completion_tokens=4,
            gen_ai__conversation__id="conv-1",
            error=True,
        ),
    ]


def test_older_attribute_names_one_export_per_line(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    path.write_text("".join(json.dumps(_export([s])) + "\n" for s in _older()))
    calls = read_calls(path)
    frame = calls.frame
    assert list(frame["workflow_id"]) == ["conv-1", "conv-1"]
    assert list(frame["input_tokens"]) == [7, 9] and list(frame["output_tokens"]) == [3, 4]
    assert list(frame["status"]) == ["ok", "error"]
    model = aggregate_pipeline(calls).workflows[0].models[0]
    assert (model.model, model.calls_per_workflow, model.error_count) == ("m3", 2.0, 1)


def test_otlp_and_canonical_files_mix_in_a_directory(tmp_path: Path) -> None:
    (tmp_path / "a_spans.json").write_text(json.dumps(_export(_current())))
    (tmp_path / "b.csv").write_text(
        "workflow_id,workflow_type,model,start_time,end_time,input_tokens,output_tokens\n"
        "x,research,m1,0,1,1,1\n"
    )
    apl = aggregate_pipeline(read_calls(tmp_path))
    assert apl.workflows[0].workflow_count == 2


def test_llm_span_without_tokens_names_the_attribute(tmp_path: Path) -> None:
    spans = _current()
    spans[2]["attributes"] = [a for a in spans[2]["attributes"] if "input_tokens" not in a["key"]]
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(_export(spans)))
    with pytest.raises(
        InputError, match=r"spans.json, span c1 \(trace a+\), column 'gen_ai.usage.input_tokens'"
    ):
        read_calls(path)


def test_a_trace_split_over_two_export_files_is_resolved_together(tmp_path: Path) -> None:
    spans = _current()
    structure = [s for s in spans if s["spanId"] in ("w", "p", "r", "tl")]
    calls = [s for s in spans if s not in structure]
    (tmp_path / "1.json").write_text(json.dumps(_export(calls)))
    (tmp_path / "2.json").write_text(json.dumps(_export(structure)))
    frame = read_calls(tmp_path).frame
    llm = frame[frame["kind"] == "llm"]
    assert list(llm["agent"]) == ["planner", "writer", "writer"]
    assert set(frame["workflow_type"]) == {"research"}


def test_workflow_name_from_resource_attributes(tmp_path: Path) -> None:
    export = _export(_older()[:1])
    export["resourceSpans"][0]["resource"]["attributes"] = [_attr("gen_ai.workflow.name", "qa")]
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(export))
    assert list(read_calls(path).frame["workflow_type"]) == ["qa"]


def test_export_without_genai_spans_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(_export([_span("d" * 32, "h", "", "GET /", 0, 1)])))
    with pytest.raises(InputError, match=r"spans.json: no LLM or tool spans"):
        read_calls(path)


def test_cache_reads_above_input_tokens_are_accepted_in_spans(tmp_path: Path) -> None:
    # Some instrumentations report input tokens without the cache reads.
    spans = _current()
    for attribute in spans[2]["attributes"]:
        if attribute["key"] == "gen_ai.usage.cache_read.input_tokens":
            attribute["value"] = {"intValue": "500"}
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(_export(spans)))
    assert read_calls(path).frame["cached_input_tokens"].iloc[0] == 500


CALLS = st.lists(
    st.tuples(
        st.integers(0, 4),  # workflow
        st.sampled_from(["m1", "m2", "tool"]),
        st.integers(0, 50),  # start, in 100 ms steps
        st.integers(0, 30),  # duration, in 100 ms steps
        st.booleans(),  # older attribute names
    ),
    min_size=1,
    max_size=25,
    # Two LLM rows equal in every column are a duplicated call (an input error).
    unique_by=lambda c: c[:4] if c[1] != "tool" else c,
)


@settings(max_examples=25, deadline=None)
@given(CALLS)
def test_spans_and_canonical_rows_give_the_same_pipeline(
    tmp_path_factory: pytest.TempPathFactory, calls: list[tuple[int, str, int, int, bool]]
) -> None:
    folder = tmp_path_factory.mktemp("same")
    lines = ["workflow_id,workflow_type,kind,model,start_time,end_time,input_tokens,output_tokens"]
    spans = []
    for i, (w, model, start, duration, older) in enumerate(calls):
        t0, t1 = start / 10, (start + duration) / 10
        trace = f"{w:032x}"
        kind = "tool" if model == "tool" else "llm"
        lines.append(
            f"{trace},type{w % 2},{kind},{'' if kind == 'tool' else model},{t0},{t1},"
            f"{0 if kind == 'tool' else 10 + i},{0 if kind == 'tool' else 1 + i}"
        )
        if kind == "tool":
            attrs = {"gen_ai__operation__name": "execute_tool", "gen_ai__tool__name": "t"}
        elif older:
            attrs = {
                "gen_ai__system": "x",
                "gen_ai__request__model": model,
                "gen_ai__usage__prompt_tokens": 10 + i,
                "gen_ai__usage__completion_tokens": 1 + i,
            }
        else:
            attrs = {
                "gen_ai__operation__name": "chat",
                "gen_ai__request__model": model,
                "gen_ai__usage__input_tokens": 10 + i,
                "gen_ai__usage__output_tokens": 1 + i,
            }
        spans.append(_span(trace, f"s{i}", f"root{w}", f"op {i}", t0, t1, **attrs))
    for w in {c[0] for c in calls}:
        spans.append(
            _span(
                f"{w:032x}",
                f"root{w}",
                "",
                "invoke_workflow",
                0,
                0,
                gen_ai__operation__name="invoke_workflow",
                gen_ai__workflow__name=f"type{w % 2}",
            )
        )
    (folder / "calls.csv").write_text("\n".join(lines) + "\n")
    (folder / "spans.jsonl").write_text("".join(json.dumps(_export([s])) + "\n" for s in spans))
    csv_apl = aggregate_pipeline(read_calls(folder / "calls.csv"))
    span_apl = aggregate_pipeline(read_calls(folder / "spans.jsonl"))
    assert [w.workflow_type for w in csv_apl.workflows] == [
        w.workflow_type for w in span_apl.workflows
    ]
    for a, b in zip(csv_apl.workflows, span_apl.workflows, strict=True):
        assert a.workflow_count == b.workflow_count
        assert [m.model for m in a.models] == [m.model for m in b.models]
        for ma, mb in zip(a.models, b.models, strict=True):
            for key in (
                "calls_per_workflow",
                "parallelism",
                "execution_share",
                "execution_share_cv",
            ):
                va, vb = getattr(ma, key), getattr(mb, key)
                # Epoch seconds in float64 resolve 0.24 us: 0.1 s calls agree to ~1e-6.
                assert va == pytest.approx(vb, rel=1e-5, abs=1e-9, nan_ok=True), key
            assert ma.input_tokens == mb.input_tokens
