"""The `kernels` profile source: interpolation, step composition, memory per dtype.

These run on the tables shipped inside the package (no ../shared needed).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from planner.io.configs import load_catalog
from planner.profiles.analytic import memory_fit
from planner.profiles.kernels import KernelProfiles, shipped_overhead
from planner.profiles.kernels.interp import log_grid
from planner.profiles.kernels.steady import step_costs
from planner.profiles.kernels.tables import kernel_tables, shipped_systems
from planner.profiles.roofline import kv_bytes_per_token
from planner.search.problem import candidate_shapes
from planner.types.cluster import Cluster, NodePool
from planner.types.shapes import ShapeKey

CATALOG = load_catalog()
H100 = "H100-SXM-80GB"


# ---- interpolation ------------------------------------------------------------------


def _grid() -> pd.DataFrame:
    # latency = 0.01 * m^0.5 * n on a 3 x 2 grid, one cell missing
    rows = [
        {"m": m, "n": n, "latency_ms": 0.01 * m**0.5 * n}
        for m in (1, 4, 16)
        for n in (10, 100)
        if (m, n) != (16, 100)
    ]
    return pd.DataFrame(rows)


def test_grid_hits_measured_points_exactly_and_interpolates_power_laws() -> None:
    grid = log_grid(_grid(), ["m", "n"], (0.0, 0.0), (1.0, 1.0))
    ms, extra = grid(np.array([1.0, 4.0, 2.0]), np.array([10.0, 10.0, 10.0]))
    assert ms[:2] == pytest.approx([0.1, 0.2])
    # Between m = 1 and 4 the power law through both points: 0.1 * 2^0.5.
    assert ms[2] == pytest.approx(0.1 * 2**0.5)
    # n = 31.6 lies halfway in log space between 10 and 100: latency halfway in log too.
    mid, _ = grid(1.0, 10**1.5)
    assert float(mid) == pytest.approx(0.01 * 10**1.5)
    assert not extra.any()


def test_grid_extrapolates_with_the_edge_slopes_and_says_so() -> None:
    grid = log_grid(_grid(), ["m", "n"], (0.0, 0.0), (1.0, 1.0))
    above, flag_above = grid(64.0, 10.0)  # slope 1 beyond m = 16: 4x the work, 4x the time
    below, flag_below = grid(0.5, 10.0)  # slope 0 below m = 1: the launch floor
    _, flag_inside = grid(8.0, 10.0)
    assert float(above) == pytest.approx(0.01 * 16**0.5 * 10 * 4)
    assert float(below) == pytest.approx(0.1)
    assert bool(flag_above) and bool(flag_below) and not bool(flag_inside)


def test_an_unmeasured_cell_is_filled_and_flagged() -> None:
    grid = log_grid(_grid(), ["m", "n"], (0.0, 0.0), (1.0, 1.0))
    value, flagged = grid(16.0, 100.0)
    # Filled along m from (4, 100) with slope 1 (first axis first): 0.2 * 10 * 4.
    assert float(value) == pytest.approx(0.01 * 4**0.5 * 100 * 4)
    assert bool(flagged)
    assert not bool(grid(4.0, 100.0)[1])


# ---- shipped tables -----------------------------------------------------------------


def test_tables_ship_inside_the_package_with_attribution() -> None:
    import importlib.resources

    systems = shipped_systems()
    assert {"h100_sxm", "h200_sxm", "b200_sxm", "b300_sxm"} <= set(systems)
    notice = importlib.resources.files("planner.profiles.kernels").joinpath("data", "NOTICE")
    text = notice.read_text()
    assert "AIConfigurator" in text and "Apache License" in text
    # Every catalog GPU that names tables names tables that ship; only the `cpu` test
    # device has none (the roofline answers it).
    named = {g.name: g.kernel_tables for g in CATALOG.gpus.values()}
    assert all(tables in systems for tables in named.values() if tables)
    assert {name for name, tables in named.items() if not tables} == {"cpu"}
    assert shipped_overhead().source.startswith("fit")


def test_a_measured_gemm_row_is_returned_as_measured() -> None:
    tables = kernel_tables("h100_sxm")
    ms, flagged = tables.gemm("bfloat16", 8192, 8192, np.array([64.0]))
    frame = pd.read_parquet(
        __import__("importlib.resources")
        .resources.files("planner.profiles.kernels")
        .joinpath("data", "h100_sxm", "gemm.parquet")
        .open("rb")
    )
    row = frame[(frame.gemm_dtype == "bfloat16") & (frame.m == 64) & (frame.n == 8192)]
    row = row[row.k == 8192]
    assert float(ms[0]) == pytest.approx(float(row.latency_ms.iloc[0]), rel=1e-6)
    assert not flagged.any()


# ---- composition --------------------------------------------------------------------


def test_dense_decode_step_is_the_sum_of_its_looked_up_kernels() -> None:
    profiles = KernelProfiles(CATALOG)
    key = ShapeKey("Qwen3-32B", H100, 2)
    step = profiles.step_model(key)
    model, tables = CATALOG.models["Qwen3-32B"], kernel_tables("h100_sxm")
    b, context = 8.0, 1500.0
    m = np.array([b])
    h, d, layers = model.hidden, model.head_dim, model.layers
    heads, kv = model.heads // 2, model.kv_heads // 2
    inter = model.intermediate // 2

    def gemm(n: int, k: int) -> float:
        return float(tables.gemm("bfloat16", n, k, m)[0][0])

    expected = layers * (
        gemm((heads + 2 * kv) * d, h)  # QKV
        + gemm(h, heads * d)  # o_proj
        + gemm(2 * inter, h)  # gate_up
        + gemm(h, inter)  # down
        + 2 * float(tables.allreduce(2, m * h)[0][0])  # after attention and after the MLP
    )
    expected += float(tables.gemm("bfloat16", math.ceil(model.vocab / 2), h, m)[0][0])
    attention = tables.generation_attention(
        "bfloat16", d, 0, heads, kv, np.array([b]), np.array([context])
    )[0]
    expected += layers * float(attention[0])
    parts = step.layer_kernels(m, np.array([True]))
    assert set(parts) == {"qkv_proj", "o_proj", "gate_up_proj", "down_proj", "allreduce"}
    composed = (
        float(step.linear_ms(m)[0])
        + float(step.lm_head(m)[0])
        + float(step.decode_attention(m, np.array([context]))[0])
    )
    assert composed == pytest.approx(expected, rel=1e-9)
    # The steady state's decode step reads the same kernels (through its cached curve).
    costs = step_costs(step, 8192, b, 1000.0, 1000.0)
    assert costs.decode_ms == pytest.approx(expected, rel=0.02)


def test_moe_block_uses_the_moe_kernel_split_by_tp_or_by_ep() -> None:
    profiles = KernelProfiles(CATALOG)
    model, tables = CATALOG.models["Qwen3-30B-A3B"], kernel_tables("h100_sxm")
    tokens = np.array([64.0])
    for ep, split in ((False, (2, 1)), (True, (1, 2))):
        step = profiles.step_model(ShapeKey("Qwen3-30B-A3B", H100, 2, expert_parallel=ep))
        parts = step.layer_kernels(tokens, np.array([True]))
        assert "gate_up_proj" not in parts and {"router", "moe"} <= set(parts)
        one, _ = tables.moe("bfloat16", 2048, 768, 8, 128, *split, tokens)
        assert float(parts["moe"][0]) == pytest.approx(model.layers * float(one[0]))
    with pytest.raises(Exception, match="dense"):
        profiles.step_model(ShapeKey("Qwen3-32B", H100, 2, expert_parallel=True))


def test_mla_model_composes_from_mla_modules_and_reports_extrapolation() -> None:
    profiles = KernelProfiles(CATALOG)
    key = ShapeKey("Kimi-K2.5-NVFP4", "B200-180GB", 8)
    point = profiles.at_concurrency(key, 1024, 1024, 8)
    assert point.source == "kernels" and point.tpot_ms > 0 and point.ttft_ms > point.tpot_ms
    step = profiles.step_model(key)
    assert "qkv_proj" not in step.layer_kernels(np.array([8.0]), np.array([True]))
    # Kimi has 384 experts of 2048 at top-8: measured on B200 in NVFP4, not extrapolated.
    assert not any(n.startswith("moe") for n in profiles.extrapolated(key))


def test_b300_mla_modules_are_read_from_b200_rows_other_kernels_are_its_own() -> None:
    # Documented table correction: B300's MLA rows carry a collector floor (1.5-2x B200's
    # at every size on the same HBM bandwidth); its GEMMs and MoE stay its own.
    b200, b300 = kernel_tables("b200_sxm"), kernel_tables("b300_sxm")
    batch, seq = np.array([4.0, 64.0]), np.array([2048.0, 8192.0])
    for phase in ("generation", "context"):
        ms_200, _ = b200.mla(phase, "fp8", "nvfp4", 16, batch, seq)
        ms_300, _ = b300.mla(phase, "fp8", "nvfp4", 16, batch, seq)
        np.testing.assert_allclose(ms_300, ms_200)
    m = np.array([64.0])
    assert b300.gemm("nvfp4", 7168, 7168, m)[0][0] != b200.gemm("nvfp4", 7168, 7168, m)[0][0]


def test_fitted_overhead_holds_the_kernel_multiplier_at_one() -> None:
    # The tables are measurements: only the engine's own time is fitted (per layer and
    # per token, per request, prefill interference); held constants stay as documented.
    overhead = shipped_overhead()
    assert overhead.kernel_scale == 1.0 and overhead.sequence_us == 0.0
    assert overhead.step_ms == 0.0 and overhead.layer_us > 0 and overhead.request_ms > 0


def test_fraction_of_a_gpu_scales_kernel_time() -> None:
    profiles = KernelProfiles(CATALOG)
    whole = profiles.step_model(ShapeKey("Qwen3-8B", H100, 1, 8))
    half = profiles.step_model(ShapeKey("Qwen3-8B", H100, 1, 4))
    m = np.array([16.0])
    assert float(half.linear_ms(m)[0]) == pytest.approx(2 * float(whole.linear_ms(m)[0]))


def test_latency_grows_with_load_and_little_law_holds() -> None:
    profiles = KernelProfiles(CATALOG)
    key = ShapeKey("gpt-oss-120b", H100, 2)
    low = profiles.at_concurrency(key, 2000, 300, 2)
    high = profiles.at_concurrency(key, 2000, 300, 64)
    assert high.tpot_ms > low.tpot_ms and high.ttft_ms > low.ttft_ms
    assert high.requests_per_s > low.requests_per_s
    assert high.requests_per_s * high.e2e_ms / 1e3 == pytest.approx(64, rel=1e-6)
    rate = profiles.at_rate(key, 2000, 300, 0.5 * profiles.capacity_per_s(key, 2000, 300))
    assert rate.source == "kernels" and not rate.saturated


# ---- memory per dtype -----------------------------------------------------------------


def test_memory_counts_each_part_in_its_dtype() -> None:
    oss = CATALOG.models["gpt-oss-120b"]
    parts = oss.weight_gib_by_part()
    experts_b = 36 * 128 * 3 * 2880 * 2880 / 1e9
    assert parts["experts"] == pytest.approx(experts_b * 0.53125 * 1e9 / 2**30)
    assert parts["embeddings"] == pytest.approx(2 * 201088 * 2880 * 2 / 2**30)
    bf16 = CATALOG.models["Qwen3-235B-A22B"].weight_gib_by_part()
    fp8 = CATALOG.models["Qwen3-235B-A22B-FP8"].weight_gib_by_part()
    assert fp8["experts"] == pytest.approx(bf16["experts"] / 2)
    assert fp8["embeddings"] == pytest.approx(bf16["embeddings"])  # LM head stays BF16
    gpu = CATALOG.gpus[H100]
    fit_bf16 = memory_fit(CATALOG.models["Qwen3-235B-A22B"], gpu, 4, 1.0, 0.92)
    fit_fp8 = memory_fit(CATALOG.models["Qwen3-235B-A22B-FP8"], gpu, 4, 1.0, 0.92)
    # 470 GB of BF16 weights exceed 4x 80 GB; the FP8 checkpoint's 235 GB fit.
    assert not fit_bf16.fits and fit_fp8.fits
    assert fit_fp8.weights_gib == pytest.approx(sum(fp8.values()) / 4)


def test_mla_kv_cache_is_one_latent_per_layer_on_every_gpu() -> None:
    kimi = CATALOG.models["Kimi-K2.5"]
    per_token = kv_bytes_per_token(kimi, 8)
    assert per_token == kimi.layers * (512 + 64) * 2  # latent + RoPE key, BF16
    assert kv_bytes_per_token(kimi, 1) == per_token  # replicated, not split by TP
    fp8 = CATALOG.models["Kimi-K2.5-NVFP4"]
    assert kv_bytes_per_token(fp8, 8) == per_token / 2
    oss = CATALOG.models["gpt-oss-120b"]  # sliding-window layers hold only the window
    assert kv_bytes_per_token(oss, 1) == 2 * 18 * 8 * 64 * 2
    dense = replace(oss, sliding_layers=0)
    assert kv_bytes_per_token(dense, 1) == 2 * kv_bytes_per_token(oss, 1)


# ---- search shapes --------------------------------------------------------------------


def test_moe_models_get_expert_parallel_shapes_dense_ones_do_not() -> None:
    cluster = Cluster(
        pools=(NodePool("h100", H100, nodes=1, gpus_per_node=8, nvlink_domain_size=8),)
    )
    moe = candidate_shapes(CATALOG.models["Qwen3-30B-A3B"], cluster)
    dense = candidate_shapes(CATALOG.models["Qwen3-32B"], cluster)
    ep = sorted(k.tp for k in moe if k.expert_parallel and k.dp == 1)
    assert ep == [2, 4, 8] and not any(k.expert_parallel for k in dense)
    assert sum(not k.expert_parallel for k in moe) == sum(1 for _ in dense)


def test_cached_curves_agree_with_direct_composition_of_a_mixed_step() -> None:
    profiles = KernelProfiles(CATALOG)
    step = profiles.step_model(ShapeKey("gpt-oss-120b", H100, 2))  # MoE + sliding window
    b, isl, osl, budget = 16.0, 3000.0, 500.0, 8192
    costs = step_costs(step, budget, b, isl, osl)
    others, context = b - 1, isl + osl / 2
    m = np.array([others + isl])
    direct_own = (
        float(step.linear_ms(m)[0])
        + float(step.lm_head(np.array([b]))[0])
        + float(step.decode_attention(np.array([others]), np.array([context]))[0])
        + float(step.prefill_attention(np.array([isl]), np.array([0.0]))[0])
    )
    direct_marginal = (
        float(step.linear_ms(m)[0])
        - float(step.linear_ms(np.array([others]))[0])
        + float(step.prefill_attention(np.array([isl]), np.array([0.0]))[0])
    )
    assert costs.chunks == 1
    assert costs.own_prefill_ms == pytest.approx(direct_own, rel=0.02)
    assert costs.marginal_prefill_ms == pytest.approx(direct_marginal, rel=0.02)


def test_kernel_steps_skip_the_cached_prefix() -> None:
    from planner.io.configs import load_catalog
    from planner.io.profiles import load_profiles
    from planner.types.shapes import ShapeKey

    profiles = load_profiles(None, load_catalog())
    key = ShapeKey("Llama-3.1-8B-Instruct", "H100-SXM-80GB", 1, 8)
    cold = profiles.at_concurrency(key, 8000, 200, 4)
    warm = profiles.at_concurrency(key, 8000, 200, 4, cached_tokens=6000)
    assert cold.source == warm.source == "kernels"
    assert warm.ttft_ms < 0.6 * cold.ttft_ms and warm.e2e_ms < cold.e2e_ms
    assert warm.max_concurrency == cold.max_concurrency  # the whole context stays resident
    assert profiles.capacity_per_s(key, 8000, 200, 6000) > profiles.capacity_per_s(key, 8000, 200)
    rate = 0.5 * profiles.capacity_per_s(key, 8000, 200)
    assert (
        profiles.at_rate(key, 8000, 200, rate, 6000).e2e_ms
        < profiles.at_rate(key, 8000, 200, rate).e2e_ms
    )
