"""The `planner ingest --json` contract: keys, order, round trip, determinism."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from planner.aggregate import aggregate_pipeline
from planner.cli import app
from planner.io.apl_json import dumps_pipeline, pipeline_from_dict, pipeline_to_dict
from planner.io.traces import read_calls

CSV = (
    "workflow_id,workflow_type,model,start_time,end_time,input_tokens,output_tokens\n"
    "w1,rag,m1,0,2.000000001,10,5\nw1,rag,m2,1,3,20,6\nw2,rag,m1,5,6,30,7\nw3,beam,m2,0,1,1,1\n"
)
WORKFLOW_KEYS = [
    "workflow_type",
    "workflow_count",
    "arrival_rate_per_s",
    "latency_s",
    "llm_time_fraction",
    "models",
]
MODEL_KEYS = [
    "model",
    "calls_per_workflow",
    "parallelism",
    "execution_share",
    "execution_share_cv",
    "input_tokens",
    "output_tokens",
]


def test_contract_keys_come_first_in_order_and_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(CSV)
    apl = aggregate_pipeline(read_calls(path))
    data = json.loads(dumps_pipeline(apl))
    assert list(data)[:2] == ["schema_version", "workflows"] and data["schema_version"] == 1
    for w in data["workflows"]:
        assert list(w)[: len(WORKFLOW_KEYS)] == WORKFLOW_KEYS
        assert list(w)[len(WORKFLOW_KEYS) :] == sorted(list(w)[len(WORKFLOW_KEYS) :])
        for m in w["models"]:
            assert list(m)[: len(MODEL_KEYS)] == MODEL_KEYS
            assert set(m["input_tokens"]) == {"mean", "p50", "p95"}
    assert [w["workflow_type"] for w in data["workflows"]] == ["beam", "rag"]
    assert pipeline_from_dict(data) == apl
    assert pipeline_to_dict(pipeline_from_dict(data)) == data


def test_full_precision_floats(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(CSV)
    data = pipeline_to_dict(aggregate_pipeline(read_calls(path)))
    rag = data["workflows"][1]
    m1 = rag["models"][0]
    assert m1["execution_share"] == (2.000000001 + 1) / (2.000000001 + 1 + 2)


def test_cli_output_is_byte_identical_across_runs(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(CSV)
    outs = []
    for name in ("a.json", "b.json"):
        result = CliRunner().invoke(app, ["ingest", str(path), "-o", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        assert "m1" in result.output  # the readable table
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]
    result = CliRunner().invoke(app, ["ingest", str(path), "--json"])
    assert result.output.encode() == outs[0]
