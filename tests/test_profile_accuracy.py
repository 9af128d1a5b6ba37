"""The shipped constants against real measured vLLM points (ai-dynamo/aiconfigurator)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from planner.io.calibration import expert_parallel, read_measured_points
from planner.io.configs import calibration_block, load_catalog
from planner.profiles.calibrate import (
    MeasuredPoint,
    consistent_points,
    fit_calibration,
    inconsistent_points,
    mape,
    predict,
)

CSV = Path("calibration") / "vllm_measured_ttft_tpot.csv"


@pytest.fixture(scope="module")
def points(shared_data: Path) -> list[MeasuredPoint]:
    return read_measured_points(shared_data / CSV)


def _at(concurrency: int, tpot_ms: float, tp: int = 2) -> MeasuredPoint:
    model, gpu = "gpt-oss-120b", "H100-SXM-80GB"
    return MeasuredPoint(model, gpu, tp, 1024, 1024, concurrency, 50.0, tpot_ms)


def test_consistency_rule_sets_aside_a_row_that_cannot_have_run_its_concurrency() -> None:
    rows = [
        _at(8, 6.0),
        _at(64, 14.0),
        _at(64, 16.0),  # median at 64: 15.0
        _at(512, 16.4),  # below 1.1 x 15.0: set aside
        _at(128, 7.0),  # 1/8 is 16 -> only c=8 (6.0) is low enough: kept
        _at(512, 40.0, tp=4),  # no lower-concurrency row of its own configuration
    ]
    dropped = inconsistent_points(rows)
    assert [x.point for x in dropped] == [rows[3]]
    assert "concurrency 64" in dropped[0].reason and "15.00 ms" in dropped[0].reason
    assert consistent_points(rows) == rows[:3] + rows[4:]


def test_consistency_rule_on_the_measured_rows(shared_data: Path) -> None:
    # Exactly the nine gpt-oss-120b H100 rows at concurrency 512 (TTFT 20-460 s) fail it.
    rows = read_measured_points(shared_data / CSV, moe=True)
    dropped = inconsistent_points(rows)
    assert len(rows) == 992 and len(dropped) == 9
    assert {(x.point.model, x.point.gpu_type, x.point.concurrency) for x in dropped} == {
        ("gpt-oss-120b", "H100-SXM-80GB", 512)
    }


@pytest.mark.parametrize(
    ("row_id", "ep"),
    [
        ("minimax_b300_vllm_fp8_agg_1024x1024_c8_tp4_ep4_7", True),
        ("2026_03_25_kimi_k2_5_b300_sxm_vllm_fp4_agg_8192x1024_c8_tp4_0_ep4_0_41", True),
        ("qwen_qwen3_32b_h100_sxm_vllm_agg_1024x128_c8_tp2_epnone_1", False),
        ("gptoss_h100_vllm_agg_1024x1024_c8_tp4_ep1_3", False),
        ("minimaxm2_5_b300_vllm_fp8_agg_8192x1024_c128_cfg733", False),
    ],
)
def test_expert_parallelism_is_read_from_the_row_id(row_id: str, ep: bool) -> None:
    assert expert_parallel(row_id) is ep


def test_expert_parallel_rows_of_the_measured_csv(shared_data: Path) -> None:
    rows = read_measured_points(shared_data / CSV, moe=True)
    ep = [p for p in rows if p.expert_parallel]
    assert len(ep) == 113
    assert {p.model.split("-NVFP4")[0] for p in ep} == {"Kimi-K2.5", "MiniMax-M2.5"}


def test_reader_maps_dense_rows_to_catalog(points: list[MeasuredPoint]) -> None:
    # 165 Llama-3.1-70B + 93 Qwen3-32B rows on H100/B200; MoE and B300 rows are skipped.
    assert len(points) == 258
    assert {p.gpu_type for p in points} == {"H100-SXM-80GB", "B200-180GB"}
    assert sum(p.model == "Qwen3-32B" for p in points) == 90


def test_tpot_error_on_measured_points_stays_small(points: list[MeasuredPoint]) -> None:
    catalog = load_catalog()
    pred = predict(catalog, points)
    tpot = np.array([p.tpot_ms for p in points])
    assert mape(pred.tpot_ms, tpot) < 8.0
    for gpu in ("H100-SXM-80GB", "B200-180GB"):
        idx = [i for i, p in enumerate(points) if p.gpu_type == gpu]
        assert mape(pred.tpot_ms[idx], tpot[idx]) < 10.0, gpu


def test_ttft_median_error_is_bounded(points: list[MeasuredPoint]) -> None:
    # TTFT is harder (queueing, harness overheads); the median still must stay close.
    pred = predict(load_catalog(), points)
    ttft = np.array([p.ttft_ms for p in points])
    assert float(np.median(np.abs(pred.ttft_ms - ttft) / ttft)) < 0.25


def test_uncalibrated_roofline_is_worse(points: list[MeasuredPoint]) -> None:
    # The fit must earn its keep: REFERENCE.md's starting constants do clearly worse.
    from dataclasses import replace

    from planner.catalog import Calibration

    catalog = load_catalog()
    naive = Calibration(
        per_layer_overhead_us=9.0,
        per_step_overhead_us=0.0,
        memory_efficiency=1.35,
        compute_efficiency=0.6,
        prefill_interference=1.0,
        allreduce_multiplier=3.3,
    )
    tpot = np.array([p.tpot_ms for p in points])
    fitted = mape(predict(catalog, points).tpot_ms, tpot)
    gpus = {g: replace(naive) for g in catalog.gpus}
    assert mape(predict(catalog, points, gpus).tpot_ms, tpot) > 1.5 * fitted


@pytest.mark.slow
def test_shipped_constants_reproduce_from_the_fit(points: list[MeasuredPoint]) -> None:
    catalog = load_catalog()
    rows = [p for p in points if p.gpu_type == "H100-SXM-80GB"]
    cal = fit_calibration(catalog, rows, source=catalog.gpus["H100-SXM-80GB"].calibration.source)
    assert calibration_block(cal) == calibration_block(catalog.gpus["H100-SXM-80GB"].calibration)
