"""The analytic profile model: memory fit by hand, monotonicity, Little's law."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.errors import InfeasibleError, ProfileError
from planner.io.configs import load_catalog
from planner.profiles.analytic import AnalyticProfiles, erlang_c_wait_ms
from planner.types.shapes import ShapeKey

CATALOG = load_catalog()
PROFILES = AnalyticProfiles(CATALOG)
H100 = "H100-SXM-80GB"
L70 = "Llama-3.1-70B-Instruct"
L8 = "Llama-3.1-8B-Instruct"
GIB = 2**30


def test_llama70b_bf16_memory_by_hand() -> None:
    # Weights: body 70.55e9 - embeddings (2 x 128256 x 8192) at 2 bytes; all BF16 here.
    weights_gib = 70.55e9 * 2 / GIB
    share = 0.92 * 79.6
    # TP1: 131.4 GiB of weights cannot fit 73.2 GiB.
    tp1 = PROFILES.memory(ShapeKey(L70, H100, 1, 8))
    assert not tp1.fits and tp1.weights_gib == pytest.approx(weights_gib)
    assert "73.2 GiB" in tp1.reason and tp1.kv_cache_tokens == 0
    # TP2: overhead = 1.5 + activations 8192 x (28672 + 4 x 8192) x 2 B + logits
    # 1024 x 128256 x 8 B (vLLM's H100 defaults: 8192 batched tokens, 1024 sequences)
    # + 0.5 NCCL; KV per token per GPU = 2 x 80 layers x 4 heads x 128 x 2 B.
    tp2 = PROFILES.memory(ShapeKey(L70, H100, 2, 8))
    overhead = 1.5 + (8192 * (28672 + 4 * 8192) * 2 + 1024 * 128256 * 8) / GIB + 0.5
    kv_gib = share - weights_gib / 2 - overhead
    tokens = math.floor(kv_gib * GIB / (2 * 80 * 4 * 128 * 2) / 16) * 16
    assert tp2.fits
    assert tp2.overhead_gib == pytest.approx(overhead)
    assert tp2.kv_cache_gib == pytest.approx(kv_gib)
    assert tp2.kv_cache_tokens == tokens == 23664
    tp4 = PROFILES.memory(ShapeKey(L70, H100, 4, 8))
    assert tp4.fits and tp4.kv_cache_tokens > 10 * tp2.kv_cache_tokens


def test_tp_must_divide_heads_and_stay_in_nvlink_domain() -> None:
    assert "does not divide" in PROFILES.memory(ShapeKey(L70, H100, 3, 8)).reason
    l40s = PROFILES.memory(ShapeKey(L8, "L40S-48GB", 2, 8))
    assert not l40s.fits and "NVLink domain" in l40s.reason
    with pytest.raises(InfeasibleError, match="does not fit"):
        PROFILES.at_concurrency(ShapeKey(L70, H100, 1, 8), 1000, 100, 4)
    with pytest.raises(ProfileError, match="only planned with TP 1"):
        PROFILES.memory(ShapeKey(L8, H100, 2, 4))


def test_fraction_scales_memory_and_speed() -> None:
    whole = ShapeKey(L8, H100, 1, 8)
    half = ShapeKey(L8, H100, 1, 4)
    assert PROFILES.memory(half).share_gib == pytest.approx(PROFILES.memory(whole).share_gib / 2)
    assert PROFILES.memory(half).kv_cache_tokens < PROFILES.memory(whole).kv_cache_tokens / 2
    slow = PROFILES.at_concurrency(half, 1000, 200, 4).tpot_ms
    fast = PROFILES.at_concurrency(whole, 1000, 200, 4).tpot_ms
    assert slow > 1.5 * fast
    assert not PROFILES.memory(ShapeKey(L8, H100, 1, 1)).fits  # 9.2 GiB < 15 GiB weights


def test_tp_cuts_tpot_for_70b() -> None:
    tpots = [
        PROFILES.at_concurrency(ShapeKey(L70, H100, tp, 8), 2000, 300, 8).tpot_ms
        for tp in (2, 4, 8)
    ]
    assert tpots[0] > tpots[1] > tpots[2]


@settings(max_examples=40, deadline=None)
@given(
    model=st.sampled_from([L8, L70, "Qwen3-32B", "Mistral-7B-Instruct-v0.3"]),
    tp=st.sampled_from([1, 2, 4, 8]),
    isl=st.integers(16, 8000),
    osl=st.integers(2, 2000),
)
def test_latency_grows_and_throughput_saturates(model: str, tp: int, isl: int, osl: int) -> None:
    key = ShapeKey(model, H100, tp, 8)
    if not PROFILES.memory(key).fits:
        return
    points = [PROFILES.at_concurrency(key, isl, osl, c) for c in (1, 2, 4, 8, 16, 32, 64, 128)]
    for a, b in itertools.pairwise(points):
        assert b.ttft_ms >= a.ttft_ms * (1 - 1e-9)
        assert b.e2e_ms >= a.e2e_ms * (1 - 1e-9)
        assert b.requests_per_s >= a.requests_per_s * (1 - 1e-9)
    # TPOT may dip where waiting moves from the decode phase into TTFT, never overall.
    assert points[-1].tpot_ms >= points[0].tpot_ms
    capacity = PROFILES.capacity_per_s(key, isl, osl)
    assert all(p.requests_per_s <= capacity * (1 + 1e-9) for p in points)
    beyond = PROFILES.at_concurrency(key, isl, osl, 4 * points[-1].max_concurrency + 300)
    assert beyond.requests_per_s == pytest.approx(capacity)
    assert beyond.ttft_ms > points[0].ttft_ms


@settings(max_examples=40, deadline=None)
@given(
    model=st.sampled_from([L8, "Qwen3-32B", "Qwen3-Reranker-0.6B"]),
    load=st.floats(0.01, 0.99),
    isl=st.integers(16, 4000),
    osl=st.integers(1, 1000),
)
def test_at_rate_matches_at_concurrency_by_littles_law(
    model: str, load: float, isl: int, osl: int
) -> None:
    key = ShapeKey(model, H100, 1, 8)
    rate = load * PROFILES.capacity_per_s(key, isl, osl)
    point = PROFILES.at_rate(key, isl, osl, rate)
    assert not point.saturated
    assert point.requests_per_s == pytest.approx(rate, rel=1e-6)
    # Little's law: requests in the system = rate x time in the system.
    assert point.concurrency == pytest.approx(rate * point.e2e_ms / 1e3, rel=1e-6)
    # Latency does not fall as the offered rate rises.
    lighter = PROFILES.at_rate(key, isl, osl, 0.5 * rate)
    assert lighter.e2e_ms <= point.e2e_ms * (1 + 1e-9)


def test_erlang_c_wait_by_hand() -> None:
    # M/M/1: W = a S / (1 - a); M/M/2 with a = 1: P(wait) = 1/3, W = S/3.
    assert erlang_c_wait_ms(1, 0.5, 100.0) == pytest.approx(100.0)
    assert erlang_c_wait_ms(2, 1.0, 90.0) == pytest.approx(30.0)
    assert erlang_c_wait_ms(2, 0.0, 90.0) == 0.0
    # M/M/2 with a = 0.5: P(wait) = 0.1, W = 0.1 S / 1.5; 1.5 slots interpolate 1 and 2.
    assert erlang_c_wait_ms(1.5, 0.5, 100.0) == pytest.approx(0.5 * 100.0 + 0.5 * 10.0 / 1.5)


def test_open_loop_matches_closed_loop_far_from_few_slots() -> None:
    # 256 slots at a third of capacity: practically nobody waits for a slot.
    key = ShapeKey(L8, H100, 1, 8)
    rate = PROFILES.capacity_per_s(key, 1000, 200) / 3
    open_loop = PROFILES.at_rate(key, 1000, 200, rate)
    closed = PROFILES.at_concurrency(key, 1000, 200, open_loop.concurrency)
    assert open_loop.e2e_ms == pytest.approx(closed.e2e_ms, rel=1e-6)
    # Few slots (70B BF16 on 2 GPUs holds ~14 sequences of this shape): at 90% load
    # Poisson arrivals queue noticeably.
    small = ShapeKey(L70, H100, 2, 8)
    busy = PROFILES.at_rate(small, 1500, 500, 0.9 * PROFILES.capacity_per_s(small, 1500, 500))
    idle = PROFILES.at_rate(small, 1500, 500, 0.01)
    assert busy.ttft_ms > idle.ttft_ms + 0.2 * (busy.e2e_ms - busy.ttft_ms)


def test_at_rate_past_capacity_is_saturated() -> None:
    key = ShapeKey(L8, H100, 1, 8)
    capacity = PROFILES.capacity_per_s(key, 1000, 200)
    point = PROFILES.at_rate(key, 1000, 200, 2 * capacity)
    assert point.saturated and point.requests_per_s == pytest.approx(capacity)
    assert not PROFILES.at_rate(key, 1000, 200, 0.5 * capacity).saturated


def test_reranker_scores_in_one_step() -> None:
    point = PROFILES.at_concurrency(ShapeKey("Qwen3-Reranker-0.6B", H100, 1, 2), 512, 1, 8)
    assert point.tpot_ms == 0 and point.e2e_ms == pytest.approx(point.ttft_ms)
    reranker = PROFILES.capacity_per_s(ShapeKey("Qwen3-Reranker-0.6B", H100, 1, 4), 512, 1)
    generator = PROFILES.capacity_per_s(ShapeKey(L8, H100, 1, 4), 512, 1)
    assert reranker > 5 * generator  # 13x fewer parameters


def test_request_longer_than_max_model_len_is_infeasible() -> None:
    key = ShapeKey(L8, H100, 1, 8)
    with pytest.raises(InfeasibleError, match=r"exceed its max_model_len of 32768"):
        PROFILES.at_rate(key, 32000, 1000, 0.1)
    with pytest.raises(InfeasibleError, match="max_model_len"):
        PROFILES.capacity_per_s(key, 40000, 10)
    PROFILES.at_concurrency(key, 30000, 2000, 1)  # 32000 tokens: just inside


def test_unknown_names_in_keys_raise_profile_error() -> None:
    with pytest.raises(ProfileError, match="unknown model"):
        PROFILES.memory(ShapeKey("gpt-5", H100, 1, 8))
    with pytest.raises(ProfileError, match="unknown GPU type"):
        PROFILES.memory(ShapeKey(L8, "TPU-v5e", 1, 8))
    # Aliases work in keys: HF ids and node product labels.
    alias = ShapeKey("meta-llama/Llama-3.1-8B-Instruct", "NVIDIA-H100-80GB-HBM3", 1, 8)
    assert PROFILES.memory(alias) == PROFILES.memory(ShapeKey(L8, H100, 1, 8))


def test_a_cached_prefix_shortens_prefill_not_the_kv_footprint() -> None:
    key = ShapeKey(L8, H100, 1, 8)
    cold = PROFILES.at_concurrency(key, 8000, 200, 4)
    warm = PROFILES.at_concurrency(key, 8000, 200, 4, cached_tokens=6000)
    assert warm.ttft_ms < 0.6 * cold.ttft_ms  # prefill of 2,000 of 8,000 tokens
    assert warm.tpot_ms <= cold.tpot_ms and warm.e2e_ms < cold.e2e_ms
    assert warm.max_concurrency == cold.max_concurrency  # the whole context stays resident
    assert warm.kv_cache_tokens == cold.kv_cache_tokens
    assert PROFILES.capacity_per_s(key, 8000, 200, 6000) > PROFILES.capacity_per_s(key, 8000, 200)
    # Attention still covers the cached prefix: a fully cached prompt of 8,000 tokens costs
    # more than an uncached 1-token one.
    almost = PROFILES.at_concurrency(key, 8000, 200, 1, cached_tokens=7999)
    tiny = PROFILES.at_concurrency(key, 1, 200, 1)
    assert almost.ttft_ms > tiny.ttft_ms
    with pytest.raises(ProfileError, match="cached tokens"):
        PROFILES.at_rate(key, 100, 10, 1.0, cached_tokens=200)
