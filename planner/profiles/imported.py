"""Turn one `vllm bench serve --save-result` JSON document into a stored point.

Keys read (checked on vLLM 0.32.0): `completed`, `failed`, `duration`,
`total_input_tokens`, `total_output_tokens`, `request_throughput`, `output_throughput`,
`max_concurrency`, `request_rate`, and `{mean,median,p50,p90,p99}_{ttft,tpot,e2el}_ms`.
Which model, GPU type and TP degree the run used comes from `--metadata k=v` pairs
(which vLLM writes at the top level: `model`, `gpu_type`, `tp`, optionally
`gpu_fraction`, `kv_cache_tokens`, `vllm_version`) or from explicit overrides.
The profiler's own runs go through this same parser.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from planner.errors import InputError, PlannerError
from planner.profiles.points import LATENCY_STATS, STATUS_OK

# Our column prefix -> vLLM's metric name in the result keys.
_VLLM_METRIC = {"ttft_ms": "ttft", "tpot_ms": "tpot", "e2e_ms": "e2el"}

# Metadata keys accepted for each field (first found wins); vLLM's own `model_id` last.
_MODEL_KEYS = ("model", "model_name", "model_id")
_GPU_KEYS = ("gpu_type", "gpu")
_TP_KEYS = ("tp", "tensor_parallel_size")


@dataclass(frozen=True)
class ImportOverrides:
    """Values given on the command line; they win over the file's metadata."""

    model: str | None = None
    gpu_type: str | None = None
    tp: int | None = None
    gpu_fraction: float | None = None


