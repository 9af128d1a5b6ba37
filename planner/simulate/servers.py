"""Replica servers: latency-versus-concurrency curves precomputed on a grid.

Each replica is a processor-sharing server with continuous batching. A call's *work* is
its latency alone on the replica (prefill scaled by its input tokens, decode by its
output tokens, around the model's mean token shape). With `n` calls in service every
call progresses at `speed[n] = e2e(1) / e2e(n)` seconds of work per second, where
`e2e(c)` is the profile's end-to-end latency of the mean-shaped call at concurrency `c`:
`n` identical calls then finish together after exactly `e2e(n)`, as the profile says. At
most `max_concurrency` calls are in service, and only while their tokens (input + output)
fit the replica's KV cache; later calls queue FIFO at the replica. Shared GPUs need
nothing special: a fractional shape's profile already carries the share's lower speed
and smaller KV cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from planner.errors import ProfileError
from planner.profiles import ProfileTable
from planner.types.shapes import ShapeKey

# Sequences a replica runs at once when its profile names no larger limit: vLLM's
# --max-num-seqs default on GPUs under 70 GiB. A profile whose mean call runs N_max > 256 at
# once (the catalog's vllm_max_num_seqs, 1024 on H100) gets N_max: the server deployed.
MAX_CONCURRENCY = 256


@dataclass(frozen=True)
class ServerCurve:
    """One replica shape serving one model's calls.

    Attributes:
        speed: `speed[n]` for n in 1..max_concurrency is each call's progress rate (work
            seconds per second) with n calls in service; `speed[0]` is unused.
        prefill_s / decode_s: isolated prefill and decode time of the reference call.
        ref_input_tokens / ref_output_tokens: the reference call's token shape.
        token_scaled: False gives every call the reference call's work whatever its
            tokens (hand-computable engine tests, fixed-latency servers).
        kv_tokens: KV-cache tokens of the replica; a call holds input + output tokens
            while in service (inf: only `max_concurrency` limits admission).
    """

    speed: np.ndarray
    prefill_s: float
    decode_s: float
    ref_input_tokens: float
    ref_output_tokens: float
    token_scaled: bool = True
    kv_tokens: float = math.inf

    @property
    def max_concurrency(self) -> int:
        return len(self.speed) - 1

    @property
    def capacity_per_s(self) -> float:
        """Reference calls per second at the best concurrency (saturation throughput)."""
        n = np.arange(1, len(self.speed))
        return float((n * self.speed[1:]).max() / max(self.prefill_s + self.decode_s, 1e-12))


def constant_curve(latency_s: float, max_concurrency: int) -> ServerCurve:
    """A replica whose calls take `latency_s` whatever the load (up to its capacity)."""
    return ServerCurve(
        speed=np.ones(max_concurrency + 1),
        prefill_s=0.0,
        decode_s=latency_s,
        ref_input_tokens=1.0,
        ref_output_tokens=1.0,
        token_scaled=False,
    )


def concurrency_grid(max_concurrency: int) -> np.ndarray:
    """1, 2, 3, 4, 6, 8, 12, 16, ... up to and including `max_concurrency`."""
    points = {1, 2, 3, 4, max_concurrency}
    c = 4
    while c < max_concurrency:
        points.add(c)
        points.add(int(c * 1.5))
        c *= 2
    return np.array(sorted(p for p in points if p <= max_concurrency), dtype=np.float64)


def profile_curve(
    profiles: ProfileTable, key: ShapeKey, input_tokens: float, output_tokens: float
) -> ServerCurve:
    """Sample the profile's latency-vs-concurrency curve for one shape and token shape.

    Up to the KV capacity of the mean call (`max_concurrency`, fractional) the curve is the
    profile's; beyond it (smaller calls fit more of themselves) the replica's throughput
    stays at the profile's saturation throughput. Admission is by KV tokens (see the
    engine), capped at the larger of MAX_CONCURRENCY and the profile's N_max sequences.

    Raises:
        ProfileError: the shape cannot hold a single call of this size.
    """
    alone = profiles.at_concurrency(key, input_tokens, output_tokens, 1.0)
    n_max = float(alone.max_concurrency)
    cap = max(MAX_CONCURRENCY, int(np.floor(n_max))) if math.isfinite(n_max) else MAX_CONCURRENCY
    top = min(n_max, float(cap))
    if top < 1 or alone.e2e_ms <= 0:
        raise ProfileError(
            f"{key.model} on {key.gpu_type} tp={key.tp} fraction={key.gpu_fraction:g} "
            f"cannot hold one call of {input_tokens:.0f}+{output_tokens:.0f} tokens "
            f"(KV capacity {alone.max_concurrency:.2f} sequences); give it a larger share"
        )
    grid = np.union1d(concurrency_grid(int(np.floor(top))), [top])
    e2e = np.array(
        [profiles.at_concurrency(key, input_tokens, output_tokens, float(c)).e2e_ms for c in grid]
    )
    e2e = np.maximum.accumulate(np.maximum(e2e, alone.e2e_ms))  # latency never falls with load
    kv_tokens = float(alone.kv_cache_tokens)
    seqs = cap if kv_tokens > 0 else int(np.floor(top))
    n = np.arange(1, seqs + 1, dtype=np.float64)
    # Past `top`, throughput n / e2e(n) stays at its value at `top`.
    latency = np.where(n <= top, np.interp(n, grid, e2e), n * e2e[-1] / top)
    speed = np.empty(seqs + 1)
    speed[0] = 0.0
    speed[1:] = alone.e2e_ms / latency
    ttft_s = min(alone.ttft_ms, alone.e2e_ms) / 1000.0
    return ServerCurve(
        speed=speed,
        prefill_s=ttft_s,
        decode_s=alone.e2e_ms / 1000.0 - ttft_s,
        ref_input_tokens=max(input_tokens, 1.0),
        ref_output_tokens=max(output_tokens, 1.0),
        kv_tokens=kv_tokens if kv_tokens > 0 else math.inf,
    )
