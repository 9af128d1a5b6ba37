"""Cost of one vLLM engine step from first principles: a roofline plus collectives.

Notation (per GPU of a tensor-parallel group of `t` GPUs, GPU share `f`):
  P  parameters (active ones for FLOPs), L layers, h hidden size, d head dim,
  n_kv KV heads, b_w / b_kv bytes per weight / per KV element;
  W_t = weight bytes / t,  k_t = 2 L max(1, n_kv // t) d b_kv  (KV bytes per token;
  vLLM replicates KV heads when t > n_kv).

A step that runs `T` tokens costs
  T_step = max(FLOPs / (eta_c f F), eta_m bytes / (f B)) + k_ar 2 L AR_t(T h 2)
           + steps (L tau_L + tau_0) + B tau_seq
with AR_t(n) = alpha + 2 (t-1)/t n / link (ring all-reduce). This module returns the
uncalibrated terms (`StepTerms`) so the calibration fit and the model share one formula;
`step_ms` applies a GPU's fitted constants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.catalog import BYTES_PER_DTYPE, Calibration, GpuSpec, ModelSpec

GIB = 2.0**30
ACTIVATION_BYTES = 2.0  # BF16 activations and all-reduce payloads


@dataclass(frozen=True)
class StepTerms:
    """Uncalibrated costs of some engine steps (milliseconds)."""

    compute_ms: float  # FLOPs at peak tensor-core rate
    memory_ms: float  # bytes at datasheet bandwidth
    weight_memory_ms: float  # the weights' share of memory_ms (FP4 reads cost extra)
    allreduce_ms: float  # ring all-reduces at datasheet link bandwidth + latency floor
    steps: float  # engine steps (prefill chunks) the work spans
    sequences: float = 0.0  # decode sequences in the step (per-sequence overhead)


def peak_tflops(model: ModelSpec, gpu: GpuSpec) -> float:
    """Tensor-core peak for the model's weight format on this GPU (dense).

    FP8/FP4 weights use FP8/FP4 tensor cores where the GPU has them; otherwise vLLM runs
    weight-only kernels that dequantise to BF16 (e.g. FP8 on A100).
    """
    if model.weight_dtype == "fp4" and gpu.fp4_tflops:
        return gpu.fp4_tflops
    if model.weight_dtype in ("fp8", "fp4") and gpu.fp8_tflops:
        return gpu.fp8_tflops
    return gpu.bf16_tflops


def kv_bytes_per_token(model: ModelSpec, tp: int) -> float:
    """KV-cache bytes one token occupies on each GPU of the TP group.

    MLA caches one latent (kv_lora_rank + RoPE key) per layer, replicated on every GPU.
    Sliding-window layers hold at most the window, so a long sequence's tokens cost only
    the full-attention layers (vLLM's hybrid KV-cache manager frees blocks outside it).
    """
    if model.is_mla:
        latent = model.kv_lora_rank + model.qk_rope_head_dim
        return model.layers * latent * BYTES_PER_DTYPE[model.kv_dtype]
    heads_per_gpu = max(1, model.kv_heads // tp)
    layers = model.layers - model.sliding_layers
    return 2.0 * layers * heads_per_gpu * model.head_dim * BYTES_PER_DTYPE[model.kv_dtype]


def _allreduce_ms(model: ModelSpec, gpu: GpuSpec, tp: int, tokens: float) -> float:
    """Two all-reduces per layer (after attention and after the MLP) of tokens x hidden."""
    if tp <= 1:
        return 0.0
    payload = tokens * model.hidden * ACTIVATION_BYTES
    one = gpu.allreduce_latency_us * 1e-6 + 2.0 * (tp - 1) / tp * payload / (
        gpu.link_gb_per_s * 1e9
    )
    return 2.0 * model.layers * one * 1e3


def decode_terms(
    model: ModelSpec, gpu: GpuSpec, tp: int, fraction: float, batch: float, context: float
) -> StepTerms:
    """One decode step of `batch` sequences whose mean context is `context` tokens."""
    attn_flops = 4.0 * model.layers * model.heads * model.head_dim * context * batch
    flops = (2.0 * model.compute_params_b * 1e9 * batch + attn_flops) / tp
    # A decode step reads every weight except the input embedding table (it gathers only
    # `batch` rows of it); tied embeddings are read anyway as the LM head.
    embedding = 0.0 if model.tie_word_embeddings else model.vocab * model.hidden * 2.0
    weight_bytes = (model.weight_bytes - embedding) / tp
    kv_bytes = batch * context * kv_bytes_per_token(model, tp)
    bandwidth = fraction * gpu.hbm_tb_per_s * 1e12
    return StepTerms(
        compute_ms=flops / (fraction * peak_tflops(model, gpu) * 1e12) * 1e3,
        memory_ms=(weight_bytes + kv_bytes) / bandwidth * 1e3,
        weight_memory_ms=_fp4_weight_bytes(model) / tp / bandwidth * 1e3,
        allreduce_ms=_allreduce_ms(model, gpu, tp, batch),
        steps=1.0,
        sequences=batch,
    )


def prefill_terms(
    model: ModelSpec,
    gpu: GpuSpec,
    tp: int,
    fraction: float,
    input_tokens: float,
    cached_tokens: float = 0.0,
) -> StepTerms:
    """Prefill of one prompt whose first `cached_tokens` come from the prefix cache.

    Only the N = I - c uncached tokens are computed, in chunks of at most the GPU's
    max-num-batched-tokens: their linear layers (2 P N FLOPs), their causal attention
    over the whole context (token j attends to j earlier ones: 2 L H d (I^2 - c^2)
    FLOPs, the cached-prefix scaling AIConfigurator applies), their KV writes, and one
    read of the cached prefix's KV per chunk; all-reduces carry the N new tokens.
    """
    cached = min(max(cached_tokens, 0.0), input_tokens)
    new = input_tokens - cached
    chunks = max(1.0, math.ceil(new / gpu.vllm_max_num_batched_tokens))
    attn_flops = 2.0 * model.layers * model.heads * model.head_dim * (input_tokens**2 - cached**2)
    flops = (2.0 * model.compute_params_b * 1e9 * new + attn_flops) / tp
    kv_per_token = kv_bytes_per_token(model, tp)
    kv_bytes = new * kv_per_token + chunks * cached * kv_per_token
    weight_bytes = chunks * model.weight_bytes / tp
    bandwidth = fraction * gpu.hbm_tb_per_s * 1e12
    return StepTerms(
        compute_ms=flops / (fraction * peak_tflops(model, gpu) * 1e12) * 1e3,
        memory_ms=(weight_bytes + kv_bytes) / bandwidth * 1e3,
        weight_memory_ms=chunks * _fp4_weight_bytes(model) / tp / bandwidth * 1e3,
        allreduce_ms=_allreduce_ms(model, gpu, tp, new / chunks) * chunks,
        steps=chunks,
    )


def _fp4_weight_bytes(model: ModelSpec) -> float:
    """Bytes of FP4-quantised weights (0 for other formats)."""
    if model.weight_dtype != "fp4":
        return 0.0
    return (model.params_b - min(model.embedding_params_b, model.params_b)) * 1e9 * 0.5625


def step_ms(terms: StepTerms, cal: Calibration, layers: int) -> float:
    """Calibrated time of the steps described by `terms`."""
    memory = terms.memory_ms + (cal.fp4_weight_read_multiplier - 1.0) * terms.weight_memory_ms
    roof = max(terms.compute_ms / cal.compute_efficiency, cal.memory_efficiency * memory)
    fixed_us = terms.steps * (layers * cal.per_layer_overhead_us + cal.per_step_overhead_us)
    fixed_us += terms.sequences * cal.per_sequence_overhead_us
    return roof + cal.allreduce_multiplier * terms.allreduce_ms + fixed_us * 1e-3


def marginal_ms(terms: StepTerms, cal: Calibration) -> float:
    """Extra time the tokens of `terms` add to a step that runs anyway (decodes): their
    FLOPs and all-reduces; the weight read and fixed overheads are already paid."""
    return terms.compute_ms / cal.compute_efficiency + cal.allreduce_multiplier * terms.allreduce_ms
