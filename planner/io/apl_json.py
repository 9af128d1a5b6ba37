"""The Aggregate LLM Pipeline as JSON: the public contract of `planner ingest --json`.

Contract keys (DESIGN.md) come first in contract order; extra keys follow sorted by name.
Floats keep full precision; NaN and missing values are written as null. The same
pipeline always gives the same bytes.
"""

from __future__ import annotations

import json
import math
from typing import Any

from planner.errors import InputError
from planner.types.apl import AggregatePipeline, ModelStats, Stats, WorkflowStats

SCHEMA_VERSION = 1


def pipeline_to_dict(apl: AggregatePipeline) -> dict[str, Any]:
    """A JSON-ready dict in contract key order."""
    return {
        "schema_version": SCHEMA_VERSION,
        "workflows": [_workflow(w) for w in apl.workflows],
        "notes": list(apl.notes),
        "sources": list(apl.sources),
    }


def dumps_pipeline(apl: AggregatePipeline) -> str:
    """Deterministic JSON text (2-space indent, trailing newline)."""
    return json.dumps(pipeline_to_dict(apl), indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def pipeline_from_dict(data: dict[str, Any]) -> AggregatePipeline:
    """Rebuild an AggregatePipeline from `pipeline_to_dict` output (or the parsed JSON).

    Raises:
        InputError: a wrong schema version or a missing contract key.
    """
    try:
        if data.get("schema_version") != SCHEMA_VERSION:
            raise InputError(
                f"aggregate pipeline JSON: schema_version must be {SCHEMA_VERSION}, got "
                f"{data.get('schema_version')!r}; regenerate it with planner ingest --json"
            )
        return AggregatePipeline(
            workflows=tuple(_workflow_from(w) for w in data["workflows"]),
            sources=tuple(data.get("sources", ())),
            notes=tuple(data.get("notes", ())),
        )
    except (KeyError, TypeError) as exc:
        raise InputError(
            f"aggregate pipeline JSON: missing or malformed key {exc}; regenerate it with "
            "planner ingest --json"
        ) from None


def _workflow(w: WorkflowStats) -> dict[str, Any]:
    return {
        "workflow_type": w.workflow_type,
        "workflow_count": w.workflow_count,
        "arrival_rate_per_s": _num(w.arrival_rate_per_s),
        "latency_s": _stats(w.latency_s),
        "llm_time_fraction": _num(w.llm_time_fraction),
        "models": [_model(m) for m in w.models],
        "characterisation": {k: _clean(w.characterisation[k]) for k in sorted(w.characterisation)},
        "non_llm_time_s": _num(w.non_llm_time_s),
        "peak_rate_per_s": _num(w.peak_rate_per_s),
    }


def _model(m: ModelStats) -> dict[str, Any]:
    return {
        "model": m.model,
        "calls_per_workflow": _num(m.calls_per_workflow),
        "parallelism": _num(m.parallelism),
        "execution_share": _num(m.execution_share),
        "execution_share_cv": _num(m.execution_share_cv),
        "input_tokens": _stats(m.input_tokens),
        "output_tokens": _stats(m.output_tokens),
        "cached_input_tokens": _stats(m.cached_input_tokens),
        "error_count": m.error_count,
        "mean_call_latency_s": _num(m.mean_call_latency_s),
        "retry_count": m.retry_count,
        "prefix_reuse": {
            "potential": _num(m.prefix_reuse_potential),
            "source": m.prefix_reuse_source,
        },
        "fan_out": {
            "burst_calls": _num(m.burst_calls),
            "burst_sizes": [[size, _num(count)] for size, count in m.burst_sizes],
        },
    }


def _workflow_from(d: dict[str, Any]) -> WorkflowStats:
    return WorkflowStats(
        workflow_type=d["workflow_type"],
        workflow_count=int(d["workflow_count"]),
        arrival_rate_per_s=d["arrival_rate_per_s"],
        peak_rate_per_s=d.get("peak_rate_per_s"),
        latency_s=_stats_from(d["latency_s"]),
        llm_time_fraction=d["llm_time_fraction"],
        non_llm_time_s=d.get("non_llm_time_s"),
        models=tuple(_model_from(m) for m in d["models"]),
        characterisation=d.get("characterisation", {}),
    )


def _model_from(d: dict[str, Any]) -> ModelStats:
    input_tokens = _stats_from(d["input_tokens"])
    output_tokens = _stats_from(d["output_tokens"])
    if input_tokens is None or output_tokens is None:
        raise KeyError("input_tokens/output_tokens")
    return ModelStats(
        model=d["model"],
        calls_per_workflow=_float(d["calls_per_workflow"]),
        parallelism=_float(d["parallelism"]),
        execution_share=_float(d["execution_share"]),
        execution_share_cv=_float(d["execution_share_cv"]),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_input_tokens=_stats_from(d.get("cached_input_tokens")),
        mean_call_latency_s=d.get("mean_call_latency_s"),
        error_count=int(d.get("error_count", 0)),
        retry_count=int(d.get("retry_count", 0)),
        prefix_reuse_potential=d.get("prefix_reuse", {}).get("potential"),
        prefix_reuse_source=d.get("prefix_reuse", {}).get("source", "none"),
        burst_calls=float(d.get("fan_out", {}).get("burst_calls") or 1.0),
        burst_sizes=tuple(
            (int(size), float(count)) for size, count in d.get("fan_out", {}).get("burst_sizes", [])
        ),
    )


def _stats(s: Stats | None) -> dict[str, float | None] | None:
    if s is None:
        return None
    return {"mean": _num(s.mean), "p50": _num(s.p50), "p95": _num(s.p95)}


def _stats_from(d: dict[str, Any] | None) -> Stats | None:
    if d is None:
        return None
    return Stats(mean=_float(d["mean"]), p50=_float(d["p50"]), p95=_float(d["p95"]))


def _num(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _clean(value: Any) -> Any:
    """JSON-ready copy with NaN as None; nested dicts keep their (deterministic) order, so
    histograms stay in numeric order."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
