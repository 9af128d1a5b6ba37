"""Analytic profiles: a calibrated roofline model of vLLM serving, no GPU needed.

Memory (per GPU, GiB): share = u M f; weights = W / t; overhead = 1.5 (CUDA context,
CUDA graphs, allocator slack) + activations of one max-num-batched-tokens step + logits
of max-num-seqs sequences + 0.5 NCCL buffers when t > 1; KV = share - weights -
overhead, in tokens KV / k_t rounded down to 16-token blocks. A shape fits when the KV
cache holds one `max_model_len` sequence (vLLM refuses to start otherwise), TP divides the attention
heads and the KV heads (or is a multiple of them), TP stays inside the NVLink domain,
and fractions are only used with TP 1.

Steady state with C requests in flight, prompt I of which c come from the prefix cache,
output O (roofline in `planner.profiles.roofline`; prefill computes the I - c uncached
tokens, attending over all I; decode and KV residency see the whole context):
B = min(C, N_max) run, N_max = min(KV tokens / (I + O/2), max-num-seqs); the rest wait
for a slot (`max_concurrency` says why I + O/2).
  T_dec = step(decode of B sequences at context I + O/2),  T_pre = step(prefill of I - c)
  M_pre = marginal cost of one prefill inside a running step (its FLOPs and all-reduces)
  E2E_run = c_ttft + T_pre + O T_dec + k_pi (B - 1) M_pre   (the other requests' prefills
            interleave with this one's life; k_pi <= 1)
  TTFT  = c_ttft + T_pre + T_dec + W_pre + W_kv,  W_pre = g (B - 1) M_pre, g <= k_pi
          (the share of the others' prefill work that lands before the first token)
  TPOT  = (E2E_run - TTFT_run) / (O - 1)  = T_dec + (k_pi - g) (B - 1) M_pre / (O - 1)
  W_kv  = (C - B) / X                      (waiting for a KV slot)
  X     = B / E2E_run                      (Little's law on the running set)
Open loop (`at_rate`): the running set C <= N_max with X(C) = rate, plus the Erlang-C
wait of Poisson arrivals for one of N_max slots (service time E2E_run).

Pipeline parallel (`pp` stages, a replica spanning nodes: TP t inside each node): each
GPU holds W / (t pp) of the weights and L / pp layers of KV (k_t / pp bytes per token);
a step runs the stages one after another, so its time is the TP-t step of all L layers
plus (pp - 1) hops of the step's activations between nodes,
  T_hop = alpha_net + T h 2 bytes / B_net   (B_net, alpha_net: inter-node bandwidth per
  GPU and point-to-point latency, from the GPU's system data).
No overlap of micro-batches is credited (vLLM keeps up to pp batches in flight), so this
is a lower bound on a pipeline's throughput and an upper bound on its step latency.

Data-parallel attention (`dp` = d ranks of TP t, MoE with EP; the kernels source models
its steps, this roofline refuses it): each GPU holds the non-expert weights / t and the
routed experts / (t d); each rank's KV cache is its own (the KV formula at TP t), holds
one max_model_len sequence, and the replica's KV tokens and slots are the ranks' sum.

GPU fraction f: the replica gets memory share f (its --gpu-memory-utilization) and compute
and bandwidth share f (as under MPS limits); fixed overheads are not shared. This is an
assumption: co-located processes without MPS contend less evenly.
"""

from __future__ import annotations

import functools
import math
from dataclasses import replace

from planner.catalog import Catalog, GpuSpec, ModelSpec, resolve_gpu, resolve_model
from planner.defaults import GPU_MEMORY_UTILIZATION
from planner.errors import InfeasibleError, ProfileError
from planner.profiles import MemoryFit, PerfPoint, Source
from planner.profiles.roofline import (
    GIB,
    decode_terms,
    kv_bytes_per_token,
    marginal_ms,
    prefill_terms,
    step_ms,
)
from planner.types.shapes import ShapeKey

