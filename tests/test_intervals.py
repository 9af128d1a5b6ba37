"""Grouped interval arithmetic against brute force, on both the fast and exact paths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.aggregate import intervals

GROUPS = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 12), st.integers(0, 5)), min_size=1, max_size=30
)


def _brute(rows: list[tuple[int, int, int]], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    best, union, summed = np.zeros(n, np.int64), np.zeros(n), np.zeros(n)
    for g in range(n):
        mine = [(s, s + d) for gg, s, d in rows if gg == g]
        for t in {s for s, _ in mine}:
            best[g] = max(best[g], sum(1 for s, e in mine if s <= t < e))
        covered = {x for s, e in mine for x in range(s, e)}  # integer grid is exact here
        union[g], summed[g] = len(covered), sum(e - s for s, e in mine)
    return best, union, summed


@settings(max_examples=60, deadline=None)
@given(GROUPS)
def test_fast_and_exact_paths_match_brute_force(rows: list[tuple[int, int, int]]) -> None:
    group = np.array([r[0] for r in rows])
    start = np.array([r[1] for r in rows], dtype=float)
    end = start + np.array([r[2] for r in rows], dtype=float)
    best, union, summed = _brute(rows, 5)
    got = intervals.grouped_intervals(group, start, end)
    assert np.allclose(union[got.keys], got.union) and np.allclose(summed[got.keys], got.summed)
    fast = intervals.max_concurrency(group, start, end, 5)
    exact = intervals._max_concurrency_exact(group, start, end, 5)
    # Zero-length calls are never "open"; brute force agrees (s <= t < e is empty).
    assert fast.tolist() == best.tolist() == exact.tolist()


def test_exact_fallbacks_agree_with_fast_paths() -> None:
    rng = np.random.default_rng(3)
    group = rng.integers(0, 50, 2000)
    start = rng.integers(0, 100, 2000).astype(float)
    end = start + rng.integers(0, 20, 2000)
    fast = intervals.grouped_intervals(group, start, end)
    fast_best = intervals.max_concurrency(group, start, end, 50)
    limit = intervals._EXACT_LIMIT
    intervals._EXACT_LIMIT = 0.0  # force the lexsort / segment-wise paths
    try:
        exact = intervals.grouped_intervals(group, start, end)
        exact_best = intervals.max_concurrency(group, start, end, 50)
    finally:
        intervals._EXACT_LIMIT = limit
    assert np.array_equal(fast.keys, exact.keys)
    assert np.allclose(fast.union, exact.union) and np.allclose(fast.summed, exact.summed)
    assert np.array_equal(fast_best, exact_best)


def test_chunked_by_owner_equals_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    owner = np.sort(rng.integers(0, 40, 3000))
    rng.shuffle(owner)  # rows of one workflow need not be contiguous
    model = rng.integers(0, 3, 3000)
    key = owner * 3 + model
    start = rng.integers(0, 100, 3000).astype(float)
    end = start + rng.integers(0, 20, 3000)
    whole = intervals.grouped_intervals(key, start, end)
    whole_best = intervals.max_concurrency(owner, start, end, 40)
    monkeypatch.setattr(intervals, "CHUNK_ROWS", 250)
    assert len(intervals.owner_chunks(owner, 40)) > 5
    chunked = intervals.grouped_intervals_by_owner(key, start, end, owner, 40)
    assert np.array_equal(whole.keys, chunked.keys)
    assert np.array_equal(whole.counts, chunked.counts)
    assert np.allclose(whole.union, chunked.union) and np.allclose(whole.summed, chunked.summed)
    assert np.array_equal(whole_best, intervals.max_concurrency_by_owner(owner, start, end, 40))
