"""Reading traces: formats, compression, directories, mappings, serving-level tables."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from planner.errors import ConfigError, InputError
from planner.ingest.mapping import TraceMapping
from planner.io.traces import load_mapping, read_calls
from planner.types.calls import CALL_COLUMNS

CSV = (
    "workflow_id,model,start_time,end_time,input_tokens,output_tokens\n"
    "w1,m1,0,2,10,5\n"
    "w1,m2,1,3,20,6\n"
    "w2,m1,5,6,30,7\n"
)


def _records() -> list[dict[str, object]]:
    return [
        {
            "workflow_id": "w1",
            "model": "m1",
            "start_time": 0,
            "end_time": 2,
            "input_tokens": 10,
            "output_tokens": 5,
        },
        {
            "workflow_id": "w1",
            "model": "m2",
            "start_time": 1,
            "end_time": 3,
            "input_tokens": 20,
            "output_tokens": 6,
        },
        {
            "workflow_id": "w2",
            "model": "m1",
            "start_time": 5,
            "end_time": 6,
            "input_tokens": 30,
            "output_tokens": 7,
        },
    ]


def _check(frame: pd.DataFrame) -> None:
    assert dict(frame.dtypes.astype(str)) == CALL_COLUMNS
    assert list(frame["workflow_id"]) == ["w1", "w1", "w2"]
    assert list(frame["input_tokens"]) == [10, 20, 30]
    assert list(frame["end_s"] - frame["start_s"]) == [2, 2, 1]
    assert set(frame["workflow_type"]) == {"default"}
    assert set(frame["status"]) == {"ok"} and set(frame["kind"]) == {"llm"}


@pytest.mark.parametrize(
    "name", ["t.csv", "t.csv.gz", "t.jsonl", "t.jsonl.gz", "t.parquet", "t.parquet.gz"]
)
def test_every_format_reads_the_same_calls(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if ".csv" in name:
        data = CSV.encode()
    elif ".jsonl" in name:
        data = "".join(json.dumps(r) + "\n" for r in _records()).encode()
    else:
        pd.DataFrame(_records()).to_parquet(tmp_path / "plain.parquet")
        data = (tmp_path / "plain.parquet").read_bytes()
        (tmp_path / "plain.parquet").unlink()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    calls = read_calls(path)
    _check(calls.frame)
    assert calls.sources == (str(path),) and calls.has_end_times


def test_directory_is_read_recursively_in_sorted_order_skipping_docs(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.jsonl").write_text(json.dumps(_records()[2]) + "\n")
    lines = CSV.splitlines(keepends=True)
    (tmp_path / "a.csv").write_text("".join(lines[:3]))
    for doc in ("README.md", "generate.py", "notes.txt", "mappings.yaml"):
        (tmp_path / doc).write_text("not a trace")
    (tmp_path / ".hidden.bin").write_text("ignored")
    calls = read_calls(tmp_path)
    _check(calls.frame)
    assert [Path(s).name for s in calls.sources] == ["a.csv", "x.jsonl"]


def test_unknown_extension_in_directory_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(CSV)
    (tmp_path / "calls.xlsx").write_text("?")
    with pytest.raises(InputError, match=r"calls\.xlsx: unknown trace file extension '\.xlsx'"):
        read_calls(tmp_path)


def test_categoricals_merge_across_files(tmp_path: Path) -> None:
    (tmp_path / "1.csv").write_text(CSV)
    # Other workflows in the second file (the same rows twice would be duplicates).
    (tmp_path / "2.csv").write_text(CSV.replace("w1", "w9").replace("w2", "w8").replace("m2", "m3"))
    frame = read_calls(tmp_path).frame
    assert list(frame["workflow_id"]) == ["w1", "w1", "w2", "w9", "w9", "w8"]
    assert list(frame["model"]) == ["m1", "m2", "m1", "m1", "m3", "m1"]


def test_latency_column_and_iso_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "workflow_id,model,start_time,latency_s,input_tokens,output_tokens\n"
        "w,m,2024-01-01T00:00:00Z,1.5,1,1\n"
        "w,m,2024-01-01T00:00:02.250Z,0.5,1,1\n"
    )
    frame = read_calls(path).frame
    assert frame["start_s"].iloc[1] - frame["start_s"].iloc[0] == pytest.approx(2.25)
    assert list(frame["end_s"] - frame["start_s"]) == pytest.approx([1.5, 0.5])


def test_mapping_renames_converts_units_and_fixes_model(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("session,begin_ms,dur_ms,prompt,completion\nA,1000,500,7,8\n")
    mapping_file = tmp_path / "m.yaml"
    mapping_file.write_text(
        "schema_version: 1\nmodel: llama\ntime_unit: ms\nlatency_unit: ms\n"
        "columns: {workflow_id: session, start_time: begin_ms, latency_s: dur_ms, "
        "input_tokens: prompt, output_tokens: completion}\n"
    )
    frame = read_calls(path, load_mapping(mapping_file)).frame
    row = frame.iloc[0]
    assert (row["workflow_id"], row["model"], row["start_s"], row["end_s"]) == (
        "A",
        "llama",
        1.0,
        1.5,
    )


def test_mapping_with_unknown_key_suggests(tmp_path: Path) -> None:
    mapping_file = tmp_path / "m.yaml"
    mapping_file.write_text("schema_version: 1\ntime_units: ms\n")
    with pytest.raises(
        ConfigError, match=r"unknown key 'time_units' \(did you mean \"time_unit\"\?\)"
    ):
        load_mapping(mapping_file)
    mapping_file.write_text("schema_version: 1\ncolumns: {input_tokns: x}\n")
    with pytest.raises(ConfigError, match=r"input_tokns.*did you mean \"input_tokens\""):
        load_mapping(mapping_file)


def test_serving_level_rows_become_one_call_workflows_without_end_times(tmp_path: Path) -> None:
    path = tmp_path / "serve.jsonl"
    path.write_text(
        '{"ts": 0, "in": 5, "out": 1, "blocks": [7, 8]}\n\n'
        '{"ts": 2000, "in": 6, "out": 2, "blocks": [7]}\n'
    )
    mapping = TraceMapping(
        columns={
            "start_time": "ts",
            "input_tokens": "in",
            "output_tokens": "out",
            "prefix_hash": "blocks[0]",
        },
        time_unit="ms",
        model="svc",
        serving_level=True,
    )
    calls = read_calls(path, mapping)
    frame = calls.frame
    assert list(frame["workflow_id"]) == [f"{path}:1", f"{path}:3"]  # line numbers
    assert list(frame["start_s"]) == [0.0, 2.0]
    assert frame["end_s"].isna().all() and not calls.has_end_times
    assert list(frame["prefix_hash"]) == ["7", "7"]
    assert any("serving-level" in n for n in calls.notes)


def test_parquet_timestamp_columns_and_strptime_mapping(tmp_path: Path) -> None:
    stamps = pd.to_datetime(["2024-05-01 10:00:00", "2024-05-01 10:00:03"])
    frame = pd.DataFrame(
        {
            "workflow_id": ["w", "w"],
            "model": ["m", "m"],
            "start_time": stamps,
            "end_time": stamps + pd.Timedelta(seconds=1.5),
            "input_tokens": [1, 2],
            "output_tokens": [3, 4],
        }
    )
    frame.to_parquet(tmp_path / "t.parquet")
    calls = read_calls(tmp_path / "t.parquet").frame
    assert calls["start_s"].iloc[0] == pd.Timestamp("2024-05-01 10:00:00", tz="UTC").timestamp()
    assert list(calls["end_s"] - calls["start_s"]) == pytest.approx([1.5, 1.5])

    path = tmp_path / "t.csv"
    path.write_text(
        "workflow_id,model,start_time,end_time,input_tokens,output_tokens\n"
        "w,m,01/05/2024 10:00:00,01/05/2024 10:00:02,1,1\n"
    )
    mapping = TraceMapping(timestamp_format="%d/%m/%Y %H:%M:%S")
    row = read_calls(path, mapping).frame.iloc[0]
    assert row["start_s"] == pd.Timestamp("2024-05-01 10:00:00", tz="UTC").timestamp()
    assert row["end_s"] - row["start_s"] == 2.0


def test_byte_order_mark_is_tolerated(tmp_path: Path) -> None:
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + CSV.encode())
    (tmp_path / "bom.jsonl").write_bytes(
        b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\n" for r in _records()).encode()
    )
    _check(read_calls(tmp_path / "bom.csv").frame)
    _check(read_calls(tmp_path / "bom.jsonl").frame)
