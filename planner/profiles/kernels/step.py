"""One vLLM engine step composed per layer from measured kernel latencies (pure).

Per layer, for a step that runs `m` tokens on each GPU of a TP group of `t`:
  attention projections   QKV GEMM (m, n = (H/t + 2 max(1, KV/t)) d, k = h) and
                          o_proj GEMM (m, n = h, k = H d / t); MLA models: the measured
                          MLA module holds projections and attention together
  attention               decode: generation attention of the running sequences at their
                          KV length; prefill: context attention of the chunk (below)
  MLP                     dense: gate_up GEMM (n = 2 I / t) and down GEMM (k = I / t);
                          MoE: router GEMM (n = E, BF16) + one rank's fused MoE kernel
                          (experts split by TP over the intermediate dim, or by EP over
                          the experts with --enable-expert-parallel) + shared experts
  communication           two custom all-reduces of m x h BF16 values (after attention
                          and after the MLP); with EP and no attention-DP vLLM combines
                          the experts' outputs by the same all-reduce
Per step: LM head GEMM (one row per sequence that samples, n = vocab / t, BF16).

Data-parallel attention (`dp` = r > 1, MoE with EP only; vLLM --data-parallel-size r
--enable-expert-parallel): r engine ranks, each a TP-t group with its own scheduler and
KV cache, run their own tokens through everything above except the routed experts;
every MoE layer gathers the hidden states of all ranks (NCCL all_gather over the r ranks
of one TP index, vLLM's default `allgather_reducescatter` all2all backend), runs the
fused MoE kernel with EP = t r on the gathered tokens (each GPU holds E / (t r) experts),
and reduce-scatters the outputs back (NCCL reduce_scatter); the TP all-reduce after the
MLP then sums the TP ranks' experts as before. `linear_ms` is then the rank's own part
(by its tokens) and `expert_ms` the routed experts with their two collectives (by the
tokens of all ranks together). Message sizes are the gathered tokens x hidden BF16
elements: the tables come from nccl-tests, whose size is the whole gathered buffer for
all_gather and the whole input for reduce_scatter (AIC `collect_nccl.py`); the top-k ids
and weights that travel with the hidden states are ignored (k x 8 bytes against 2h per
token).
The first `dense_layers` layers of an MoE model run a dense MLP; sliding-window layers
read at most their window of KV.

Prefill attention of a chunk of `x` tokens after `o` cached/earlier tokens costs the
context attention of the whole `o + x` prompt times ((o + x)^2 - o^2) / (o + x)^2 (the
chunk's share of the causal work), as AIConfigurator does for cached prefixes.

Steps up to vLLM's CUDA-graph capture size run graphs (graph all-reduce); bigger steps
run eagerly (eager all-reduce rows). A GPU share f divides kernel time by f (compute and
bandwidth shared as under MPS limits), as the roofline assumes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from planner.catalog import ModelSpec
from planner.profiles.kernels.curves import LogCurve, LogSurface
from planner.profiles.kernels.tables import KernelTables

#: vLLM's largest CUDA-graph batch (max_cudagraph_capture_size default, V1 engine).
CUDA_GRAPH_MAX_TOKENS = 512

_GEMM_DTYPE = {"bf16": "bfloat16", "fp16": "bfloat16", "fp4": "nvfp4"}
_MOE_DTYPE = {
    "bf16": "bfloat16",
    "fp16": "bfloat16",
    "fp4": "nvfp4",
    "mxfp4": "w4a16_mxfp4",
    "int4": "int4_wo",
}
_KV_DTYPE = {"fp8": "fp8"}


def gemm_dtype(model: ModelSpec, dtype: str) -> str:
    """The measured GEMM kernel family for weights stored as `dtype`.

    Weight-only formats (INT4, MXFP4, INT8) outside the experts are rare; they map to
    BF16 GEMMs (the activation side runs in BF16).
    """
    if dtype == "fp8":
        return "fp8_block" if model.fp8_scaling == "block" else "fp8"
    return _GEMM_DTYPE.get(dtype, "bfloat16")


def moe_dtype(model: ModelSpec, tables: KernelTables) -> str:
    """The measured fused-MoE kernel family for the routed experts on this GPU.

    MXFP4 experts on Blackwell run FlashInfer's TRT-LLM MXFP4 x MXFP8 kernel where the
    tables have it (its rows are 2-3x faster at prefill sizes than the MXFP4 x BF16 one,
    and gpt-oss-120b's measured 8k-token TTFT on one B200, 116 ms, is below what the
    BF16-activation kernel alone would take, 117 ms); Hopper runs MXFP4 x BF16.
    """
    dtype = model.routed_expert_dtype
    if dtype == "fp8":
        return "fp8_block" if model.fp8_scaling == "block" else "fp8"
    if dtype == "mxfp4" and "w4a8_mxfp4_mxfp8" in tables.moe_dtypes():
        return "w4a8_mxfp4_mxfp8"
    return _MOE_DTYPE.get(dtype, "bfloat16")


@dataclass(frozen=True)
class StepCurves:
    """A shape's kernel costs as fast curves (see `planner.profiles.kernels.curves`)."""

    linear: LogCurve  # token-proportional kernels of a step, by tokens (a DP rank's own)
    lm_head: LogCurve  # by sampling sequences
    decode_attention: LogSurface  # by (decoding sequences, KV length)
    prompt_full: LogCurve  # whole-prompt attention of the full-attention layers, by length
    prompt_window: LogCurve | None  # ... of the sliding-window layers (None: none)
    # DP attention: routed experts + dispatch/combine, by the tokens of all ranks (None:
    # dp 1, the experts are in `linear`).
    expert: LogCurve | None = None

    def noted(self) -> set[str]:
        out = self.linear.noted | self.lm_head.noted | self.decode_attention.noted
        out |= self.prompt_full.noted
        if self.expert is not None:
            out |= self.expert.noted
        if self.prompt_window is not None:
            out |= self.prompt_window.noted
        return out

    def prefill_attention(self, chunk: float, before: float) -> float:
        """`StepModel.prefill_attention` of one chunk, from the curves."""
        full = before + chunk
        out = self.prompt_full(full) * (full**2 - before**2) / full**2
        if self.prompt_window is not None:
            out += self.prompt_window(full) * chunk / full
        return out


