"""A ProfileTable whose answers assume a fixed prefix-cache hit rate per model.

The event simulator asks its profiles for latency curves at a model's mean token shape;
wrapped here, every call of model m is answered with a cached prefix of h_m x input
tokens (h_m from the block-level replay of the traces on the plan's replicas), so the
simulated latencies see the same prefill savings the plan assumed, measured
independently of the plan's hit-rate model.
"""

from __future__ import annotations

from collections.abc import Mapping

from planner.profiles import MemoryFit, PerfPoint, ProfileTable
from planner.types.names import ModelName
from planner.types.shapes import ShapeKey


class CachedPrefixProfiles:
    """`base` with `cached_tokens = hit_rates[model] x input tokens` on every query that
    gives none (a model not in `hit_rates` gets no cache)."""

    def __init__(self, base: ProfileTable, hit_rates: Mapping[ModelName, float]) -> None:
        self.base = base
        self.hit_rates = dict(hit_rates)

    def _cached(self, key: ShapeKey, input_tokens: float, given: float) -> float:
        if given > 0:
            return given
        return min(self.hit_rates.get(key.model, 0.0), 1.0) * max(input_tokens, 0.0)

    def memory(self, key: ShapeKey) -> MemoryFit:
        return self.base.memory(key)

    def at_concurrency(
        self,
        key: ShapeKey,
        input_tokens: float,
        output_tokens: float,
        concurrency: float,
        cached_tokens: float = 0.0,
    ) -> PerfPoint:
        cached = self._cached(key, input_tokens, cached_tokens)
        return self.base.at_concurrency(key, input_tokens, output_tokens, concurrency, cached)

    def at_rate(
        self,
        key: ShapeKey,
        input_tokens: float,
        output_tokens: float,
        rate_per_s: float,
        cached_tokens: float = 0.0,
    ) -> PerfPoint:
        cached = self._cached(key, input_tokens, cached_tokens)
        return self.base.at_rate(key, input_tokens, output_tokens, rate_per_s, cached)

    def capacity_per_s(
        self, key: ShapeKey, input_tokens: float, output_tokens: float, cached_tokens: float = 0.0
    ) -> float:
        cached = self._cached(key, input_tokens, cached_tokens)
        return self.base.capacity_per_s(key, input_tokens, output_tokens, cached)
