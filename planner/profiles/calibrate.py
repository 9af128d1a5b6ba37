"""Fit the analytic model's constants to measured vLLM serving points (pure, numpy only).

Input: rows of (model, GPU type, TP, input/output tokens, concurrency, measured TTFT and
TPOT). The fit minimises, per GPU type,
    mean (log TPOT_pred / TPOT_meas)^2 + w_ttft mean (log TTFT_pred / TTFT_meas)^2
over the seven constants of `Calibration` with a deterministic Nelder-Mead search in an
unconstrained parameterisation (logs for positive constants, a logistic for the two
fractions: compute efficiency <= 1 and prefill interference <= 1). Log errors weigh a
10% miss the same at 5 ms and at 50 ms, so mean absolute percentage error is what falls.

`benchmarks/calibrate.py` reads the CSV, calls `fit_calibration` and writes the constants
into `configs/gpus/*.yaml`; `benchmarks/profile_accuracy.py` reports the errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from planner.catalog import Calibration, Catalog
from planner.profiles.analytic import memory_fit, steady_state
from planner.types.names import GpuType, ModelName

# Measured rows' source, for the `source` field written next to the constants.
DATA_SOURCE = (
    "ai-dynamo/aiconfigurator systems/silicon_sample.csv (vLLM aggregated rows, Apache-2.0)"
)
# vLLM 0.11-0.19 (the measured versions) default --gpu-memory-utilization.
MEASURED_GPU_MEMORY_UTILIZATION = 0.9
TTFT_WEIGHT = 0.3  # TPOT is the target; TTFT pins compute efficiency and the fixed overhead
RESTARTS = 3
ITERATIONS = 400

# Calibration data names -> catalog names. Qwen3-32B rows without a precision are the
# BF16 checkpoint (Qwen/Qwen3-32B as published); MoE rows have no dense counterpart.
SYSTEM_TO_GPU: dict[str, GpuType] = {
    "h100_sxm": "H100-SXM-80GB",
    "b200_sxm": "B200-180GB",
    "b300_sxm": "B300-SXM-270GB",
}
MODEL_TO_CATALOG: dict[tuple[str, str], ModelName] = {
    ("meta-llama/Llama-3.1-70B", "fp8"): "Llama-3.1-70B-Instruct-FP8",
    ("meta-llama/Llama-3.1-70B", "fp4"): "Llama-3.1-70B-Instruct-FP4",
    ("Qwen/Qwen3-32B", ""): "Qwen3-32B",
    ("Qwen/Qwen3-32B", "fp8"): "Qwen3-32B-FP8",
}


@dataclass(frozen=True)
class MeasuredPoint:
    """One measured serving point, in catalog terms."""

    model: ModelName
    gpu_type: GpuType
    tp: int
    input_tokens: int
    output_tokens: int
    concurrency: int
    ttft_ms: float
    tpot_ms: float
    expert_parallel: bool = False  # served with --enable-expert-parallel (EP = TP)


@dataclass(frozen=True)
class Predictions:
    """Predicted TTFT and TPOT for a list of points (same order)."""

    ttft_ms: np.ndarray
    tpot_ms: np.ndarray


# Mixture-of-experts rows (the kernels source models them; the roofline does not).
# Precisions as the rows name them: MiniMax-M2.5 and Kimi-K2.5 "fp4" are NVIDIA's NVFP4
# checkpoints, Kimi-K2.5 "int4" is Moonshot's own INT4-expert release, gpt-oss "fp4" is
# its MXFP4 experts.
MOE_TO_CATALOG: dict[tuple[str, str], ModelName] = {
    ("MiniMaxAI/MiniMax-M2.5", "fp8"): "MiniMax-M2.5",
    ("MiniMaxAI/MiniMax-M2.5", "fp4"): "MiniMax-M2.5-NVFP4",
    ("moonshotai/Kimi-K2.5", "int4"): "Kimi-K2.5",
    ("moonshotai/Kimi-K2.5", "fp4"): "Kimi-K2.5-NVFP4",
    ("openai/gpt-oss-120b", "fp4"): "gpt-oss-120b",
}


def catalog_name(model_path: str, precision: str, moe: bool = False) -> ModelName | None:
    """The catalog model measured as (model_path, precision), None when not modelled.

    Args:
        moe: also map the mixture-of-experts rows (`MOE_TO_CATALOG`).
    """
    name = MODEL_TO_CATALOG.get((model_path, precision))
    if name is None and moe:
        name = MOE_TO_CATALOG.get((model_path, precision))
    return name


# Consistency rule for measured rows (`inconsistent_points`). With the same model, GPU,
# TP and token shape, 8x the requests decoding at once puts 8x the tokens and KV reads
# in every step, so TPOT rises: on the 992 calibration rows every such pair rises by
# 1.12x or more (median 2.05x), except nine gpt-oss-120b H100 rows at concurrency 512
# (0.30-1.03x of the same server's TPOT at 64, with TTFT of 20-460 s): the engine there
# ran far fewer than 512 requests at once, which the rows do not record.
TPOT_RISE_PER_8X = 1.1


@dataclass(frozen=True)
class Inconsistent:
    """A measured point set aside by the consistency rule, and why."""

    point: MeasuredPoint
    reason: str


def inconsistent_points(points: Sequence[MeasuredPoint]) -> tuple[Inconsistent, ...]:
    """Points whose TPOT is below `TPOT_RISE_PER_8X` x the TPOT measured for the same
    (model, GPU type, TP, EP, input and output tokens) at 1/8 of their concurrency or less
    (the median of the rows at each such concurrency, the highest of those medians):
    they cannot have run their stated concurrency (pure; order kept)."""
    levels: dict[tuple[object, ...], dict[int, list[float]]] = {}
    for p in points:
        key = (p.model, p.gpu_type, p.tp, p.expert_parallel, p.input_tokens, p.output_tokens)
        levels.setdefault(key, {}).setdefault(p.concurrency, []).append(p.tpot_ms)
    out = []
    for p in points:
        key = (p.model, p.gpu_type, p.tp, p.expert_parallel, p.input_tokens, p.output_tokens)
        lower = [(float(np.median(v)), c) for c, v in levels[key].items() if 8 * c <= p.concurrency]
        if not lower:
            continue
        ref_ms, ref_c = max(lower)
        if p.tpot_ms < TPOT_RISE_PER_8X * ref_ms:
            out.append(
                Inconsistent(
                    p,
                    f"TPOT {p.tpot_ms:.2f} ms at concurrency {p.concurrency} is below "
                    f"{TPOT_RISE_PER_8X} x {ref_ms:.2f} ms (median) at concurrency {ref_c}",
                )
            )
    return tuple(out)


def consistent_points(points: Sequence[MeasuredPoint]) -> list[MeasuredPoint]:
    """`points` without those `inconsistent_points` sets aside (order kept)."""
    dropped = {id(x.point) for x in inconsistent_points(points)}
    return [p for p in points if id(p) not in dropped]


def predict(
    catalog: Catalog,
    points: Sequence[MeasuredPoint],
    calibrations: dict[GpuType, Calibration] | None = None,
    gpu_memory_utilization: float = MEASURED_GPU_MEMORY_UTILIZATION,
) -> Predictions:
    """Model TTFT/TPOT for every point, with the catalog's or the given constants."""
    ttft = np.empty(len(points))
    tpot = np.empty(len(points))
    for i, p in enumerate(points):
        model, gpu = catalog.models[p.model], catalog.gpus[p.gpu_type]
        if calibrations is not None and p.gpu_type in calibrations:
            gpu = replace(gpu, calibration=calibrations[p.gpu_type])
        fit = memory_fit(model, gpu, p.tp, 1.0, gpu_memory_utilization)
        point = steady_state(
            model,
            gpu,
            p.tp,
            1.0,
            p.input_tokens,
            p.output_tokens,
            p.concurrency,
            fit.kv_cache_tokens,
        )
        ttft[i], tpot[i] = point.ttft_ms, point.tpot_ms
    return Predictions(ttft_ms=ttft, tpot_ms=tpot)


