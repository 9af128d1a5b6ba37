"""Performance profiles: how fast each model runs on each GPU shape.

A shape is (model, gpu_type, tensor-parallel degree, GPU fraction, expert parallelism).
Four sources feed one ProfileTable with one schema: `measured` (our profiler driving real
vLLM), `imported` (`vllm bench serve --save-result` JSON), `kernels` (engine steps
composed per layer from vLLM kernel latencies measured on real GPUs, for GPU types with
shipped tables) and `roofline` (a calibrated roofline model, the fallback for GPU types
without tables). Measured beats imported beats kernels beats roofline.

This module holds the contract every later stage codes against; the sources live in
submodules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from planner.types.shapes import ShapeKey

Source = Literal["measured", "imported", "kernels", "roofline"]


@dataclass(frozen=True)
class MemoryFit:
    """Memory budget of one replica on its share, per GPU."""

    fits: bool
    share_gib: float  # usable memory of the share (utilisation x memory x fraction)
    weights_gib: float
    overhead_gib: float  # activations, CUDA graphs, NCCL buffers
    kv_cache_gib: float  # what is left for the KV cache (negative when it does not fit)
    kv_cache_tokens: int  # tokens the KV cache holds across the replica
    reason: str = ""  # why it does not fit (empty when it fits)


@dataclass(frozen=True)
class PerfPoint:
    """Steady-state performance of one replica at one load and token shape."""

    concurrency: float  # mean requests in the engine
    requests_per_s: float
    output_tokens_per_s: float
    ttft_ms: float
    tpot_ms: float
    e2e_ms: float
    kv_cache_tokens: int
    max_concurrency: float  # sequences of this shape the KV cache holds
    source: Source
    saturated: bool = False  # the offered load exceeds what the replica sustains


class ProfileTable(Protocol):
    """What the planner asks of performance profiles.

    `cached_tokens` is the mean prefix of each prompt served from the prefix cache (the
    hit rate times the input tokens, predicted per allocation by
    `planner.profiles.prefix_cache`): prefill costs only the uncached tokens, attention
    still covers the cached prefix and the KV cache holds the whole context.
    """

    def memory(self, key: ShapeKey) -> MemoryFit:
        """Memory fit of the shape (weights, overheads, KV cache)."""
        ...

    def at_concurrency(
        self,
        key: ShapeKey,
        input_tokens: float,
        output_tokens: float,
        concurrency: float,
        cached_tokens: float = 0.0,
    ) -> PerfPoint:
        """Performance with `concurrency` requests in flight (closed loop)."""
        ...

    def at_rate(
        self,
        key: ShapeKey,
        input_tokens: float,
        output_tokens: float,
        rate_per_s: float,
        cached_tokens: float = 0.0,
    ) -> PerfPoint:
        """Performance at an offered open-loop request rate; `saturated` past capacity."""
        ...

    def capacity_per_s(
        self, key: ShapeKey, input_tokens: float, output_tokens: float, cached_tokens: float = 0.0
    ) -> float:
        """Highest request rate the replica sustains for this token shape."""
        ...