KV_BLOCK_TOKENS = 16  # vLLM's default block size: the KV cache is allocated in blocks
BASE_OVERHEAD_GIB = 1.5  # CUDA context + CUDA graphs + allocator slack (vLLM start-up logs)
NCCL_OVERHEAD_GIB = 0.5  # NCCL / custom all-reduce buffers per GPU when TP > 1
_ROOT_STEPS = 200  # a safety bound; regula falsi converges in about 5-20


def memory_fit(
    model: ModelSpec,
    gpu: GpuSpec,
    tp: int,
    gpu_fraction: float,
    gpu_memory_utilization: float,
    pp: int = 1,
    dp: int = 1,
) -> MemoryFit:
    """Per-GPU memory budget of one replica (pure; see the module docstring). With `dp`
    data-parallel attention ranks each rank's GPUs hold the non-expert weights split by
    TP and 1 / (tp dp) of the routed experts, and a KV cache of their own; the replica's
    `kv_cache_tokens` sums the ranks' and each rank must hold one max_model_len sequence."""
    share = gpu_memory_utilization * gpu.memory_gib * gpu_fraction
    if dp == 1:
        weights = model.weight_bytes / (tp * pp) / GIB
    else:
        parts = model.weight_gib_by_part()
        weights = (parts["embeddings"] + parts["dense"]) / (tp * pp) + parts["experts"] / (
            tp * pp * dp
        )
    step_tokens = gpu.vllm_max_num_batched_tokens
    activations = step_tokens * (2 * model.intermediate / tp + 4 * model.hidden) * 2.0
    logits = gpu.vllm_max_num_seqs * model.vocab * 4.0 * 2  # FP32 logits and probabilities
    overhead = (
        BASE_OVERHEAD_GIB + (activations + logits) / GIB + (NCCL_OVERHEAD_GIB if tp * dp > 1 else 0)
    )
    kv_gib = share - weights - overhead
    tokens = kv_gib * GIB / (kv_bytes_per_token(model, tp) / pp)
    kv_tokens = max(0, int(tokens // KV_BLOCK_TOKENS) * KV_BLOCK_TOKENS)  # per DP rank
    reason = _shape_problem(model, gpu, tp, pp, dp)
    if not reason and kv_tokens < model.max_model_len:
        stages = f" x {pp} stages" if pp > 1 else ""
        ranks = f" x {dp} DP ranks" if dp > 1 else ""
        reason = (
            f"{model.name} on {tp}x {gpu.name}{stages}{ranks} at fraction {gpu_fraction:g}: "
            f"{share:.1f} GiB usable per GPU, weights {weights:.1f} GiB + overhead "
            f"{overhead:.1f} GiB leave {kv_gib:.1f} GiB for the KV cache = {kv_tokens} tokens"
            f"{' per rank' if dp > 1 else ''}, "
            f"fewer than one {model.max_model_len}-token sequence (max_model_len)"
        )
    return MemoryFit(
        fits=not reason,
        share_gib=share,
        weights_gib=weights,
        overhead_gib=overhead,
        kv_cache_gib=kv_gib,
        kv_cache_tokens=kv_tokens * dp,
        reason=reason,
    )


def pipeline_hops_ms(model: ModelSpec, gpu: GpuSpec, pp: int, tokens: float) -> float:
    """Time one step spends passing activations between `pp` stages (see the docstring)."""
    if pp <= 1:
        return 0.0
    payload = tokens * model.hidden * 2.0  # BF16 hidden states of the step's tokens
    one = gpu.inter_node_latency_us * 1e-3 + payload / (gpu.inter_node_gb_per_s * 1e9) * 1e3
    return (pp - 1) * one


def _shape_problem(model: ModelSpec, gpu: GpuSpec, tp: int, pp: int = 1, dp: int = 1) -> str:
    if dp > 1 and not model.is_moe:
        return (
            f"{model.name} is dense: data-parallel attention (dp > 1) is planned for MoE "
            "models only (run more replicas instead)"
        )
    if dp > 1 and tp * dp > gpu.nvlink_domain_size:
        return (
            f"TP {tp} x DP {dp} exceeds the NVLink domain of {gpu.name} "
            f"({gpu.nvlink_domain_size} GPUs)"
        )
    if pp > 1 and gpu.inter_node_gb_per_s <= 0:
        return (
            f"{gpu.name} has no inter_node_gb_per_s in its catalog entry: "
            "pipeline stages across nodes cannot be costed"
        )
    if pp > model.layers:
        return f"{pp} pipeline stages exceed the {model.layers} layers of {model.name}"
    if model.heads % tp:
        return f"TP {tp} does not divide the {model.heads} attention heads of {model.name}"
    if model.kv_heads % tp and tp % model.kv_heads:
        return (
            f"TP {tp} neither divides nor is a multiple of the {model.kv_heads} KV heads "
            f"of {model.name}"
        )
    if tp > gpu.nvlink_domain_size:
        return f"TP {tp} exceeds the NVLink domain of {gpu.name} ({gpu.nvlink_domain_size} GPUs)"
    return ""


def max_concurrency(
    kv_cache_tokens: int, input_tokens: float, output_tokens: float, max_num_seqs: int
) -> float:
    """Sequences of this shape that run at once: KV slots or vLLM's max-num-seqs.

    A running sequence holds on average its prompt plus half its output (vLLM allocates
    blocks as tokens appear and preempts when they run out); the calibration rows start
    queueing where this mean footprint, not the final length, fills the cache.
    """
    footprint = max(1.0, input_tokens) + max(1.0, output_tokens) / 2.0
    return min(kv_cache_tokens / footprint, float(max_num_seqs))


def replica_max_concurrency(
    key: ShapeKey,
    kv_cache_tokens: int,
    input_tokens: float,
    output_tokens: float,
    max_num_seqs: int,
) -> float:
    """`max_concurrency` of a replica: with `key.dp` data-parallel ranks, each rank's own
    KV cache (an equal part of `kv_cache_tokens`) and max-num-seqs, times the ranks."""
    if key.dp == 1:
        return max_concurrency(kv_cache_tokens, input_tokens, output_tokens, max_num_seqs)
    rank = max_concurrency(kv_cache_tokens // key.dp, input_tokens, output_tokens, max_num_seqs)
    return key.dp * rank


def steady_state(
    model: ModelSpec,
    gpu: GpuSpec,
    tp: int,
    gpu_fraction: float,
    input_tokens: float,
    output_tokens: float,
    concurrency: float,
    kv_cache_tokens: int,
    pp: int = 1,
    cached_tokens: float = 0.0,
) -> PerfPoint:
    """Closed-loop steady state with `concurrency` requests in the system (pure); the
    first `cached_tokens` of each prompt come from the prefix cache (prefill computes
    the rest; decode attends to, and the KV cache holds, the whole context)."""
    cal = gpu.calibration
    isl, osl = max(1.0, input_tokens), max(1.0, output_tokens)
    max_conc = max_concurrency(kv_cache_tokens, isl, osl, gpu.vllm_max_num_seqs)
    running = min(concurrency, max_conc)
    batch = max(running, 1.0)  # a lone request still runs a full step
    decode = step_ms(
        decode_terms(model, gpu, tp, gpu_fraction, batch, isl + osl / 2), cal, model.layers
    ) + pipeline_hops_ms(model, gpu, pp, batch)
    terms = prefill_terms(model, gpu, tp, gpu_fraction, isl, min(cached_tokens, isl))
    prefill = step_ms(terms, cal, model.layers) + pipeline_hops_ms(model, gpu, pp, isl)
    # Other running requests' prefills interleave with this request's life: B - 1 of them,
    # each adding k_pi x its marginal cost (FLOPs, all-reduces) to shared steps.
    interference = cal.prefill_interference * (batch - 1.0) * marginal_ms(terms, cal)
    first = cal.ttft_overhead_ms + prefill + (decode if osl > 1 else 0.0)
    e2e_run = first + (osl - 1.0) * decode + interference
    # Part of that work comes before this request's first token (it arrives behind other
    # prefills): it moves from the decode phase into TTFT, the total stays the same.
    share = min(cal.prefill_wait_fraction / max(cal.prefill_interference, 1e-12), 1.0)
    prefill_wait = interference if osl <= 1 else share * interference
    ttft_run = first + prefill_wait
    tpot = (e2e_run - ttft_run) / (osl - 1.0) if osl > 1 else 0.0
    per_ms = running / e2e_run
    queued = max(concurrency - running, 0.0)
    wait = 0.0 if queued == 0 else (queued / per_ms if per_ms > 0 else math.inf)
    return PerfPoint(
        concurrency=concurrency,
        requests_per_s=per_ms * 1e3,
        output_tokens_per_s=per_ms * 1e3 * osl,
        ttft_ms=ttft_run + wait,
        tpot_ms=tpot,
        e2e_ms=e2e_run + wait,
        kv_cache_tokens=kv_cache_tokens,
        max_concurrency=max_conc,
        source="roofline",
    )


def erlang_c_wait_ms(slots: float, offered: float, service_ms: float) -> float:
    """Mean wait of an M/M/c queue (Erlang C) with `slots` servers and `offered` Erlangs.

    Fractional slot counts interpolate between the neighbouring whole numbers. The M/M/c
    form stands in for M/G/c: with fixed token shapes service times vary little, so it
    overstates the wait slightly (by at most about 2x, the M/D/c to M/M/c ratio).
    """
    if offered <= 0:
        return 0.0
    low = math.floor(slots)

    def wait(servers: int) -> float:
        if servers < 1 or offered >= servers:
            return math.inf
        blocking = 1.0  # Erlang B by its stable recursion
        for k in range(1, servers + 1):
            blocking = offered * blocking / (k + offered * blocking)
            if k > offered and blocking < 1e-20:
                # Past k = offered the recursion only shrinks: the wait is below 1e-20 of
                # the service time already; the remaining steps cannot change the figure.
                break
        waiting = servers * blocking / (servers - offered * (1.0 - blocking))
        return waiting * service_ms / (servers - offered)

    if offered >= low:
        return wait(low + 1)
    weight = slots - low
    return (1.0 - weight) * wait(low) + weight * wait(low + 1) if weight else wait(low)


class AnalyticProfiles:
    """ProfileTable over the calibrated analytic model for every catalog shape.

    Pure and cached: answers depend only on the catalog and the arguments. A few tens of
    microseconds per uncached `at_concurrency`, a few tens of those per uncached `at_rate`
    (see benchmarks/profile_speed.py).
    """

    def __init__(
        self, catalog: Catalog, gpu_memory_utilization: float = GPU_MEMORY_UTILIZATION
    ) -> None:
        if not 0 < gpu_memory_utilization <= 1:
            raise ProfileError(
                f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}"
            )
        self.catalog = catalog
        self.gpu_memory_utilization = gpu_memory_utilization
        self._memory = functools.lru_cache(maxsize=4096)(self._memory_uncached)
        self._point = functools.lru_cache(maxsize=65536)(self._point_uncached)
        self._rate = functools.lru_cache(maxsize=65536)(self._rate_uncached)

    def source_of(self, key: ShapeKey) -> Source:
        """Which source answers `key`: always the roofline here."""
        return "roofline"

    def _specs(self, key: ShapeKey) -> tuple[ModelSpec, GpuSpec]:
        if key.tp < 1:
            raise ProfileError(f"{key}: tensor-parallel degree must be >= 1, got {key.tp}")
        if not 0 < key.gpu_fraction <= 1:
            raise ProfileError(f"{key}: gpu_fraction must be in (0, 1], got {key.gpu_fraction}")
        if key.gpu_fraction < 1 and key.tp > 1:
            raise ProfileError(f"{key}: fractional GPUs are only planned with TP 1")
        if key.pp < 1 or (key.pp > 1 and key.gpu_fraction < 1):
            raise ProfileError(f"{key}: pipeline stages take whole GPUs, pp must be >= 1")
        if key.dp < 1 or (key.dp > 1 and (key.gpu_fraction < 1 or key.pp > 1)):
            raise ProfileError(
                f"{key}: data-parallel attention ranks (dp) must be >= 1; dp > 1 takes "
                "whole GPUs and one pipeline stage"
            )
        return resolve_model(self.catalog, key.model), resolve_gpu(self.catalog, key.gpu_type)

    def _memory_uncached(self, key: ShapeKey) -> MemoryFit:
        model, gpu = self._specs(key)
        fit = memory_fit(
            model, gpu, key.tp, key.gpu_fraction, self.gpu_memory_utilization, key.pp, key.dp
        )
        if key.dp > 1 and self.source_of(key) == "roofline" and fit.fits:
            # The roofline has no model of the ranks' lockstep and expert collectives.
            return replace(
                fit,
                fits=False,
                reason=f"{model.name} on {gpu.name}: data-parallel attention (dp {key.dp}) "
                "is predicted from kernel tables only, and this GPU type has none; "
                "plan dp 1 on it",
            )
        return fit

    def memory(self, key: ShapeKey) -> MemoryFit:
        """Memory fit of the shape; `fits=False` with a reason when it cannot run.

        Raises:
            ProfileError: unknown model or GPU, or a malformed shape.
        """
        return self._memory(key)

    def _fitting(self, key: ShapeKey) -> tuple[ModelSpec, GpuSpec, MemoryFit]:
        fit = self._memory(key)
        if not fit.fits:
            raise InfeasibleError(f"does not fit: {fit.reason}")
        model, gpu = self._specs(key)
        return model, gpu, fit

    def _check_request(
        self, key: ShapeKey, input_tokens: float, output_tokens: float, cached_tokens: float = 0.0
    ) -> None:
        """The shape must fit and one request must fit the served context length."""
        if input_tokens < 0 or output_tokens < 0:
            raise ProfileError(f"token counts must be >= 0, got {input_tokens}, {output_tokens}")
        if not 0 <= cached_tokens <= max(input_tokens, 0):
            raise ProfileError(
                f"cached tokens must be in [0, input tokens = {input_tokens:g}], got "
                f"{cached_tokens:g}"
            )
        model, _, _ = self._fitting(key)
        if input_tokens + output_tokens > model.max_model_len:
            raise InfeasibleError(
                f"{model.name}: requests of {input_tokens:g} + {output_tokens:g} tokens exceed "
                f"its max_model_len of {model.max_model_len}; raise max_model_len in "
                f"configs/models/{model.name}.yaml (and check the KV cache still fits)"
            )

    def _point_uncached(
        self,
        key: ShapeKey,
        input_tokens: float,
        output_tokens: float,
        concurrency: float,
        cached_tokens: float = 0.0,
    ) -> PerfPoint:
        model, gpu, fit = self._fitting(key)
        return steady_state(
            model,
            gpu,
            key.tp,
            key.gpu_fraction,
            input_tokens,
            output_tokens,
            concurrency,
            fit.kv_cache_tokens,
            key.pp,
            cached_tokens,
        )

    def at_concurrency(
        self,
        key: ShapeKey,
        input_tokens: float,
        output_tokens: float,
        concurrency: float,
        cached_tokens: float = 0.0,
    ) -> PerfPoint:
        """Steady state with `concurrency` requests in flight (closed loop); the first
        `cached_tokens` of each prompt come from the prefix cache.

        Raises:
            InfeasibleError: the shape does not fit (the message carries the memory figures)
                or one request is longer than the model's max_model_len.
        """
        if concurrency < 0:
            raise ProfileError(f"concurrency must be >= 0, got {concurrency}")
        self._check_request(key, input_tokens, output_tokens, cached_tokens)
        return self._point(
            key, float(input_tokens), float(output_tokens), float(concurrency), float(cached_tokens)
        )

    def _saturation_concurrency(self, key: ShapeKey, input_tokens: float, osl: float) -> float:
        # KV residency is the full context: cached prefix blocks are held like any other.
        _, gpu = self._specs(key)
        fit = self._memory(key)
        return replica_max_concurrency(
            key, fit.kv_cache_tokens, input_tokens, osl, gpu.vllm_max_num_seqs
        )

    def capacity_per_s(
        self, key: ShapeKey, input_tokens: float, output_tokens: float, cached_tokens: float = 0.0
    ) -> float:
        """Highest request rate: every KV slot (or max-num-seqs) busy.

        Raises:
            InfeasibleError: the shape does not fit, or requests exceed max_model_len.
        """
        self._check_request(key, input_tokens, output_tokens, cached_tokens)
        top = self._saturation_concurrency(key, input_tokens, output_tokens)
        return self.at_concurrency(
            key, input_tokens, output_tokens, top, cached_tokens
        ).requests_per_s

    def _rate_uncached(
        self,
        key: ShapeKey,
        input_tokens: float,
        output_tokens: float,
        rate_per_s: float,
        cached_tokens: float = 0.0,
    ) -> PerfPoint:
        top = self._saturation_concurrency(key, input_tokens, output_tokens)
        running = self._running_at_rate(
            key, input_tokens, output_tokens, rate_per_s, top, cached_tokens
        )
        if running.saturated:
            return running
        # Open-loop (Poisson) arrivals also queue for one of the N_max slots when all are
        # busy: an M/G/c wait with c = N_max and offered load = the running concurrency.
        wait = erlang_c_wait_ms(top, running.concurrency, running.e2e_ms)
        e2e = running.e2e_ms + wait
        return replace(
            running,
            concurrency=rate_per_s * e2e / 1e3,
            ttft_ms=running.ttft_ms + wait,
            e2e_ms=e2e,
        )

    def _running_at_rate(
        self,
        key: ShapeKey,
        input_tokens: float,
        output_tokens: float,
        rate_per_s: float,
        top: float,
        cached_tokens: float,
    ) -> PerfPoint:
        """The closed-loop point whose throughput equals `rate_per_s` (no slot queue)."""
        at_top = self._point(key, input_tokens, output_tokens, top, cached_tokens)
        if rate_per_s >= at_top.requests_per_s:
            # Past capacity the open-loop queue grows without bound; report the capacity
            # point (its latencies are a lower bound) and flag it.
            return replace(at_top, saturated=True)

        def point(c: float) -> PerfPoint:
            return self._point_uncached(key, input_tokens, output_tokens, c, cached_tokens)

        # Throughput rises with concurrency up to capacity: solve X(C) = rate by regula
        # falsi with the Illinois fix (bracketed like bisection, a handful of steps).
        def excess(c: float) -> float:
            return point(c).requests_per_s - rate_per_s

        low, high = 0.0, top
        f_low, f_high = -rate_per_s, at_top.requests_per_s - rate_per_s
        side = 0
        for _ in range(_ROOT_STEPS):
            if high - low <= 1e-12 * top:
                break
            mid = (low * f_high - high * f_low) / (f_high - f_low)
            f_mid = excess(mid)
            if abs(f_mid) <= 1e-10 * max(rate_per_s, 1e-300):
                return point(mid)
            if f_mid < 0:
                low, f_low = mid, f_mid
                if side == -1:
                    f_high /= 2.0
                side = -1
            else:
                high, f_high = mid, f_mid
                if side == 1:
                    f_low /= 2.0
                side = 1
        return point(high)

    def at_rate(
        self,
        key: ShapeKey,
        input_tokens: float,
        output_tokens: float,
        rate_per_s: float,
        cached_tokens: float = 0.0,
    ) -> PerfPoint:
        """Steady state at an offered open-loop request rate: the running set C with
        X(C) = rate (Little's law), plus the Erlang-C wait for one of the N_max slots;
        `concurrency` counts running and waiting requests. `saturated=True` at or past
        capacity (then the capacity point is returned: a lower bound on latency). The
        first `cached_tokens` of each prompt come from the prefix cache.

        Raises:
            InfeasibleError: the shape does not fit, or requests exceed max_model_len.
        """
        if rate_per_s < 0:
            raise ProfileError(f"rate must be >= 0, got {rate_per_s}")
        self._check_request(key, input_tokens, output_tokens, cached_tokens)
        return self._rate(
            key, float(input_tokens), float(output_tokens), float(rate_per_s), float(cached_tokens)
        )
