"""The real-vLLM profiler: what to run and how to read it (pure; the running is in io).

A sweep starts one vLLM OpenAI server per configuration (TP degree x GPU fraction) and
drives it with vLLM's own load generator (`vllm bench serve`) at a ladder of loads:
closed-loop concurrency levels (`--max-concurrency C`, all requests queued at once) and
open-loop Poisson rates (`--request-rate R`), with fixed input/output token counts taken
from the trace (the APL's mean shape per model) and `--ignore-eos` so every request
generates exactly its output tokens. Every load point's `--save-result` JSON goes through
the same parser as `planner profile import` (`planner.profiles.imported`).

A GPU fraction f is realised as it will be on the cluster: `--gpu-memory-utilization`
f x GPU_MEMORY_UTILIZATION, the share the manifests deploy. The CPU backend ignores that
flag and sizes its KV cache from `--kv-cache-memory-bytes`, so on CPU the fraction scales
that budget instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from planner.defaults import GPU_MEMORY_UTILIZATION
from planner.errors import InputError
from planner.profiles.points import STATUS_FAILED
from planner.types.names import ModelName

GIB = 1024**3


@dataclass(frozen=True)
class TokenShape:
    """Fixed prompt and completion lengths of every request at one load point."""

    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class LoadPoint:
    """One rung of the load ladder: closed loop (`request_rate` None) or open loop."""

    num_prompts: int
    concurrency: int | None = None
    request_rate: float | None = None

    @property
    def label(self) -> str:
        if self.request_rate is None:
            return f"c{self.concurrency}"
        cap = f"-c{self.concurrency}" if self.concurrency else ""
        return f"r{self.request_rate:g}{cap}"


@dataclass(frozen=True)
class EngineConfig:
    """One engine start: a TP degree and a GPU fraction."""

    tp: int
    gpu_fraction: float


@dataclass(frozen=True)
class SweepSpec:
    """Everything a profiling sweep needs.

    Attributes:
        model: catalog name recorded in the table.
        model_path: what vLLM loads (a local directory or a hub id).
        gpu_type: catalog GPU type, or `cpu` when no GPU is present.
        concurrencies: closed-loop client counts.
        request_rates: open-loop Poisson rates per second.
        prompts_per_client: requests per closed-loop client (more: steadier averages).
        min_prompts: lower bound on requests per load point.
        open_loop_duration_s: an open-loop point sends about rate x this many requests.
        kv_cache_gib: KV cache budget per engine on CPU (scaled by the fraction).
    """

    model: ModelName
    model_path: str
    gpu_type: str
    tps: tuple[int, ...]
    gpu_fractions: tuple[float, ...]
    shapes: tuple[TokenShape, ...]
    concurrencies: tuple[int, ...] = (1, 2, 4, 8)
    request_rates: tuple[float, ...] = ()
    prompts_per_client: int = 8
    min_prompts: int = 8
    open_loop_duration_s: float = 10.0
    max_model_len: int | None = None
    kv_cache_gib: float = 1.0
    vllm_args: tuple[str, ...] = ()
    seed: int = 0

    @property
    def on_cpu(self) -> bool:
        return self.gpu_type == "cpu"


def configurations(spec: SweepSpec) -> tuple[EngineConfig, ...]:
    """TP x fraction, in order. Fractions below 1 apply to TP 1 only (TP takes whole GPUs)."""
    configs = [
        EngineConfig(tp, fraction)
        for tp in spec.tps
        for fraction in spec.gpu_fractions
        if fraction == 1.0 or tp == 1
    ]
    return tuple(dict.fromkeys(configs))


def load_ladder(spec: SweepSpec) -> tuple[LoadPoint, ...]:
    """Closed-loop rungs by rising concurrency, then open-loop rungs by rising rate."""
    closed = [
        LoadPoint(max(spec.min_prompts, spec.prompts_per_client * c), concurrency=c)
        for c in sorted(set(spec.concurrencies))
    ]
    opened = [
        LoadPoint(max(spec.min_prompts, math.ceil(r * spec.open_loop_duration_s)), request_rate=r)
        for r in sorted(set(spec.request_rates))
    ]
    return (*closed, *opened)


def warmup_point(spec: SweepSpec) -> LoadPoint:
    """A short rung at the highest concurrency, run first and not stored."""
    top = max(spec.concurrencies, default=1)
    return LoadPoint(2 * top, concurrency=top)


def server_args(spec: SweepSpec, config: EngineConfig, served_name: str, port: int) -> list[str]:
    """Arguments of `python -m vllm.entrypoints.openai.api_server` for one configuration."""
    args = [
        "--model", spec.model_path,
        "--served-model-name", served_name,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--tensor-parallel-size", str(config.tp),
        "--seed", str(spec.seed),
        "--disable-uvicorn-access-log",  # one line per request would bloat the log we parse
    ]  # fmt: skip
    if spec.max_model_len:
        args += ["--max-model-len", str(spec.max_model_len)]
    if spec.on_cpu:
        kv_bytes = int(spec.kv_cache_gib * config.gpu_fraction * GIB)
        args += ["--kv-cache-memory-bytes", str(kv_bytes)]
    else:
        utilization = round(GPU_MEMORY_UTILIZATION * config.gpu_fraction, 4)
        args += ["--gpu-memory-utilization", f"{utilization:g}"]
    return [*args, *spec.vllm_args]


def cpu_rank_cores(config: EngineConfig, cpu_ids: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """On CPU, the core of each TP rank of one engine: one core per rank (the `cpu` test
    device is one core), the first `tp` of `cpu_ids`."""
    ids = list(cpu_ids)[: config.tp]
    return tuple((core,) for core in ids)


def server_env(
    spec: SweepSpec, config: EngineConfig, cpu_ids: Sequence[int], mps_running: bool = False
) -> dict[str, str]:
    """Environment additions for one engine; `cpu_ids` are the cores it may use.

    On CPU each TP rank's OpenMP threads are bound to its own core
    (`VLLM_CPU_OMP_THREADS_BIND="0|1"` for TP 2), and the whole server runs on those
    cores (`server_cpus`), as the replicas of a plan are started: vLLM's automatic
    binding would reserve another core for the engine's scheduler process, which polls
    while the model runs, and a deployment with one engine per core has no such core
    to give. On a GPU whose MPS daemon runs, a share f < 1 also limits compute to f of
    the SMs (`CUDA_MPS_ACTIVE_THREAD_PERCENTAGE`), as MPS-based sharing on the cluster
    would; memory is already bounded by `--gpu-memory-utilization`.
    """
    if not spec.on_cpu:
        if mps_running and config.gpu_fraction < 1:
            return {"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": f"{100 * config.gpu_fraction:.0f}"}
        return {}
    ranks = cpu_rank_cores(config, cpu_ids)
    return {"VLLM_CPU_OMP_THREADS_BIND": "|".join(",".join(map(str, g)) for g in ranks)}


def server_cpus(
    spec: SweepSpec, config: EngineConfig, cpu_ids: Sequence[int]
) -> tuple[int, ...] | None:
    """The cores the whole server (API server, scheduler, workers) is confined to: on
    CPU its ranks' cores, so an engine measured alone gets the CPU time it gets beside
    other engines, one per core; on a GPU None (no confinement)."""
    if not spec.on_cpu:
        return None
    return tuple(c for group in cpu_rank_cores(config, cpu_ids) for c in group)


def bench_args(
    spec: SweepSpec,
    config: EngineConfig,
    shape: TokenShape,
    point: LoadPoint,
    *,
    base_url: str,
    served_name: str,
    tokenizer: str,
    result_dir: str,
    result_filename: str,
    kv_cache_tokens: float = math.nan,
    vllm_version: str = "",
    measured_at: str = "",
) -> list[str]:
    """Arguments of `vllm bench serve` for one load point, saving its result JSON.

    The metadata carries what `planner profile import` needs to file the result
    (model, GPU type, TP, fraction) and what the engine reported (KV capacity, version,
    start time).
    """
    args = [
        "--backend", "vllm",
        "--base-url", base_url,
        "--model", served_name,
        "--tokenizer", tokenizer,
        "--dataset-name", "random",
        "--random-input-len", str(shape.input_tokens),
        "--random-output-len", str(shape.output_tokens),
        "--random-range-ratio", "0",
        "--ignore-eos",
        "--num-prompts", str(point.num_prompts),
        "--seed", str(spec.seed),
        "--percentile-metrics", "ttft,tpot,itl,e2el",
        "--metric-percentiles", "50,90,99",
        "--disable-tqdm",
        "--save-result",
        "--result-dir", result_dir,
        "--result-filename", result_filename,
        "--metadata",
        f"model={spec.model}",
        f"gpu_type={spec.gpu_type}",
        f"tp={config.tp}",
        f"gpu_fraction={config.gpu_fraction:g}",
    ]  # fmt: skip
    if not math.isnan(kv_cache_tokens):
        args.append(f"kv_cache_tokens={kv_cache_tokens:.0f}")
    if vllm_version:
        args.append(f"vllm_version={vllm_version}")
    if measured_at:
        args.append(f"measured_at={measured_at}")
    if point.concurrency is not None:
        args += ["--max-concurrency", str(point.concurrency)]
    if point.request_rate is not None:
        args += ["--request-rate", f"{point.request_rate:g}"]
    return args


def failed_row(
    spec: SweepSpec,
    config: EngineConfig,
    shape: TokenShape,
    error: str,
    *,
    vllm_version: str,
    measured_at: str,
    point: LoadPoint | None = None,
    kv_cache_tokens: float = math.nan,
) -> dict[str, Any]:
    """A stored row for a configuration (or one load point) that did not produce numbers."""
    return {
        "model": spec.model,
        "gpu_type": spec.gpu_type,
        "tp": config.tp,
        "gpu_fraction": config.gpu_fraction,
        "source": "measured",
        "input_tokens": float(shape.input_tokens),
        "output_tokens": float(shape.output_tokens),
        "concurrency": float(point.concurrency) if point and point.concurrency else math.nan,
        "request_rate": float(point.request_rate) if point and point.request_rate else math.nan,
        "kv_cache_tokens": kv_cache_tokens,
        "vllm_version": vllm_version,
        "measured_at": measured_at,
        "status": STATUS_FAILED,
        "error": " ".join(error.split())[:1000],
    }


def shapes_from_pipeline(
    apl: Any, model: ModelName, resolve: Callable[[str], str], where: str
) -> tuple[TokenShape, ...]:
    """The mean token shape of `model`'s calls in an APL document (`planner ingest --json`).

    Workflow types are weighted by how many calls they make to the model
    (workflow_count x calls_per_workflow). `resolve` maps the APL's model names to
    catalog names (return the name unchanged for models outside the catalog).

    Raises:
        InputError: the document is malformed or never calls the model.
    """
    if not isinstance(apl, Mapping) or not isinstance(apl.get("workflows"), list):
        raise InputError(f"{where}: expected the JSON of `planner ingest --json` (key 'workflows')")
    weight_sum = isl_sum = osl_sum = 0.0
    seen: list[str] = []
    try:
        for workflow in apl["workflows"]:
            for entry in workflow["models"]:
                seen.append(str(entry["model"]))
                if resolve(str(entry["model"])) != model:
                    continue
                weight = float(workflow["workflow_count"]) * float(entry["calls_per_workflow"])
                weight_sum += weight
                isl_sum += weight * float(entry["input_tokens"]["mean"])
                osl_sum += weight * float(entry["output_tokens"]["mean"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{where}: malformed APL entry (key {exc})") from exc
    if weight_sum <= 0:
        known = ", ".join(sorted(set(seen))) or "none"
        raise InputError(f"{where}: no calls to model '{model}' (models in the file: {known})")
    return (TokenShape(max(1, round(isl_sum / weight_sum)), max(1, round(osl_sum / weight_sum))),)


def result_filename(config: EngineConfig, shape: TokenShape, point: LoadPoint) -> str:
    """A stable file name for one load point's `--save-result` JSON."""
    return (
        f"tp{config.tp}-f{config.gpu_fraction:g}-i{shape.input_tokens}-o{shape.output_tokens}"
        f"-{point.label}.json"
    )


def with_run_facts(
    row: Mapping[str, Any], *, kv_cache_tokens: float, vllm_version: str, measured_at: str
) -> dict[str, Any]:
    """Add what the engine told us (KV capacity, version, time) to a parsed bench row."""
    return {
        **row,
        "source": "measured",
        "kv_cache_tokens": kv_cache_tokens,
        "vllm_version": vllm_version,
        "measured_at": measured_at,
    }
