"""The per-call latency model (`planner.search.queueing`): the simulator's server solved."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from search_factory import shape

from planner.search.problem import burst_share, interpolate_latency_s, parts_latency_s
from planner.search.queueing import (
    TokenMoments,
    kv_fill,
    ladder,
    lognormal_cv2,
    max_ratio,
    server,
    sibling_overlap,
)


def linear(a: float, b: float, top: float) -> tuple[list[float], list[float]]:
    """e(n) = a + b (n - 1) sampled on 1..top."""
    grid = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, top]
    return grid, [a + b * (n - 1.0) for n in grid]


@pytest.mark.parametrize(("calls", "cv2"), [(2.0, 0.3), (8.0, 0.6), (12.0, 1.5)])
def test_max_ratio_matches_monte_carlo(calls: float, cv2: float) -> None:
    rng = np.random.default_rng(0)
    sigma = math.sqrt(math.log1p(cv2))
    works = rng.lognormal(-sigma * sigma / 2, sigma, size=(200_000, int(calls)))
    assert max_ratio(calls, cv2) == pytest.approx(works.max(axis=1).mean(), rel=0.01)


def test_max_ratio_of_one_call_or_equal_works_is_one() -> None:
    assert max_ratio(1.0, 0.8) == 1.0
    assert max_ratio(12.0, 0.0) == 1.0
    assert sibling_overlap(12.0, 0.6) == pytest.approx(1.0 / max_ratio(12.0, 0.6))


def test_lognormal_cv2_from_median_and_p95() -> None:
    sigma = 0.7
    p50, p95 = 100.0, 100.0 * math.exp(1.6448536269514722 * sigma)
    assert lognormal_cv2(p50, p95) == pytest.approx(math.expm1(sigma * sigma))
    assert lognormal_cv2(100.0, 100.0) == 0.0


def test_running_latency_is_the_fixed_point_on_a_linear_curve() -> None:
    # T = a + b (lam T + k) while below the slots: T = (a + b k) / (1 - b lam).
    grid, lat = linear(1.0, 0.05, 64.0)
    srv = server(grid, lat, 0.0, 64.0, 0.2, TokenMoments(1000.0, 100.0))
    for rate, k in [(0.5, 0.0), (2.0, 0.0), (2.0, 5.0), (8.0, 3.0)]:
        assert srv.running_s(rate, k) == pytest.approx((1.0 + 0.05 * k) / (1 - 0.05 * rate))


def test_slots_follow_the_kv_footprint_held_over_the_call() -> None:
    grid, lat = linear(1.0, 0.05, 64.0)
    # 10,000 KV tokens, calls of 900 + 100 tokens held whole: 10 at once (not N_max 64).
    plain = server(grid, lat, 10_000.0, 64.0, 0.5, TokenMoments(900.0, 100.0))
    assert plain.slots == pytest.approx(10.0)
    # Long calls hold their tokens longer: the time-weighted footprint is larger.
    spread = server(grid, lat, 10_000.0, 64.0, 0.5, TokenMoments(900.0, 100.0, 0.4, 1.0))
    weighted = 1000.0 + 0.5 * 900 * 0.4 + 0.5 * 100
    assert spread.slots == pytest.approx(kv_fill(10_000.0, weighted, math.sqrt(900**2 * 0.4 + 1e4)))
    assert spread.slots < 10_000.0 / weighted
    assert spread.capacity_per_s == pytest.approx(spread.slots / spread.e(spread.slots))


@pytest.mark.parametrize(
    ("kv", "mean", "sd"), [(34_640.0, 12_821.0, 6_435.0), (50_000.0, 900.0, 400.0)]
)
def test_kv_fill_counts_footprints_that_fit(kv: float, mean: float, sd: float) -> None:
    rng = np.random.default_rng(1)
    sizes = np.abs(rng.normal(mean, sd, size=(20_000, int(3 * kv / mean) + 8)))
    fitted = np.maximum((np.cumsum(sizes, axis=1) <= kv).sum(axis=1), 1)
    assert kv_fill(kv, mean, sd) == pytest.approx(fitted.mean(), rel=0.03)


def test_ladder_rises_with_load_and_burst_costs_more() -> None:
    grid, lat = linear(1.0, 0.05, 64.0)
    srv = server(grid, lat, 0.0, 64.0, 0.2, TokenMoments(1000.0, 100.0, 0.1, 0.6, 12.0))
    us, alone, extra = ladder(srv, (0.0, 0.3, 0.6, 0.9, 0.995), 12.0)
    assert us == (0.0, 0.3, 0.6, 0.9, 0.995)
    assert all(x < y for x, y in itertools.pairwise(alone))
    assert all(e > 0 for e in extra)
    # With no load, a burst's last call runs beside its overlap share of 11 siblings.
    k = 11.0 * sibling_overlap(12.0, srv.work_cv2)
    assert alone[0] + extra[0] == pytest.approx(srv.e(1.0 + k))


def test_burst_spread_over_replicas() -> None:
    assert burst_share(12.0, 1.0) == 1.0  # the whole burst on one replica
    assert burst_share(12.0, 1.0 / 3.0) == pytest.approx(3.0 / 11.0)  # 4 of 12 each
    assert burst_share(12.0, 1.0 / 12.0) == 0.0  # one call per replica
    assert burst_share(1.0, 1.0) == 0.0
    s = shape("m", capacity=10.0, base_s=1.0, burst_s=0.5)
    one = parts_latency_s([(s, 1)], 3.0, 12.0)
    three = parts_latency_s([(s, 3)], 3.0, 12.0)
    # the factory's burst ladder is half the ladder: the whole burst adds 50%
    assert one == pytest.approx(1.5 * interpolate_latency_s(s, 0.3))
    assert three < one
    assert parts_latency_s([(s, 1)], 3.0, 1.0) == pytest.approx(interpolate_latency_s(s, 0.3))
