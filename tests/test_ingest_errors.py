"""Bad input: one line naming file, row and column and the fix; exit code 2; no output."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import invoke
from typer.testing import CliRunner

from planner.cli import app

HEADER = "workflow_id,model,start_time,end_time,input_tokens,output_tokens\n"
GOOD = "w1,m1,0,2,10,5\n"


def _fail(path: Path, *extra: str) -> str:
    """Run `planner ingest` through the CLI and return the expected error's one line."""
    code, stdout, stderr = invoke("ingest", str(path), *extra)
    assert code == 2 and stdout == "", stderr
    (line,) = stderr.strip().splitlines()
    assert line.startswith("Error: ")
    return line.removeprefix("Error: ")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            GOOD + "w2,m1,3,4,abc,5\n",
            r"line 3, column 'input_tokens': not a non-negative whole number \(got 'abc'\)",
        ),
        (
            GOOD + "w2,m1,3,4,-1,5\n",
            r"line 3, column 'input_tokens': not a non-negative whole number \(got '-1'\)",
        ),
        (
            GOOD + "w2,m1,3,4,10,\n",
            r"line 3, column 'output_tokens': not a non-negative whole number "
            r"\(got an empty value\)",
        ),
        (GOOD + "w2,m1,3,4,1.5,5\n", r"line 3, column 'input_tokens'"),
        (GOOD + "w2,m1,3,4,inf,5\n", r"line 3, column 'input_tokens'.*\(got 'inf'\)"),
        (GOOD + "w2,m1,3,inf,1,5\n", r"line 3, column 'end_time': missing or unreadable"),
        (GOOD + "w2,m1,5,4,1,5\n", r"line 3, column 'end_time': before start_time"),
        (
            GOOD + "w2,m1,later,4,1,5\n",
            r"line 3, column 'start_time': missing or unreadable \(got 'later'\)",
        ),
        (GOOD + "w2,,3,4,1,5\n", r"line 3, column 'model': missing"),
        (GOOD + "w2,m1,3,4,1\n", r"line 3: 5 fields where the header has 6"),
    ],
)
def test_bad_rows_name_file_line_and_column(tmp_path: Path, body: str, expected: str) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(HEADER + body)
    message = _fail(path)
    assert message.startswith(f"{path}, ") or message.startswith(f"{path}: ")
    assert re.search(expected, message), message
    assert "--skip-bad-rows" in message


def test_misnamed_column_suggests_the_close_name(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(HEADER.replace("input_tokens", "input_tokns") + GOOD)
    message = _fail(path)
    assert "missing required column 'input_tokens' (did you mean \"input_tokns\"?)" in message
    assert "--mapping" in message


def test_missing_end_time_and_latency(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text("workflow_id,model,start_time,input_tokens,output_tokens\nw,m,0,1,1\n")
    assert "missing column 'end_time' (or 'latency_s')" in _fail(path)


@pytest.mark.parametrize("name", ["empty.csv", "header.csv", "empty.jsonl", "empty.parquet"])
def test_empty_files(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name == "header.csv":
        path.write_text(HEADER)
    elif name == "empty.parquet":
        pd.DataFrame(
            {c: pd.Series([], dtype="int64") for c in HEADER.strip().split(",")}
        ).to_parquet(path)
    else:
        path.write_text("")
    assert f"{path}: empty file" in _fail(path)


def test_truncated_gzip(tmp_path: Path) -> None:
    data = gzip.compress((HEADER + GOOD * 5000).encode())
    path = tmp_path / "calls.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    message = _fail(path)
    assert message.startswith(f"{path}: cannot read the file") and "truncated or corrupt" in message


def test_corrupt_parquet(tmp_path: Path) -> None:
    path = tmp_path / "calls.parquet"
    pd.DataFrame(
        {
            "workflow_id": ["w"],
            "model": ["m"],
            "start_time": [0],
            "end_time": [1],
            "input_tokens": [1],
            "output_tokens": [1],
        }
    ).to_parquet(path)
    path.write_bytes(path.read_bytes()[:-20])
    assert "truncated or corrupt" in _fail(path)


def test_truncated_jsonl_line(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    record = {
        "workflow_id": "w",
        "model": "m",
        "start_time": 0,
        "end_time": 1,
        "input_tokens": 1,
        "output_tokens": 1,
    }
    path.write_text(json.dumps(record) + "\n" + json.dumps(record)[:30])
    assert f"{path}, line 2: not valid JSON" in _fail(path)


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "calls.tsv"
    path.write_text(HEADER + GOOD)
    assert "unknown trace file extension '.tsv'" in _fail(path)


def test_span_file_that_is_not_otlp(tmp_path: Path) -> None:
    path = tmp_path / "spans.json"
    path.write_text(json.dumps({"data": [{"name": "chat"}]}))
    assert f"{path}, line 1: not an OTLP/JSON trace export (no 'resourceSpans' key)" in _fail(path)


def test_error_leaves_no_output_file(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(HEADER + GOOD + "w2,m1,3,4,-5,5\n")
    out = tmp_path / "apl.json"
    _fail(path, "-o", str(out))
    assert not out.exists() and list(tmp_path.iterdir()) == [path]


def test_skip_bad_rows_reports_counts_by_reason(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(HEADER + GOOD + "w2,m1,3,4,-5,5\nw3,m1,3,4,x,5\nw4,m1,9,4,1,1\nw5,m1,3,4,1\n")
    out = tmp_path / "apl.json"
    result = CliRunner().invoke(
        app, ["ingest", str(path), "--skip-bad-rows", "--json", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["workflows"][0]["workflow_count"] == 1
    note = " ".join(data["notes"])
    assert "skipped 4 bad rows" in note
    assert "2 input_tokens: not a non-negative whole number" in note
    assert "1 end_time: before start_time" in note and "1 csv: wrong number of fields" in note


def _run_main(*args: str) -> tuple[int, str, str]:
    return invoke("ingest", *args)


def test_main_prints_one_error_line_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(HEADER + "w,m,0,1,-3,1\n")
    code, stdout, stderr = _run_main(str(path))
    assert code == 2 and stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: {path}, line 2, column 'input_tokens'")


def test_main_rejects_bad_mapping_with_exit_2(tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text("schema_version: 1\nmodl: x\n")
    code, _, stderr = _run_main(str(tmp_path), "--mapping", str(mapping))
    assert code == 2
    assert (
        stderr.strip().splitlines() == [stderr.strip()]
        and "unknown key 'modl' (did you mean \"model\"?)" in stderr
    )


def test_cached_tokens_above_input_tokens(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(
        "workflow_id,model,start_time,end_time,input_tokens,output_tokens,cached_input_tokens\n"
        "w,m,0,1,10,1,11\n"
    )
    assert "line 2, column 'cached_input_tokens': more than input_tokens" in _fail(path)