@dataclass
class StepModel:
    """Kernel-composed step costs of one model on one TP (x EP) shape of one GPU type.

    Args:
        model: the served model.
        tables: the GPU type's kernel tables.
        tp: tensor-parallel degree (GPUs of the replica).
        expert_parallel: experts split across the TP GPUs (EP = TP, or TP x DP) instead of
            each expert's intermediate dimension.
        fraction: the GPU share of a TP-1 replica (1.0 for whole GPUs).
        dp: data-parallel attention ranks (> 1 needs `expert_parallel`; module docstring).
    """

    model: ModelSpec
    tables: KernelTables
    tp: int
    expert_parallel: bool = False
    fraction: float = 1.0
    dp: int = 1
    extrapolated: set[str] = field(default_factory=set)
    _curves: StepCurves | None = field(default=None, repr=False)
    _collect: dict[str, np.ndarray] | None = field(default=None, repr=False)

    # ---- shapes --------------------------------------------------------------------

    @property
    def heads_per_gpu(self) -> int:
        return max(1, self.model.heads // self.tp)

    @property
    def kv_heads_per_gpu(self) -> int:
        return max(1, self.model.kv_heads // self.tp)

    def _flag(self, name: str, flags: np.ndarray) -> None:
        if self._collect is not None:  # building the curve: remember per grid point
            previous = self._collect.get(name)
            self._collect[name] = flags if previous is None else previous | flags
        elif bool(np.any(flags)):
            self.extrapolated.add(name)

    def _gemm(self, name: str, dtype: str, n: int, k: int, m: np.ndarray) -> np.ndarray:
        ms, flags = self.tables.gemm(dtype, max(1, n), max(1, k), m)
        self._flag(f"gemm {name} ({dtype}, n={n}, k={k})", flags)
        return ms

    # ---- per-layer kernels of the token-proportional part ----------------------------

    def layer_kernels(self, tokens: np.ndarray, graph: np.ndarray) -> dict[str, np.ndarray]:
        """Milliseconds of each non-attention kernel for `tokens` tokens, summed over
        the layers (keys name the kernels; values are arrays like `tokens`)."""
        model, t = self.model, self.tp
        m = np.asarray(tokens, dtype=float)
        h, d = model.hidden, model.head_dim
        adt = gemm_dtype(model, model.weight_dtype)
        layers = model.layers
        out: dict[str, np.ndarray] = {}
        if not model.is_mla:
            qkv_n = (self.heads_per_gpu + 2 * self.kv_heads_per_gpu) * d
            out["qkv_proj"] = layers * self._gemm("qkv_proj", adt, qkv_n, h, m)
            out["o_proj"] = layers * self._gemm("o_proj", adt, h, self.heads_per_gpu * d, m)
        dense = layers if not model.is_moe else model.dense_layers
        if dense:
            inter = model.intermediate // t
            out["gate_up_proj"] = dense * self._gemm("gate_up_proj", adt, 2 * inter, h, m)
            out["down_proj"] = dense * self._gemm("down_proj", adt, h, inter, m)
        if model.is_moe:
            moe_layers = layers - model.dense_layers
            out["router"] = moe_layers * self._gemm("router", "bfloat16", model.moe_experts, h, m)
            if self.dp == 1:
                out["moe"] = self._routed_experts(m)
            if model.moe_shared_intermediate:
                shared = model.moe_shared_intermediate // t
                up = self._gemm("shared_gate_up", adt, 2 * shared, h, m)
                down = self._gemm("shared_down", adt, h, shared, m)
                out["shared_experts"] = moe_layers * (up + down)
        if t > 1:
            g_ms, g_flags = self.tables.allreduce(t, m * h, graph=True)
            e_ms, e_flags = self.tables.allreduce(t, m * h, graph=False)
            self._flag("allreduce", np.where(graph, g_flags, e_flags))
            out["allreduce"] = 2 * layers * np.where(graph, g_ms, e_ms)
        return {k: v / self.fraction for k, v in out.items()}

    def _routed_experts(self, tokens: np.ndarray) -> np.ndarray:
        """The fused MoE kernel of every MoE layer on `tokens` tokens (one GPU's experts)."""
        model = self.model
        moe_tp, moe_ep = (1, self.tp * self.dp) if self.expert_parallel else (self.tp, 1)
        kind = moe_dtype(model, self.tables)
        ms, flags = self.tables.moe(
            kind,
            model.hidden,
            model.moe_intermediate,
            model.moe_top_k,
            model.moe_experts,
            moe_tp,
            moe_ep,
            tokens,
        )
        self._flag(f"moe ({kind}, tp {moe_tp}, ep {moe_ep})", flags)
        moe_layers = model.layers - model.dense_layers
        out: np.ndarray = moe_layers * ms
        return out

    def expert_kernels(self, tokens: np.ndarray) -> dict[str, np.ndarray]:
        """DP attention: ms of the routed experts and their all_gather / reduce_scatter
        over the ranks, for `tokens` tokens of all ranks together, summed over the MoE
        layers (empty for dp 1, where `layer_kernels` holds the experts)."""
        if self.dp == 1 or not self.model.is_moe:
            return {}
        total = np.asarray(tokens, dtype=float)
        moe_layers = self.model.layers - self.model.dense_layers
        elements = total * self.model.hidden
        out = {"moe": self._routed_experts(total)}
        for op in ("all_gather", "reduce_scatter"):
            ms, flags = self.tables.nccl(op, self.dp, elements)
            self._flag(f"nccl {op} ({self.dp} GPUs)", flags)
            out[op] = moe_layers * ms
        return {k: v / self.fraction for k, v in out.items()}

    def expert_ms(self, tokens: np.ndarray) -> np.ndarray:
        """`expert_kernels` summed (zeros for dp 1)."""
        parts = self.expert_kernels(tokens)
        m = np.asarray(tokens, dtype=float)
        return np.sum(list(parts.values()), axis=0) if parts else np.zeros_like(m)

    def lm_head(self, sequences: np.ndarray) -> np.ndarray:
        """LM-head GEMM over the sampling sequences (vocab split over TP)."""
        n = math.ceil(self.model.vocab / self.tp)
        ms = self._gemm("lm_head", "bfloat16", n, self.model.hidden, np.asarray(sequences, float))
        return ms / self.fraction

    def linear_ms(self, tokens: np.ndarray) -> np.ndarray:
        """All token-proportional kernels of a step of `tokens` tokens (all layers)."""
        m = np.asarray(tokens, dtype=float)
        graph = m <= CUDA_GRAPH_MAX_TOKENS
        parts = self.layer_kernels(m, graph)
        return np.sum(list(parts.values()), axis=0) if parts else np.zeros_like(m)

    def _collected(
        self, fn: Callable[..., np.ndarray], *args: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """`fn(*args)` with the extrapolation flags of each kernel per argument point."""
        self._collect = {}
        try:
            ms = fn(*args)
            flags = self._collect
        finally:
            self._collect = None
        return ms, flags

    def curves(self) -> StepCurves:
        """The shape's kernel costs as cached curves for fast scalar lookups (built once)."""
        if self._curves is None:
            # Ranges: a step holds at most max-num-batched-tokens + max-num-seqs tokens
            # (16k covers every catalog GPU), 2,048 sequences, and contexts up to the
            # model's max_model_len; beyond them the last segment's power law extends.
            tokens, seqs = 16384, 2048
            context = max(self.model.max_model_len, 1024)
            self._curves = StepCurves(
                linear=LogCurve.build(lambda x: self._collected(self.linear_ms, x), tokens),
                lm_head=LogCurve.build(lambda x: self._collected(self.lm_head, x), seqs),
                decode_attention=LogSurface.build(
                    lambda b, s: self._collected(self.decode_attention, b, s), seqs, context
                ),
                prompt_full=LogCurve.build(
                    lambda f: self._collected(lambda x: self.prompt_attention(x)[0], f), context
                ),
                prompt_window=LogCurve.build(
                    lambda f: self._collected(lambda x: self.prompt_attention(x)[1], f), context
                )
                if self.model.sliding_layers
                else None,
                expert=LogCurve.build(
                    lambda x: self._collected(self.expert_ms, x), tokens * self.dp
                )
                if self.dp > 1
                else None,
            )
        return self._curves

    def noted(self) -> set[str]:
        """Kernels whose lookups (direct or through the curves) left the measured grid."""
        out = set(self.extrapolated)
        if self._curves is not None:
            out |= self._curves.noted()
        return out

    # ---- attention -----------------------------------------------------------------

    def _kv_dtype(self) -> str:
        return _KV_DTYPE.get(self.model.kv_dtype, "bfloat16")

    def decode_attention(self, batch: np.ndarray, context: np.ndarray) -> np.ndarray:
        """Attention of `batch` decoding sequences with `context` tokens of KV, all layers."""
        model = self.model
        b = np.maximum(np.asarray(batch, dtype=float), 1.0)
        s = np.maximum(np.asarray(context, dtype=float), 1.0)
        if model.is_mla:
            ms, flags = self.tables.mla(
                "generation",
                self._kv_dtype(),
                gemm_dtype(model, model.weight_dtype),
                self.heads_per_gpu,
                b,
                s + 1.0,
            )
            self._flag("mla generation", flags)
            return model.layers * ms / self.fraction
        full = model.layers - model.sliding_layers
        args = (self._kv_dtype(), model.head_dim)
        heads = (self.heads_per_gpu, self.kv_heads_per_gpu)
        ms, flags = self.tables.generation_attention(*args, 0, *heads, b, s)
        self._flag("generation attention", flags)
        total = full * ms
        if model.sliding_layers:
            ms, flags = self.tables.generation_attention(*args, model.sliding_window, *heads, b, s)
            self._flag("generation attention (sliding window)", flags)
            total = total + model.sliding_layers * ms
        return total / self.fraction

    def prompt_attention(self, full: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Context attention of whole prompts of `full` tokens, all layers: (the
        full-attention layers, the sliding-window layers)."""
        model = self.model
        f = np.maximum(np.asarray(full, dtype=float), 1.0)
        one = np.ones_like(f)
        if model.is_mla:
            ms, flags = self.tables.mla(
                "context",
                self._kv_dtype(),
                gemm_dtype(model, model.weight_dtype),
                self.heads_per_gpu,
                one,
                f,
            )
            self._flag("mla context", flags)
            return model.layers * ms / self.fraction, np.zeros_like(f)
        args = (self._kv_dtype(), model.head_dim)
        heads = (self.heads_per_gpu, self.kv_heads_per_gpu)
        ms, flags = self.tables.context_attention(*args, 0, *heads, one, f)
        self._flag("context attention", flags)
        full_layers = (model.layers - model.sliding_layers) * ms / self.fraction
        window = np.zeros_like(f)
        if model.sliding_layers:
            ms_w, flags = self.tables.context_attention(*args, model.sliding_window, *heads, one, f)
            self._flag("context attention (sliding window)", flags)
            window = model.sliding_layers * ms_w / self.fraction
        return full_layers, window

    def prefill_attention(self, chunk: np.ndarray, before: np.ndarray) -> np.ndarray:
        """Attention of a prefill chunk of `chunk` tokens after `before` tokens, all layers.

        Full attention: the chunk's share ((o + x)^2 - o^2) / (o + x)^2 of the whole
        prompt's causal work. A window-w layer's query attends to at most w keys: its
        cost grows with the chunk's queries, x / (o + x) of the whole prompt's.
        """
        x = np.maximum(np.asarray(chunk, dtype=float), 1.0)
        o = np.maximum(np.asarray(before, dtype=float), 0.0)
        full = o + x
        full_ms, window_ms = self.prompt_attention(full)
        out: np.ndarray = full_ms * (full**2 - o**2) / full**2 + window_ms * x / full
        return out
