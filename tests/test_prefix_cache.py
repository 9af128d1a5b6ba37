"""The hit-rate model (LRU characteristic time) and the block-level LRU replay."""

from __future__ import annotations

import numpy as np
import pytest

from planner.profiles.prefix_cache import hit_rate, reference_curves
from planner.simulate.prefix_replay import replay_prefix_cache
from planner.types.reuse import BlockReferences


def _refs(
    calls: list[tuple[float, int, list[int]]], block_tokens: int = 16, extra_tokens: float = 0.0
) -> BlockReferences:
    """References of calls (time, session, block ids), each block `block_tokens` long."""
    time, session, call, block = [], [], [], []
    for i, (t, s, blocks) in enumerate(sorted(calls, key=lambda c: c[0])):
        for b in blocks:
            time.append(t)
            session.append(s)
            call.append(i)
            block.append(b)
    n = len(block)
    tokens = np.full(n, float(block_tokens))
    return BlockReferences(
        model="m",
        source="hashes",
        block_tokens=block_tokens,
        time_s=np.asarray(time, dtype=float),
        workflow_start_s=np.asarray(time, dtype=float),
        block=np.unique(np.asarray(block), return_inverse=True)[1].astype(np.int64),
        session=np.asarray(session, dtype=np.int64),
        call=np.asarray(call, dtype=np.int64),
        tokens=tokens,
        input_tokens=float(tokens.sum() + extra_tokens),
        calls=len(calls),
    )


def test_lru_replay_touches_a_prompt_last_block_first() -> None:
    refs = _refs([(0.0, 0, [1, 2, 3]), (1.0, 1, [1, 2, 4])])
    # Two blocks of room: the first call leaves its first two blocks (3 was touched first
    # and evicted first), so the second call hits 1 and 2.
    assert replay_prefix_cache(refs, 32, 1, "balanced").hit_tokens == 32
    # A hit stops at the first missing block, as vLLM reuses only a cached prefix.
    refs = _refs([(0.0, 0, [1, 3]), (1.0, 1, [2, 3])])
    assert replay_prefix_cache(refs, 1e6, 1, "balanced").hit_tokens == 0


def test_session_routing_keeps_a_session_on_its_replica() -> None:
    # Ten sessions, each sending its growing context five times.
    calls = [
        (10.0 * k + s, s, [100 * s + j for j in range(k + 1)]) for s in range(10) for k in range(5)
    ]
    refs = _refs(calls)
    repeated = sum(k for k in range(5)) * 10 * 16  # every block seen before in its session
    session = replay_prefix_cache(refs, 1e6, 4, "session")
    assert session.hit_tokens == repeated
    balanced = replay_prefix_cache(refs, 1e6, 4, "balanced", seed=3)
    assert balanced.hit_tokens < repeated
    curves = reference_curves(refs)
    assert hit_rate(curves, 1e6, 4, "session").hit_rate == pytest.approx(session.hit_rate)
    assert hit_rate(curves, 1e6, 1, "balanced").hit_rate == pytest.approx(refs.potential())


def test_an_infinite_cache_reaches_the_reuse_potential() -> None:
    rng = np.random.default_rng(0)
    calls = [(float(t), int(t), [0, 1, int(rng.integers(2, 50))]) for t in range(200)]
    refs = _refs(calls, extra_tokens=1000.0)
    prediction = hit_rate(reference_curves(refs), 1e9, 1, "balanced")
    assert prediction.characteristic_time_s == float("inf")
    assert prediction.hit_rate == pytest.approx(refs.potential())
    assert hit_rate(reference_curves(refs), 0.0, 1, "balanced").hit_rate == 0.0


def test_prediction_tracks_the_lru_replay_when_the_cache_evicts() -> None:
    # Independent references to 400 blocks with Zipf popularity, one block per call:
    # the setting of Che's approximation, which is accurate to about a point there.
    rng = np.random.default_rng(1)
    weights = 1.0 / np.arange(1, 401) ** 0.8
    blocks = rng.choice(400, size=6000, p=weights / weights.sum())
    refs = _refs([(float(i) * 0.1, i, [int(b)]) for i, b in enumerate(blocks)])
    curves = reference_curves(refs)
    for capacity_blocks in (20, 60, 150):
        for replicas in (1, 3):
            predicted = hit_rate(curves, capacity_blocks * 16, replicas, "balanced").hit_rate
            simulated = replay_prefix_cache(refs, capacity_blocks * 16, replicas, "balanced")
            assert predicted == pytest.approx(simulated.hit_rate, abs=0.03)


def test_more_replicas_split_balanced_traffic() -> None:
    calls = [(float(t), t, [0, 1, 2, t % 7 + 10]) for t in range(300)]
    curves = reference_curves(_refs(calls))
    rates = [hit_rate(curves, 1e6, r, "balanced").hit_rate for r in (1, 2, 4, 8)]
    assert rates == sorted(rates, reverse=True) and rates[0] > rates[-1]


def test_a_higher_rate_moves_sessions_closer_not_their_calls() -> None:
    # Sessions start every 10 s; each re-sends its 4-block prompt 5 s later. At 10x the
    # rate sessions start every second, so more blocks are written between a session's
    # two calls and a small cache keeps fewer of them; the 5 s gap itself stays.
    calls = []
    for i in range(150):
        blocks = [4 * i + j for j in range(4)]
        calls += [(10.0 * i, i, blocks), (10.0 * i + 5.0, i, blocks)]
    refs = _refs(calls)
    refs = BlockReferences(
        **{**refs.__dict__, "workflow_start_s": np.floor(refs.time_s / 10.0) * 10.0}
    )
    capacity = 12 * 16  # three sessions' prompts
    slow = hit_rate(reference_curves(refs), capacity, 1, "balanced").hit_rate
    fast = hit_rate(reference_curves(refs, rate_scale=10.0), capacity, 1, "balanced").hit_rate
    assert slow == pytest.approx(0.5, abs=0.02)  # every second call hits
    assert fast < slow - 0.1
    replayed = replay_prefix_cache(refs, capacity, 1, "balanced", rate_scale=10.0).hit_rate
    assert fast == pytest.approx(replayed, abs=0.05)
    with pytest.raises(ValueError, match="rate_scale"):
        reference_curves(refs, rate_scale=0.0)
    with pytest.raises(ValueError, match="routing"):
        hit_rate(reference_curves(refs), 10.0, 1, "sticky")  # type: ignore[arg-type]
