"""Block-level prefix-cache replay: one LRU cache of KV blocks per replica (pure).

The independent check of the hit-rate model (`planner.profiles.prefix_cache`): every
call of a model, in time order, goes to a replica by the routing policy, hits the
leading blocks of its prompt that the replica holds (vLLM stops at the first missing
block: only a cached prefix is reused), then touches all its blocks. Blocks are touched
last-to-first, so a prompt's first block is the most recently used (vLLM appends a
finished request's blocks to the free queue in reverse order, REFERENCE.md 9); the least
recently used block is evicted while more than the capacity are held.

Routing: `balanced` sends each call to a replica drawn at random (a Kubernetes
Service); `session` sends every call of a workflow to one replica drawn at random per
workflow (sessionAffinity). Deterministic for a given seed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from planner.profiles.prefix_cache import ROUTINGS, Routing
from planner.types.reuse import BlockReferences


@dataclass(frozen=True)
class ReplayResult:
    """Hit rate of a replay: cached share of all input tokens."""

    hit_rate: float
    hit_tokens: float
    input_tokens: float
    evictions: int


def replay_prefix_cache(
    refs: BlockReferences,
    cache_tokens: float | Sequence[float],
    replicas: int,
    routing: Routing,
    *,
    rate_scale: float = 1.0,
    seed: int = 0,
) -> ReplayResult:
    """Replay a model's block references against `replicas` LRU caches.

    Args:
        cache_tokens: KV tokens per replica available to cached blocks (one figure for
            all replicas, or one per replica).
        rate_scale: target / observed workflow rate (workflow starts move closer by it).

    Raises:
        ValueError: replicas < 1, an unknown routing, or rate_scale <= 0.
    """
    if replicas < 1 or routing not in ROUTINGS or rate_scale <= 0:
        raise ValueError(f"bad replay arguments: replicas={replicas}, routing={routing!r}")
    tokens_each = (
        [float(cache_tokens)] * replicas
        if isinstance(cache_tokens, int | float)
        else [float(c) for c in cache_tokens]
    )
    if len(tokens_each) != replicas:
        raise ValueError(f"{len(tokens_each)} cache sizes for {replicas} replicas")
    capacities = [int(max(c, 0.0) // refs.block_tokens) for c in tokens_each]
    if not len(refs) or max(capacities) <= 0:
        return ReplayResult(0.0, 0.0, refs.input_tokens, 0)
    time = refs.workflow_start_s / rate_scale + (refs.time_s - refs.workflow_start_s)
    # Calls in (scaled) time order; a call's references stay in prompt order.
    order = np.lexsort((np.arange(len(refs)), refs.call, time))
    call = refs.call[order]
    bounds = np.flatnonzero(np.diff(call)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(call)]])
    rng = np.random.default_rng(seed)
    sessions = np.unique(refs.session)
    session_replica = dict(
        zip(sessions.tolist(), rng.integers(replicas, size=len(sessions)).tolist(), strict=True)
    )
    per_call = rng.integers(replicas, size=len(starts)).tolist()
    caches: list[OrderedDict[int, None]] = [OrderedDict() for _ in range(replicas)]
    block = refs.block[order].tolist()
    tokens = refs.tokens[order].tolist()
    session = refs.session[order].tolist()
    hit_tokens = 0.0
    evictions = 0
    for k, (lo, hi) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        replica = session_replica[session[lo]] if routing == "session" else per_call[k]
        cache = caches[replica]
        capacity = capacities[replica]
        for i in range(lo, hi):
            if block[i] not in cache:
                break
            hit_tokens += tokens[i]
        for i in range(hi - 1, lo - 1, -1):
            b = block[i]
            if b in cache:
                cache.move_to_end(b)
            else:
                cache[b] = None
        while len(cache) > capacity:
            cache.popitem(last=False)
            evictions += 1
    total = refs.input_tokens
    return ReplayResult(hit_tokens / total if total > 0 else 0.0, hit_tokens, total, evictions)
