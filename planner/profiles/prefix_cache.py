"""Predicted prefix-cache hit rate of one model on one allocation option (pure).

Notation: a model's block references i (from `BlockReferences`: block b_i, time t_i,
session s_i, tokens w_i); R replicas; each replica an LRU cache of C blocks; routing
`balanced` (every call to a replica at random, as a Kubernetes Service does) or
`session` (every call of a workflow to one replica, e.g. Service sessionAffinity
ClientIP; sessions spread at random).

LRU is approximated by its characteristic time T (Che et al. 2002, in the TTL form of
Fricker et al. 2012 and Martina et al. 2014 that holds for any reference process, not
just independent ones): a block is resident at a replica iff that replica saw a
reference to it in the last T seconds. So reference i hits iff an earlier reference of
b_i within T went to the same replica, which happens with probability p = 1/R for each
(balanced), or 1 for an earlier reference of the same session and 1/R for others
(session):

    hit_i(T) = 1 - 1[same-session ref within T] (1 - p)^{n_i(T)}
    h(T)     = sum_i w_i hit_i(T) / input tokens

with n_i(T) the earlier references within T that may land elsewhere. T solves the
capacity constraint: the time-average number of resident blocks per replica is C,

    C = (1 / (R span)) sum_i E[min(T, D_i, end - t_i)],
    P(D_i > x) = 1[no same-session ref within x after t_i] (1 - p)^{m_i(x)}

(D_i: time to the next reference of b_i at the same replica; m_i(x) the later
references within x). When even T = infinity keeps fewer than C blocks, nothing is
evicted. Counts n_i, m_i are tabulated once per model on a grid of T (`reference_curves`);
any (C, R, routing) is then answered from histograms in microseconds (`hit_rate`).

Blocks are treated independently (vLLM's blocks are chained, REFERENCE.md 9): since a
block's earlier references include every earlier reference of its children, a child
hit implies the parent's hit under this approximation, so per-block probabilities add
up to the expected cached prefix. A target rate k times the observed one compresses the
workflows' start times by k, not the gaps inside a workflow (tool calls take as long).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from planner.types.names import ModelName
from planner.types.reuse import BlockReferences, ReuseSource

Routing = Literal["balanced", "session"]
ROUTINGS: tuple[Routing, ...] = ("balanced", "session")

GRID_POINTS = 40  # characteristic times tabulated, log-spaced
MIN_T_S = 0.01
MAX_COUNT = 1024  # references counted individually; more within T count as this many


@dataclass(frozen=True)
class HitCurves:
    """Histograms of reference counts within each grid time T (see the module docstring).

    back[t, f, n]: tokens of references with f = 1 when an earlier same-session
    reference lies within grid_s[t] (0 otherwise) and n earlier other-session ones.
    back_all[t, n]: tokens of references with n earlier references (any session).
    fwd[t, f, n], fwd_all[t, n]: the same for later references, counting blocks (not
    tokens); a reference whose window passes the end of the trace counts as ended.
    """

    model: ModelName
    source: ReuseSource
    block_tokens: int
    input_tokens: float
    span_s: float
    grid_s: np.ndarray
    back: np.ndarray
    back_all: np.ndarray
    fwd: np.ndarray
    fwd_all: np.ndarray

    @property
    def has_references(self) -> bool:
        return bool(self.back_all.sum() > 0)


def reference_curves(refs: BlockReferences, rate_scale: float = 1.0) -> HitCurves:
    """Tabulate a model's references for `hit_rate`.

    Args:
        refs: the model's block references (aggregate.prefix_references).
        rate_scale: target / observed workflow rate; workflow starts move closer by it.
    """
    if rate_scale <= 0:
        raise ValueError(f"rate_scale must be > 0, got {rate_scale}")
    time = refs.workflow_start_s / rate_scale + (refs.time_s - refs.workflow_start_s)
    n = len(refs)
    span = float(time.max() - time.min()) if n > 1 else 0.0
    top = max(span, MIN_T_S * 10) * 2.0
    grid = np.concatenate([[0.0], np.geomspace(MIN_T_S, top, GRID_POINTS - 1)])
    shape = (GRID_POINTS, 2, MAX_COUNT + 1)
    back, fwd = np.zeros(shape), np.zeros(shape)
    back_all, fwd_all = np.zeros(shape[::2]), np.zeros(shape[::2])
    if n == 0:
        return HitCurves(refs.model, refs.source, refs.block_tokens, refs.input_tokens, span,
                         grid, back, back_all, fwd, fwd_all)  # fmt: skip
    end = float(time.max())
    # Only blocks referenced more than once need window searches: a single reference has
    # no earlier or later one (most of a serving trace's blocks are such singletons).
    shared = np.flatnonzero(np.bincount(refs.block)[refs.block] > 1)
    relative = time[shared] - time.min()
    stride = top * 4 + span + 1.0  # keys of one block are contiguous and far from others
    by_block = _Windows(refs.block[shared].astype(np.float64) * stride + relative)
    session_rank = np.unique(refs.session, return_inverse=True)[1].astype(np.float64)
    pair = refs.block[shared].astype(np.float64) * (session_rank.max() + 1) + session_rank[shared]
    # A session that never repeats a block (serving-level traces: one call each) makes
    # session routing count like balanced routing: skip its searches.
    repeats = len(np.unique(pair)) < len(pair)
    by_session = _Windows(pair * stride + relative) if repeats else None
    weight = refs.tokens
    earlier, later = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    same_before, same_after = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    for t, window in enumerate(grid):
        earlier[shared] = by_block.earlier(window)
        later[shared] = by_block.later(window)
        if by_session is not None:
            same_before[shared] = by_session.earlier(window)
            same_after[shared] = by_session.later(window)
        past_end = time + window > end
        ended = np.where(past_end, MAX_COUNT, later)
        same_earlier = same_before > 0
        other_earlier = earlier - same_before
        same_later = (same_after > 0) | past_end
        other_later = np.where(past_end, MAX_COUNT, later - same_after)
        back_all[t] = _histogram(earlier, weight)
        fwd_all[t] = _histogram(ended, None)
        back[t] = _histogram2(same_earlier, other_earlier, weight)
        fwd[t] = _histogram2(same_later, other_later, None)
    return HitCurves(refs.model, refs.source, refs.block_tokens, refs.input_tokens, span,
                     grid, back, back_all, fwd, fwd_all)  # fmt: skip


class _Windows:
    """Counts of keys within a window before / after each key (keys of one block are
    contiguous and offset far from other blocks'). Searches run in sorted order (several
    times faster than scattered queries); counts come back in the keys' order."""

    def __init__(self, keys: np.ndarray) -> None:
        order = np.argsort(keys, kind="stable")
        self.sorted = keys[order]
        self.position = np.empty(len(keys), dtype=np.int64)
        self.position[order] = np.arange(len(keys))
        self.index = np.arange(len(keys))

    def earlier(self, window: float) -> np.ndarray:
        """Keys in [key - window, key) (none when window is 0)."""
        low = np.searchsorted(self.sorted, self.sorted - window, side="left")
        counts: np.ndarray = np.maximum(self.index - low, 0)[self.position]
        return counts

    def later(self, window: float) -> np.ndarray:
        """Keys in (key, key + window]."""
        high = np.searchsorted(self.sorted, self.sorted + window, side="right")
        counts: np.ndarray = np.maximum(high - self.index - 1, 0)[self.position]
        return counts


