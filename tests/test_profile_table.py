"""StoredProfiles: stored points over the real analytic model, hand-computed cases."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from planner.catalog import Catalog
from planner.io.configs import load_catalog
from planner.io.profiles import load_profiles, write_points
from planner.profiles.analytic import AnalyticProfiles
from planner.profiles.points import points_frame
from planner.profiles.table import StoredProfiles
from planner.types.shapes import ShapeKey

MODEL, GPU = "Llama-3.1-8B-Instruct", "H100-SXM-80GB"
KEY = ShapeKey(MODEL, GPU, 1, 8)
ISL, OSL = 1000.0, 200.0


@pytest.fixture(scope="module")
def catalog(repo: Path) -> Catalog:
    return load_catalog(repo / "configs")


@pytest.fixture(scope="module")
def analytic(catalog: Catalog) -> AnalyticProfiles:
    return AnalyticProfiles(catalog)


def _row(conc: float, rps: float, ttft: float, tpot: float, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "model": MODEL,
        "gpu_type": GPU,
        "tp": 1,
        "gpu_fraction": 1.0,
        "source": "imported",
        "input_tokens": ISL,
        "output_tokens": OSL,
        "concurrency": conc,
        "request_rate": math.nan,
        "requests_per_s": rps,
        "output_tokens_per_s": rps * OSL,
        "ttft_ms_mean": ttft,
        "tpot_ms_mean": tpot,
        "e2e_ms_mean": ttft + (OSL - 1) * tpot,
        "kv_cache_tokens": 400_000.0,
        "status": "ok",
    }
    return {**row, **extra}


# A made-up but self-consistent ladder: throughput rises, latency grows with load.
LADDER = [_row(1, 0.5, 20.0, 10.0), _row(4, 1.6, 30.0, 12.0), _row(16, 4.0, 60.0, 18.0)]


def test_exact_and_interpolated_points(analytic: AnalyticProfiles) -> None:
    table = StoredProfiles(points_frame(LADDER), analytic)
    at4 = table.at_concurrency(KEY, ISL, OSL, 4)
    assert (at4.requests_per_s, at4.ttft_ms, at4.tpot_ms) == (1.6, 30.0, 12.0)
    assert at4.source == "imported" and at4.kv_cache_tokens == 400_000
    assert at4.max_concurrency == pytest.approx(400_000 / (ISL + OSL))
    # 10 lies halfway between 4 and 16.
    mid = table.at_concurrency(KEY, ISL, OSL, 10)
    assert mid.requests_per_s == pytest.approx(2.8)
    assert mid.ttft_ms == pytest.approx(45.0) and mid.tpot_ms == pytest.approx(15.0)
    assert mid.output_tokens_per_s == pytest.approx(2.8 * OSL)


def test_measured_beats_imported_and_failures_are_ignored(analytic: AnalyticProfiles) -> None:
    measured = [
        _row(1, 0.7, 15.0, 8.0, source="measured"),
        _row(8, 3.0, 25.0, 9.0, source="measured"),
    ]
    failed = _row(math.nan, math.nan, math.nan, math.nan, source="measured", status="failed")
    table = StoredProfiles(points_frame([*LADDER, *measured, failed]), analytic)
    point = table.at_concurrency(KEY, ISL, OSL, 1)
    assert point.source == "measured" and point.tpot_ms == 8.0
    assert table.source_of(KEY) == "measured"
    only_failed = StoredProfiles(points_frame([failed]), analytic)
    assert only_failed.source_of(KEY) == "roofline"
    assert only_failed.at_concurrency(KEY, ISL, OSL, 1) == analytic.at_concurrency(KEY, ISL, OSL, 1)


def test_other_shapes_fall_back_to_analytic(analytic: AnalyticProfiles) -> None:
    table = StoredProfiles(points_frame(LADDER), analytic)
    tp2 = ShapeKey(MODEL, GPU, 2, 8)
    assert table.at_concurrency(tp2, ISL, OSL, 4) == analytic.at_concurrency(tp2, ISL, OSL, 4)
    assert table.capacity_per_s(tp2, ISL, OSL) == analytic.capacity_per_s(tp2, ISL, OSL)
    assert table.memory(tp2) == analytic.memory(tp2)
    assert table.stored_keys() == (KEY,)


def test_token_shape_correction_uses_the_analytic_ratio(analytic: AnalyticProfiles) -> None:
    table = StoredProfiles(points_frame(LADDER), analytic)
    point = table.at_concurrency(KEY, 2000, 100, 4)
    wanted = analytic.at_concurrency(KEY, 2000, 100, 4)
    base = analytic.at_concurrency(KEY, ISL, OSL, 4)
    assert point.tpot_ms == pytest.approx(12.0 * wanted.tpot_ms / base.tpot_ms)
    assert point.ttft_ms == pytest.approx(30.0 * wanted.ttft_ms / base.ttft_ms)
    assert point.requests_per_s == pytest.approx(1.6 * wanted.requests_per_s / base.requests_per_s)
    assert point.output_tokens_per_s == pytest.approx(point.requests_per_s * 100)


def test_beyond_the_ladder_follows_the_analytic_trend(analytic: AnalyticProfiles) -> None:
    table = StoredProfiles(points_frame(LADDER), analytic)
    point = table.at_concurrency(KEY, ISL, OSL, 64)
    far = analytic.at_concurrency(KEY, ISL, OSL, 64)
    end = analytic.at_concurrency(KEY, ISL, OSL, 16)
    assert point.tpot_ms == pytest.approx(18.0 * far.tpot_ms / end.tpot_ms)


def test_rate_lookup_inverts_the_throughput_curve(analytic: AnalyticProfiles) -> None:
    table = StoredProfiles(points_frame(LADDER), analytic)
    assert table.capacity_per_s(KEY, ISL, OSL) == 4.0
    # 2.8 req/s is reached at concurrency 10 (halfway between 4 and 16).
    point = table.at_rate(KEY, ISL, OSL, 2.8)
    assert not point.saturated and point.requests_per_s == 2.8
    assert point.concurrency == pytest.approx(10.0, rel=1e-6)
    assert point.tpot_ms == pytest.approx(15.0, rel=1e-6)
    over = table.at_rate(KEY, ISL, OSL, 5.0)
    assert over.saturated


def test_memory_takes_the_measured_kv_capacity(analytic: AnalyticProfiles) -> None:
    table = StoredProfiles(points_frame(LADDER), analytic)
    fit = table.memory(KEY)
    assert fit.kv_cache_tokens == 400_000 and fit.fits
    assert fit.weights_gib == analytic.memory(KEY).weights_gib


def test_load_profiles_empty_dir_is_pure_analytic(tmp_path: Path, catalog: Catalog) -> None:
    # No stored points: the composed sources (kernels over the roofline) answer alone.
    assert isinstance(load_profiles(tmp_path, catalog), AnalyticProfiles)
    write_points(points_frame(LADDER), tmp_path)
    table = load_profiles(tmp_path, catalog)
    assert isinstance(table, StoredProfiles)
    assert table.at_concurrency(KEY, ISL, OSL, 16).tpot_ms == 18.0


def test_model_outside_the_catalog_is_served_uncorrected(analytic: AnalyticProfiles) -> None:
    rows = [dict(r, model="my-private-model", gpu_type="cpu") for r in LADDER]
    table = StoredProfiles(points_frame(rows), analytic)
    key = ShapeKey("my-private-model", "cpu", 1, 8)
    assert table.at_concurrency(key, 2000, 50, 4).tpot_ms == 12.0  # nothing to correct with
    assert table.at_concurrency(key, ISL, OSL, 100).tpot_ms == 18.0  # held flat past the end
    assert table.memory(key).kv_cache_tokens == 400_000


def test_open_loop_points_join_the_curve_by_littles_law(analytic: AnalyticProfiles) -> None:
    # 2 req/s at 5 s end to end: 10 requests in flight on average.
    opened = _row(math.nan, 2.0, 1010.0, 20.0, request_rate=2.0)
    opened["e2e_ms_mean"] = 5000.0
    table = StoredProfiles(points_frame([*LADDER, opened]), analytic)
    assert table.at_concurrency(KEY, ISL, OSL, 10).tpot_ms == 20.0
    only_open = StoredProfiles(points_frame([opened]), analytic)
    assert only_open.source_of(KEY) == "imported"
    assert only_open.capacity_per_s(KEY, ISL, OSL) == 2.0
