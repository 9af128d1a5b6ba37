"""Prefix reuse evidence: every KV-block reference of one model's calls.

Produced by `aggregate.prefix_references(calls)`, consumed by the hit-rate model
(`planner.profiles.prefix_cache`) and the block-level LRU replay
(`planner.simulate.prefix_replay`). One row per (call, prompt block): the block's id (equal
ids are equal prefixes), when the call was sent, its workflow (a session, for affine
routing) and the tokens the block covers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from planner.types.names import ModelName

# Where the evidence came from, best first (traces/README.md, "Prefix reuse evidence"):
# block hashes in the trace; the session structure (an agent's previous call in the same
# workflow bounds its reusable prefix); only the provider's cached_input_tokens (a reuse
# potential on someone else's cache: no blocks, so no hit-rate prediction); nothing.
ReuseSource = Literal["hashes", "session", "provider", "none"]
REUSE_SOURCES: tuple[ReuseSource, ...] = ("hashes", "session", "provider", "none")


@dataclass(frozen=True)
class BlockReferences:
    """One model's prefix-block references, sorted by time (ties by call, then position).

    Attributes:
        source: the evidence the blocks come from.
        block_tokens: tokens per block (the trace's hash granularity).
        time_s: when the referencing call was sent (seconds from the first call).
        workflow_start_s: when the call's workflow started (same clock); a target rate k
            times the observed one compresses workflow starts, not the gaps inside one.
        block: dense block id per reference (0..n_blocks-1).
        session: workflow index per reference (the unit session-affine routing keeps on
            one replica).
        call: call index per reference (0..calls-1, in time order).
        tokens: tokens the reference covers (block_tokens, less for a trailing partial block).
        input_tokens: all input tokens of the model's calls (the hit rate's denominator).
        calls: the model's LLM calls.
        reported_cached_tokens: the provider's cached_input_tokens summed (NaN: none reported).
    """

    model: ModelName
    source: ReuseSource
    block_tokens: int
    time_s: np.ndarray
    workflow_start_s: np.ndarray
    block: np.ndarray
    session: np.ndarray
    call: np.ndarray
    tokens: np.ndarray
    input_tokens: float
    calls: int
    reported_cached_tokens: float = float("nan")

    def __len__(self) -> int:
        return len(self.block)

    @property
    def span_s(self) -> float:
        """Time from the first to the last reference (0 for fewer than two)."""
        return float(self.time_s[-1] - self.time_s[0]) if len(self.time_s) > 1 else 0.0

    def potential(self) -> float:
        """Reuse potential: the share of input tokens whose block was referenced before
        (by any call), i.e. the hit rate of one infinite cache. With only provider
        evidence: the reported cached share."""
        if self.source == "provider":
            return self.reported_cached_tokens / self.input_tokens if self.input_tokens else 0.0
        if not len(self.block) or self.input_tokens <= 0:
            return 0.0
        seen_before = np.ones(len(self.block), dtype=bool)
        _, first = np.unique(self.block, return_index=True)
        seen_before[first] = False
        return float(self.tokens[seen_before].sum() / self.input_tokens)