# Fitted constants, in the order of the search vector. The per-step overhead is not
# among them: with one or two layer counts per GPU it cannot be told apart from the
# per-layer overhead (an H100 fit with both free put it at 0.06 us), so it stays 0.
_NAMES = (
    "per_layer_overhead_us",
    "memory_efficiency",
    "compute_efficiency",
    "prefill_interference",
    "allreduce_multiplier",
    "ttft_overhead_ms",
    "per_sequence_overhead_us",
    "prefill_wait_fraction",
    "fp4_weight_read_multiplier",
)
_FRACTIONS = {"compute_efficiency", "prefill_interference", "prefill_wait_fraction"}
_AT_LEAST_ONE = {"memory_efficiency", "fp4_weight_read_multiplier"}
_START = {
    "per_layer_overhead_us": 9.0,
    "memory_efficiency": 1.3,
    "compute_efficiency": 0.5,
    "prefill_interference": 0.5,
    "allreduce_multiplier": 2.0,
    "ttft_overhead_ms": 30.0,
    "per_sequence_overhead_us": 20.0,
    "prefill_wait_fraction": 0.1,
    "fp4_weight_read_multiplier": 1.2,
}


def _decode(name: str, v: float) -> float:
    """Search coordinate -> constant: logistic for fractions, 1 + exp for multipliers
    that cannot beat the datasheet, exp for the other positive constants."""
    if name in _FRACTIONS:
        return 1.0 / (1.0 + math.exp(-v))
    if name in _AT_LEAST_ONE:
        return 1.0 + math.exp(v)
    return math.exp(v)


