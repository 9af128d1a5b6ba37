"""Steady-state serving latency from kernel-composed engine steps (pure).

vLLM's scheduler (V1, chunked prefill) fills each step with every running decode first
and then one prefill chunk from the remaining token budget (`max_num_batched_tokens`).
With B requests running (closed loop, B = min(C, KV slots, max-num-seqs)), prompt I,
output O, mean decode context s = I + O/2, and d = B - 1 other sequences decoding while
one request prefills in chunks x_j after o_j earlier tokens (x_j <= budget - d):

  decode step     K_dec = linear(B) + lm_head(B) + decode_attn(B, s)
  own prefill     K_own = sum_j linear(d + x_j) + lm_head(d + 1) + decode_attn(d, s)
                          + prefill_attn(x_j, o_j)
  marginal cost   K_pre = sum_j [linear(d + x_j) - linear(d)] + prefill_attn(I)
                  (what one request's prefill adds to steps that run anyway)

and the engine's non-kernel time, fitted on measured end-to-end points
(`EngineOverhead`, benchmarks/fit_kernel_overhead.py): a per-step constant S and a
per-layer constant l per step (the small kernels the tables lack, norms, rotary, KV
writes, activation quantisation, each a few microseconds at any batch), a cost q per
running sequence per step (scheduling, input preparation, sampling), a cost r per token
per layer (the same kernels' size-dependent part), a kernel-time multiplier a, a
per-request constant c (HTTP, tokenisation, detokenisation):

  T_dec  = a K_dec + S + l L + (q + r L) B
  T_own  = a K_own + n_chunks (S + l L + q B) + r L (I + n_chunks d)
  M_pre  = a K_pre + r L I
  TTFT   = c + T_own + g (B - 1) M_pre          (others' prefills ahead of this one)
  E2E    = c + T_own + (O - 1) T_dec + k (B - 1) M_pre   (the others' prefills interleave)
  TPOT   = (E2E - TTFT) / (O - 1),  throughput X = B / E2E,  plus (C - B) / X of waiting
           for a KV slot when C > B
with k (interference, physically about 1) and g <= k fitted.

A replica of `pp` pipeline stages (TP t inside each node, stages on different nodes)
runs the same layers as the TP-t model, L / pp per stage one after the other, and each
step passes its tokens' hidden states over the (pp - 1) links between stages
(`planner.profiles.analytic.pipeline_hops_ms`: the GPU's inter-node bandwidth and
latency). The kernel costs above are the TP-t model's; the hops are added to every step
unscaled (they are transfers, not kernels: the kernel-time multiplier a is not applied).
No overlap of micro-batches is credited (vLLM keeps up to pp batches in flight), so, as
in the roofline, a pipeline's throughput is a lower bound.

Data-parallel attention (r = dp ranks, `planner.profiles.kernels.step`): the B running
requests are spread evenly over the ranks (vLLM's API server sends each request to the
least-loaded rank), b = B / r each. A rank's step is its own kernels at its own tokens
plus the routed experts at the tokens of all ranks (E(.) below, the dispatch and combine
collectives included), with every other rank decoding its b sequences:

  K_dec = linear(b) + E(B) + lm_head(b) + decode_attn(b, s)
  K_own = sum_j linear(b - 1 + x_j) + E(B - 1 + x_j) + ...      (as above, d = b - 1)
  K_pre = A + X,  A = sum_j [linear(d + x_j) - linear(d)] + prefill_attn,
                  X = sum_j [E(B - 1 + x_j) - E(B - 1)]

and the per-sequence engine costs count the rank's b. The ranks run in lockstep (every
MoE layer waits for all of them; an idle rank runs dummy steps), so a request also waits
out the other ranks' prefills: their expert part X always (every GPU runs it), their own
part A when it does not coincide with a prefill on this rank. With p = min(1, b n / (O -
1 + n)) the share of a rank's steps that carry a prefill chunk (n chunks per prompt), the
steps of the replica that carry one on some rank are 1 - (1 - p)^r, lam = (1 - (1 - p)^r) /
p times a rank's own (1 <= lam <= r). The others' prefills a request sees are then
(lam b - 1) A + (B - 1) X instead of (B - 1) K_pre, written as w K_pre with w in
[b - 1, B - 1]; w replaces B - 1 in the TTFT wait and E2E interference terms.

With a cached prefix of c tokens (prefix caching) only the I - c uncached tokens are
prefilled: the chunks start after o_1 = c earlier tokens (their attention covers the
cached prefix) and I in T_own / M_pre counts the uncached tokens; decode context and KV
residency stay I + O/2.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from planner.profiles import PerfPoint
from planner.profiles.kernels.curves import LogCurve
from planner.profiles.kernels.step import StepCurves, StepModel


@dataclass(frozen=True)
class EngineOverhead:
    """Fitted non-kernel time of the vLLM engine (see the module docstring)."""

    kernel_scale: float  # a
    step_ms: float  # S
    sequence_us: float  # q
    token_layer_ns: float  # r
    request_ms: float  # c
    interference: float  # k
    wait_fraction: float  # g
    layer_us: float = 0.0  # l
    source: str = ""


# One value, or one per point when many points are combined at once (the fit).
Values = Any


@dataclass(frozen=True)
class StepCosts:
    """Kernel-only costs of one (shape, token shape, running batch), in ms; the fields
    may also be arrays (one entry per point), which `combine` handles alike."""

    batch: Values
    layers: Values
    input_tokens: Values
    output_tokens: Values
    chunks: Values
    decode_ms: Values  # K_dec
    own_prefill_ms: Values  # K_own
    marginal_prefill_ms: Values  # K_pre
    # Other requests' prefills whose K_pre each request's life sees: B - 1 for one engine,
    # w for DP attention (module docstring).
    interfering: Values
    # Transfers between pipeline stages (0 for one stage), not scaled by a.
    decode_hops_ms: Values = 0.0
    own_prefill_hops_ms: Values = 0.0
    marginal_prefill_hops_ms: Values = 0.0


def _no_hops(tokens: float) -> float:
    return 0.0


def step_costs(
    step: StepModel,
    budget: int,
    batch: float,
    input_tokens: float,
    output_tokens: float,
    fraction: float = 1.0,
    cached_tokens: float = 0.0,
    hops: Callable[[float], float] = _no_hops,
) -> StepCosts:
    """Kernel costs of the steady state with `batch` requests running (pure; reads the
    shape's cached curves, so each call is a few microseconds of arithmetic). On a GPU
    share `fraction` kernel time is the whole GPU's divided by the share; the first
    `cached_tokens` of each prompt come from the prefix cache. `hops(tokens)`: ms a step
    of that many tokens spends between pipeline stages."""
    curves = step.curves()
    if curves.expert is not None:
        return _dp_step_costs(
            step,
            curves,
            curves.expert,
            budget,
            batch,
            input_tokens,
            output_tokens,
            fraction,
            cached_tokens,
        )
    b = max(batch, 1.0)
    isl, osl = max(input_tokens, 1.0), max(output_tokens, 1.0)
    cached = min(max(cached_tokens, 0.0), isl - 1.0)
    new = isl - cached
    context = isl + osl / 2.0
    others = b - 1.0
    chunk = max(float(budget) - others, 16.0)
    chunks = max(1, math.ceil(new / chunk))
    others_attn = curves.decode_attention(others, context) if others >= 1 else 0.0
    lm_own = curves.lm_head(others + 1.0)
    base = curves.linear(others)
    own = marginal = own_hops = marginal_hops = 0.0
    before = cached
    for j in range(chunks):
        size = chunk if j < chunks - 1 else new - chunk * (chunks - 1)
        attention = curves.prefill_attention(size, before)
        with_chunk = curves.linear(others + size)
        own += with_chunk + lm_own + others_attn + attention
        marginal += with_chunk - base + attention
        own_hops += hops(others + size)
        marginal_hops += hops(others + size) - hops(others)
        before += size
    return StepCosts(
        batch=b,
        layers=step.model.layers,
        input_tokens=new,  # the prefilled tokens (the per-token costs of combine)
        output_tokens=osl,
        chunks=chunks,
        decode_ms=(curves.linear(b) + curves.lm_head(b) + curves.decode_attention(b, context))
        / fraction,
        own_prefill_ms=own / fraction,
        marginal_prefill_ms=marginal / fraction,
        interfering=b - 1.0,
        decode_hops_ms=hops(b),
        own_prefill_hops_ms=own_hops,
        marginal_prefill_hops_ms=marginal_hops,
    )


def _dp_step_costs(
    step: StepModel,
    curves: StepCurves,
    expert: LogCurve,
    budget: int,
    batch: float,
    input_tokens: float,
    output_tokens: float,
    fraction: float,
    cached_tokens: float,
) -> StepCosts:
    """`step_costs` of a data-parallel-attention replica (module docstring): `batch`
    requests over `step.dp` ranks in lockstep. Whole GPUs, one pipeline stage."""
    ranks = step.dp
    total = max(batch, 1.0)
    b = max(batch / ranks, 1.0)  # a rank's running requests (below one: a lone request)
    isl, osl = max(input_tokens, 1.0), max(output_tokens, 1.0)
    cached = min(max(cached_tokens, 0.0), isl - 1.0)
    new = isl - cached
    context = isl + osl / 2.0
    others = b - 1.0
    chunk = max(float(budget) - others, 16.0)
    chunks = max(1, math.ceil(new / chunk))
    others_attn = curves.decode_attention(others, context) if others >= 1 else 0.0
    lm_own = curves.lm_head(others + 1.0)
    base, base_expert = curves.linear(others), expert(total - 1.0)
    own = own_part = expert_part = 0.0
    before = cached
    for j in range(chunks):
        size = chunk if j < chunks - 1 else new - chunk * (chunks - 1)
        attention = curves.prefill_attention(size, before)
        with_chunk = curves.linear(others + size)
        with_experts = expert(total - 1.0 + size)
        own += with_chunk + with_experts + lm_own + others_attn + attention
        own_part += with_chunk - base + attention
        expert_part += with_experts - base_expert
        before += size
    marginal = own_part + expert_part
    # Lockstep: the share of a rank's steps with a prefill chunk, and how many more steps
    # of the replica carry one on some rank (lam, between 1 and the ranks).
    p = min(1.0, b * chunks / max(osl - 1.0 + chunks, 1.0))
    lam = (1.0 - (1.0 - p) ** ranks) / p
    seen = max(lam * b - 1.0, 0.0) * own_part + (total - 1.0) * expert_part
    interfering = seen / marginal if marginal > 0 else others
    decode = (
        curves.linear(b) + expert(total) + curves.lm_head(b) + curves.decode_attention(b, context)
    )
    return StepCosts(
        batch=b,
        layers=step.model.layers,
        input_tokens=new,
        output_tokens=osl,
        chunks=chunks,
        decode_ms=decode / fraction,
        own_prefill_ms=own / fraction,
        marginal_prefill_ms=marginal / fraction,
        interfering=interfering,
    )


@dataclass(frozen=True)
class Latency:
    """Running-set latencies of one steady state (no KV-slot wait), ms (or arrays)."""

    ttft_ms: Values
    tpot_ms: Values
    e2e_ms: Values


def combine(costs: StepCosts, o: EngineOverhead) -> Latency:
    """Apply the engine overhead to kernel costs (the formulas of the module docstring)."""
    b, osl, isl = costs.batch, costs.output_tokens, costs.input_tokens
    per_token = o.token_layer_ns * 1e-6 * costs.layers
    seq = o.sequence_us * 1e-3
    step = o.step_ms + o.layer_us * 1e-3 * costs.layers
    dec = o.kernel_scale * costs.decode_ms + costs.decode_hops_ms + step + (seq + per_token) * b
    own = (
        o.kernel_scale * costs.own_prefill_ms
        + costs.own_prefill_hops_ms
        + costs.chunks * (step + seq * b)
        + per_token * (isl + costs.chunks * (b - 1.0))
    )
    marginal = (
        o.kernel_scale * costs.marginal_prefill_ms
        + costs.marginal_prefill_hops_ms
        + per_token * isl
    )
    first = o.request_ms + own
    ttft = first + o.wait_fraction * costs.interfering * marginal
    e2e = first + (osl - 1.0) * dec + o.interference * costs.interfering * marginal
    tpot = np.where(osl > 1, (e2e - ttft) / np.maximum(osl - 1.0, 1.0), 0.0)
    return Latency(ttft_ms=ttft, tpot_ms=tpot if np.ndim(tpot) else float(tpot), e2e_ms=e2e)


def kernel_steady_state(
    step: StepModel,
    overhead: EngineOverhead,
    budget: int,
    input_tokens: float,
    output_tokens: float,
    concurrency: float,
    max_concurrency: float,
    kv_cache_tokens: int,
    fraction: float = 1.0,
    cached_tokens: float = 0.0,
    hops: Callable[[float], float] = _no_hops,
) -> PerfPoint:
    """Closed-loop steady state with `concurrency` requests in the system (pure).

    `fraction`: the replica's share of the GPU; kernel time is the whole GPU's / share.
    `cached_tokens`: the prefix of each prompt served from the prefix cache.
    `hops`: ms a step of so many tokens spends between pipeline stages (none by default).
    """
    osl = max(1.0, output_tokens)
    running = min(concurrency, max_concurrency)
    costs = step_costs(
        step,
        budget,
        max(running, 1.0),
        input_tokens,
        output_tokens,
        fraction,
        cached_tokens,
        hops,
    )
    lat = combine(costs, overhead)
    per_ms = running / lat.e2e_ms
    queued = max(concurrency - running, 0.0)
    wait = 0.0 if queued == 0 else (queued / per_ms if per_ms > 0 else math.inf)
    return PerfPoint(
        concurrency=concurrency,
        requests_per_s=per_ms * 1e3,
        output_tokens_per_s=per_ms * 1e3 * osl,
        ttft_ms=lat.ttft_ms + wait,
        tpot_ms=lat.tpot_ms,
        e2e_ms=lat.e2e_ms + wait,
        kv_cache_tokens=kv_cache_tokens,
        max_concurrency=max_concurrency,
        source="kernels",
    )