def bench_result_to_point(
    data: Any,
    where: str,
    overrides: ImportOverrides = ImportOverrides(),
    source: str = "imported",
    resolve_model: Callable[[str], str] | None = None,
    resolve_gpu: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """One stored-point row from a parsed `--save-result` JSON document.

    Args:
        data: the parsed JSON (must be an object).
        where: the file name, used in error messages.
        overrides: model / GPU type / TP / fraction given by the user.
        source: `imported`, or `measured` when our profiler produced the file.
        resolve_model: maps a trace or HF model name to the catalog name.
        resolve_gpu: maps a GPU name to the catalog GPU type.

    Raises:
        InputError: naming the file and the missing or malformed key.
    """
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: expected a JSON object from `vllm bench serve --save-result`")

    completed = _number(data, "completed", where)
    if completed <= 0:
        raise InputError(f"{where}: key 'completed' is {completed:g}; no request finished")
    row: dict[str, Any] = {
        "model": _model(data, where, overrides, resolve_model),
        "gpu_type": _gpu_type(data, where, overrides, resolve_gpu),
        "tp": _tp(data, where, overrides),
        "gpu_fraction": _fraction(data, where, overrides),
        "source": source,
        "input_tokens": _number(data, "total_input_tokens", where) / completed,
        "output_tokens": _number(data, "total_output_tokens", where) / completed,
        "num_requests": completed,
        "failed_requests": _optional_number(data, "failed", where, 0.0),
        "duration_s": _number(data, "duration", where),
        "requests_per_s": _number(data, "request_throughput", where),
        "output_tokens_per_s": _number(data, "output_throughput", where),
        "kv_cache_tokens": _optional_number(data, "kv_cache_tokens", where, math.nan),
        "prefix_hit_rate": _optional_number(data, "prefix_hit_rate", where, math.nan),
        "vllm_version": str(data.get("vllm_version", "")),
        "measured_at": _measured_at(data),
        "status": STATUS_OK,
        "error": "",
    }
    row["concurrency"], row["request_rate"] = _load(data, where)
    for column, name in _VLLM_METRIC.items():
        row[f"{column}_mean"] = _number(data, f"mean_{name}_ms", where)
        for stat in LATENCY_STATS[1:]:
            fallback = data.get(f"median_{name}_ms") if stat == "p50" else None
            value = data.get(f"{stat}_{name}_ms", fallback)
            row[f"{column}_{stat}"] = (
                math.nan if value is None else _as_float(value, f"{stat}_{name}_ms", where)
            )
    return row


def _measured_at(data: Mapping[str, Any]) -> str:
    """ISO 8601 time of the run: our metadata, else vLLM's `date` (YYYYMMDD-HHMMSS, local)."""
    if data.get("measured_at"):
        return str(data["measured_at"])
    raw = str(data.get("date", ""))
    try:
        return datetime.strptime(raw, "%Y%m%d-%H%M%S").isoformat()
    except ValueError:
        return raw


def _load(data: Mapping[str, Any], where: str) -> tuple[float, float]:
    """(concurrency, request_rate): closed loop has rate NaN; open loop has a finite rate."""
    rate = _optional_number(data, "request_rate", where, math.inf)
    cap = _optional_number(data, "max_concurrency", where, math.nan)
    if math.isinf(rate):
        if math.isnan(cap):
            # Everything sent at once: a closed loop with every request in flight.
            cap = _number(data, "completed", where) + _optional_number(data, "failed", where, 0)
        return cap, math.nan
    if rate <= 0:
        raise InputError(f"{where}: key 'request_rate' must be positive or 'inf', got {rate:g}")
    return cap, rate


def _model(
    data: Mapping[str, Any],
    where: str,
    overrides: ImportOverrides,
    resolve_model: Callable[[str], str] | None,
) -> str:
    name = overrides.model or _first(data, _MODEL_KEYS)
    if not name:
        raise InputError(
            f"{where}: key 'model' is missing; pass --model or run the benchmark with "
            "`--metadata model=NAME`"
        )
    return _resolved(str(name), resolve_model, "model", where)


def _resolved(name: str, resolve: Callable[[str], str] | None, key: str, where: str) -> str:
    if resolve is None:
        return name
    try:
        return resolve(name)
    except PlannerError as exc:
        raise InputError(f"{where}: key '{key}': {exc}") from None


def _gpu_type(
    data: Mapping[str, Any],
    where: str,
    overrides: ImportOverrides,
    resolve_gpu: Callable[[str], str] | None,
) -> str:
    gpu = overrides.gpu_type or _first(data, _GPU_KEYS)
    if not gpu:
        raise InputError(
            f"{where}: key 'gpu_type' is missing; pass --gpu-type or run the benchmark with "
            "`--metadata gpu_type=H100`"
        )
    return _resolved(str(gpu), resolve_gpu, "gpu_type", where)


def _tp(data: Mapping[str, Any], where: str, overrides: ImportOverrides) -> int:
    if overrides.tp is not None:
        return overrides.tp
    raw = _first(data, _TP_KEYS)
    if raw is None:
        raise InputError(
            f"{where}: key 'tp' is missing; pass --tp or run the benchmark with `--metadata tp=2`"
        )
    value = _as_float(raw, "tp", where)
    if value < 1 or value != int(value):
        raise InputError(f"{where}: key 'tp' must be a positive integer, got {raw!r}")
    return int(value)


def _fraction(data: Mapping[str, Any], where: str, overrides: ImportOverrides) -> float:
    if overrides.gpu_fraction is not None:
        return overrides.gpu_fraction
    value = _optional_number(data, "gpu_fraction", where, 1.0)
    if not 0 < value <= 1:
        raise InputError(f"{where}: key 'gpu_fraction' must be in (0, 1], got {value:g}")
    return value


def _first(data: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    return next((data[k] for k in keys if data.get(k) not in (None, "")), None)


def _number(data: Mapping[str, Any], key: str, where: str) -> float:
    if key not in data or data[key] is None:
        raise InputError(f"{where}: key '{key}' is missing; is this a `--save-result` file?")
    return _as_float(data[key], key, where)


def _optional_number(data: Mapping[str, Any], key: str, where: str, default: float) -> float:
    value = data.get(key)
    return default if value is None else _as_float(value, key, where)


def _as_float(value: Any, key: str, where: str) -> float:
    if isinstance(value, bool):
        raise InputError(f"{where}: key '{key}' must be a number, got {value!r}")
    try:
        number = float(value)  # metadata values are strings; "inf" is vLLM's unbounded rate
    except (TypeError, ValueError):
        raise InputError(f"{where}: key '{key}' must be a number, got {value!r}") from None
    if math.isnan(number):
        raise InputError(f"{where}: key '{key}' is NaN")
    return number