def _encode(name: str, value: float) -> float:
    if name in _FRACTIONS:
        return math.log(value / (1.0 - value))
    if name in _AT_LEAST_ONE:
        return math.log(max(value - 1.0, 1e-9))
    return math.log(value)


def _to_calibration(
    x: np.ndarray, names: Sequence[str], pinned: dict[str, float], source: str
) -> Calibration:
    values = dict(pinned)
    values.update({name: _decode(name, v) for name, v in zip(names, x, strict=True)})
    # The wait share is a fraction of the interference (a request cannot wait for more
    # prefill work than the others bring).
    values["prefill_wait_fraction"] *= values["prefill_interference"]
    return Calibration(source=source, **values)


def fit_calibration(
    catalog: Catalog, points: Sequence[MeasuredPoint], source: str = ""
) -> Calibration:
    """One set of constants that best reproduces all `points` (whatever their GPU types).

    Deterministic: fixed start, fixed simplex, fixed iteration budget.
    """
    if not points:
        raise ValueError("no measured points to fit")
    ttft = np.array([p.ttft_ms for p in points])
    tpot = np.array([p.tpot_ms for p in points])
    gpus = {p.gpu_type for p in points}
    pinned = {"per_step_overhead_us": 0.0}
    if not any(catalog.models[p.model].weight_dtype == "fp4" for p in points):
        pinned["fp4_weight_read_multiplier"] = 1.0  # no FP4 rows: nothing to fit it on
    names = [n for n in _NAMES if n not in pinned]

    def loss(x: np.ndarray) -> float:
        cal = _to_calibration(x, names, pinned, source)
        pred = predict(catalog, points, dict.fromkeys(gpus, cal))
        e_tpot = np.log(pred.tpot_ms / tpot)
        e_ttft = np.log(pred.ttft_ms / ttft)
        return float(np.mean(e_tpot**2) + TTFT_WEIGHT * np.mean(e_ttft**2))

    best = np.array([_encode(n, _START[n]) for n in names])
    for _ in range(RESTARTS):  # restarts shake the simplex out of a collapsed shape
        best = nelder_mead(loss, best, iterations=ITERATIONS)
    return _to_calibration(best, names, pinned, source)


def nelder_mead(
    f: Callable[[np.ndarray], float], x0: np.ndarray, iterations: int, step: float = 0.3
) -> np.ndarray:
    """Minimise f from x0 with the Nelder-Mead simplex (standard coefficients)."""
    n = len(x0)
    simplex = [x0.astype(float)] + [x0 + step * np.eye(n)[i] for i in range(n)]
    values = [f(x) for x in simplex]
    for _ in range(iterations):
        order = np.argsort(values, kind="stable")
        simplex = [simplex[i] for i in order]
        values = [values[i] for i in order]
        centroid = np.mean(simplex[:-1], axis=0)
        reflected = centroid + (centroid - simplex[-1])
        fr = f(reflected)
        if fr < values[0]:
            expanded = centroid + 2.0 * (centroid - simplex[-1])
            fe = f(expanded)
            simplex[-1], values[-1] = (expanded, fe) if fe < fr else (reflected, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = reflected, fr
        else:
            contracted = centroid + 0.5 * (simplex[-1] - centroid)
            fc = f(contracted)
            if fc < values[-1]:
                simplex[-1], values[-1] = contracted, fc
            else:  # shrink towards the best vertex
                simplex = [simplex[0]] + [simplex[0] + 0.5 * (x - simplex[0]) for x in simplex[1:]]
                values = [values[0]] + [f(x) for x in simplex[1:]]
    best: np.ndarray = simplex[int(np.argmin(values))]
    return best


def mape(predicted: np.ndarray, measured: np.ndarray) -> float:
    """Mean absolute percentage error, in percent."""
    return float(np.mean(np.abs(predicted - measured) / measured) * 100.0)