def _histogram(counts: np.ndarray, weight: np.ndarray | None) -> np.ndarray:
    capped = np.minimum(counts, MAX_COUNT)
    return np.bincount(capped, weights=weight, minlength=MAX_COUNT + 1).astype(np.float64)


def _histogram2(flag: np.ndarray, counts: np.ndarray, weight: np.ndarray | None) -> np.ndarray:
    capped = np.minimum(counts, MAX_COUNT) + flag.astype(np.int64) * (MAX_COUNT + 1)
    out = np.bincount(capped, weights=weight, minlength=2 * (MAX_COUNT + 1))
    return out.astype(np.float64).reshape(2, MAX_COUNT + 1)


@dataclass(frozen=True)
class HitPrediction:
    """A predicted hit rate and how it came about."""

    hit_rate: float  # cached share of all input tokens
    characteristic_time_s: float  # math.inf when the cache never fills
    cache_blocks: float  # per replica, in the trace's blocks


def hit_rate(
    curves: HitCurves, cache_tokens: float, replicas: int, routing: Routing
) -> HitPrediction:
    """Predicted hit rate with `replicas` LRU caches of `cache_tokens` each.

    Raises:
        ValueError: replicas < 1 or an unknown routing.
    """
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    if routing not in ROUTINGS:
        raise ValueError(f"unknown routing {routing!r}; one of {', '.join(ROUTINGS)}")
    blocks = max(cache_tokens, 0.0) / curves.block_tokens
    if not curves.has_references or curves.input_tokens <= 0 or blocks <= 0:
        return HitPrediction(0.0, 0.0, blocks)
    stay = (1.0 - 1.0 / replicas) ** np.arange(MAX_COUNT + 1)
    if routing == "balanced":
        hits = curves.back_all @ (1.0 - stay)
        survive = curves.fwd_all @ stay
    else:
        hits = curves.back[:, 1, :].sum(axis=1) + curves.back[:, 0, :] @ (1.0 - stay)
        survive = curves.fwd[:, 0, :] @ stay
    # Occupancy(T): integral over x <= T of the surviving references (trapezoids).
    widths = np.diff(curves.grid_s)
    occupancy = np.concatenate([[0.0], np.cumsum(widths * (survive[1:] + survive[:-1]) / 2)])
    span = max(curves.span_s, MIN_T_S)
    per_replica = occupancy / (replicas * span)
    if blocks >= per_replica[-1]:
        return HitPrediction(float(hits[-1] / curves.input_tokens), math.inf, blocks)
    t = float(np.interp(blocks, per_replica, curves.grid_s))
    return HitPrediction(float(np.interp(t, curves.grid_s, hits) / curves.input_tokens), t, blocks)
