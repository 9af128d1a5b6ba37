"""The predict job: one shape's serving figures from the best profile source."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.defaults import GPU_MEMORY_UTILIZATION


@dataclass(frozen=True)
class PredictRequest:
    model: str  # catalog name, HF id or alias
    gpu_type: str
    input_tokens: float
    output_tokens: float
    concurrency: float
    tp: int = 1
    expert_parallel: bool = False
    gpu_fraction: float = 1.0
    gpu_memory_utilization: float = GPU_MEMORY_UTILIZATION
    configs_dir: Path | None = None
    profiles_dir: Path | None = None
    pp: int = 1  # pipeline stages, one per node (a replica spanning nodes)
    dp: int = 1  # data-parallel attention ranks (MoE with expert parallelism)


def predict_job(request: PredictRequest) -> dict[str, Any]:
    """TTFT, TPOT, end-to-end latency, throughput, KV capacity and memory of one shape,
    from stored measured/imported points, else kernel-composed steps, else the roofline;
    `source` says which answered and `extrapolated` names kernels read off the grid.

    Raises:
        ProfileError: unknown model or GPU type.
        InputError: a GPU share that is not k/8.
        InfeasibleError: the shape does not fit (the message has the memory figures).
    """
    from planner.catalog import resolve_gpu, resolve_model
    from planner.errors import InputError
    from planner.io.configs import load_catalog
    from planner.io.profiles import load_profiles
    from planner.types.shapes import ShapeKey, share_eighths

    catalog = load_catalog(request.configs_dir)
    spec = resolve_model(catalog, request.model)
    gpu = resolve_gpu(catalog, request.gpu_type)
    profiles = load_profiles(request.profiles_dir, catalog, request.gpu_memory_utilization)
    try:
        share = share_eighths(request.gpu_fraction, "--gpu-fraction")
    except ValueError as exc:
        raise InputError(f"{exc}; give k/8 such as 1, 0.5, 0.25 or 0.125") from None
    if request.dp < 1 or (request.dp > 1 and not request.expert_parallel):
        raise InputError(
            f"--dp {request.dp}: data-parallel attention ranks must be >= 1, and above 1 "
            "need --enable-expert-parallel (vLLM then splits the experts over tp x dp GPUs)"
        )
    key = ShapeKey(
        spec.name, gpu.name, request.tp, share, request.pp, request.expert_parallel, request.dp
    )
    isl, osl = request.input_tokens, request.output_tokens
    point = profiles.at_concurrency(key, isl, osl, request.concurrency)
    fit = profiles.memory(key)
    source_of = getattr(profiles, "source_of", None)
    source = source_of(key) if source_of is not None else point.source
    extrapolated = getattr(profiles, "extrapolated", None)
    notes = list(extrapolated(key)) if extrapolated is not None and source == "kernels" else []
    return {
        "model": spec.name,
        "gpu_type": gpu.name,
        "tp": request.tp,
        **({"pipeline_parallel": request.pp} if request.pp > 1 else {}),
        **({"data_parallel": request.dp, "gpus": key.group_gpus} if request.dp > 1 else {}),
        "expert_parallel": request.expert_parallel,
        "gpu_fraction": request.gpu_fraction,
        "input_tokens": isl,
        "output_tokens": osl,
        "concurrency": request.concurrency,
        "ttft_ms": round(point.ttft_ms, 3),
        "tpot_ms": round(point.tpot_ms, 3),
        "e2e_ms": round(point.e2e_ms, 3),
        "output_tokens_per_s": round(point.output_tokens_per_s, 3),
        "requests_per_s": round(point.requests_per_s, 5),
        "kv_cache_tokens": point.kv_cache_tokens,
        "max_concurrency": round(point.max_concurrency, 3),
        "weights_gib_per_gpu": round(fit.weights_gib, 3),
        "kv_cache_gib_per_gpu": round(fit.kv_cache_gib, 3),
        "weights_gib_by_part": {k: round(v, 3) for k, v in spec.weight_gib_by_part().items()},
        "source": source,
        "extrapolated": notes,
    }
