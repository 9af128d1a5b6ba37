"""Replay results as stored profile points, and what they correct (pure).

A `planner replay --json` document measured each model's calls over the replay window.
Each model that ran on a single shape (model, GPU type, TP, fraction; from the compared
plan's allocations, or given by the user) becomes one open-loop point of that shape
with source `measured`: per replica, the call rate the replica served and the calls'
mean TTFT/TPOT/e2e at the calls' mean token shape. The profile table places it on the
shape's curve at its mean number in flight (rate x latency), so the next plan uses it.

`corrections` says how far the profiles the last plan used were from these points.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from planner.errors import InputError, PlannerError
from planner.profiles import ProfileTable
from planner.profiles.points import STATUS_OK
from planner.types.shapes import ShapeKey, share_eighths

REPLAY_CRITERION = "measured"


def is_replay_result(data: Any) -> bool:
    """Whether a parsed JSON document is a `planner replay --json` result."""
    return (
        isinstance(data, Mapping)
        and data.get("criterion") == REPLAY_CRITERION
        and isinstance(data.get("replay"), Mapping)
    )


@dataclass(frozen=True)
class ShapeOverride:
    """The shape to file every model under when the replay compared no plan."""

    gpu_type: str
    tp: int
    gpu_fraction: float = 1.0


def replay_result_to_points(
    data: Mapping[str, Any],
    where: str,
    resolve_model: Callable[[str], str],
    override: ShapeOverride | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """(stored-point rows, notes on models that could not be filed) of a replay result.

    Raises:
        InputError: the document is malformed, or neither a compared plan nor an
            override says which shape served the models.
    """
    try:
        plan = data["plan"]
        models = plan["models"]
        allocations = plan.get("allocations") or []
        window = float(data["replay"]["window_s"] or math.nan)
        measured_at = str(data["replay"].get("measured_at", ""))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{where}: malformed replay result (key {exc})") from None
    shapes: dict[str, list[Mapping[str, Any]]] = {}
    for a in allocations:
        shapes.setdefault(_resolved(str(a["model"]), resolve_model, where), []).append(a)
    if not allocations and override is None:
        raise InputError(
            f"{where}: the replay compared no plan, so which shape served each model is "
            "unknown; rerun `planner replay --compare plan.yaml`, or pass --gpu-type and --tp"
        )
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for entry in models:
        model = _resolved(str(entry["model"]), resolve_model, where)
        ok = int(entry.get("ok") or 0)
        if ok == 0:
            notes.append(f"{model}: no call succeeded; nothing to file")
            continue
        mine = shapes.get(model, [])
        if len(mine) > 1:
            notes.append(
                f"{model}: served by {len(mine)} shapes in the plan; the replay cannot tell "
                "them apart, so it is not filed"
            )
            continue
        if mine:
            a = mine[0]
            gpu, tp = str(a["gpu_type"]), int(a["tensor_parallel"])
            fraction, replicas = float(a["gpu_fraction"]), int(a["replicas"])
        elif override is not None:
            gpu, tp, fraction = override.gpu_type, override.tp, override.gpu_fraction
            replicas = int(entry.get("replicas") or 1)
        else:
            notes.append(f"{model}: not in the compared plan; not filed")
            continue
        rate = float(entry["call_rate_per_s"] or math.nan) / max(replicas, 1)
        out_tokens = float(entry["mean_output_tokens"])
        row: dict[str, Any] = {
            "model": model,
            "gpu_type": gpu,
            "tp": tp,
            "gpu_fraction": fraction,
            "source": "measured",
            "input_tokens": float(entry["mean_input_tokens"]),
            "output_tokens": out_tokens,
            "concurrency": math.nan,
            "request_rate": rate,
            "num_requests": float(ok),
            "failed_requests": float(
                int(entry.get("errors") or 0) + int(entry.get("timeouts") or 0)
            ),
            "duration_s": window,
            "requests_per_s": rate,
            "output_tokens_per_s": rate * out_tokens,
            "kv_cache_tokens": math.nan,
            "vllm_version": "",
            "measured_at": measured_at,
            "status": STATUS_OK,
            "error": "",
        }
        for metric in ("ttft_ms", "tpot_ms", "e2e_ms"):
            stats = entry[metric]
            row[f"{metric}_mean"] = _num(stats.get("mean"))
            row[f"{metric}_p50"] = _num(stats.get("p50"))
        if not (rate > 0 and row["e2e_ms_mean"] > 0):
            notes.append(f"{model}: no calls completed inside the window; not filed")
            continue
        rows.append(row)
    return rows, notes


def _resolved(name: str, resolve: Callable[[str], str], where: str) -> str:
    try:
        return resolve(name)
    except PlannerError as exc:
        raise InputError(f"{where}: model '{name}': {exc}") from None


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


@dataclass(frozen=True)
class Correction:
    """A stored prediction beside the replay's measurement of the same shape and load."""

    key: ShapeKey
    rate_per_s: float
    source: str  # which profile source predicted it
    metric: str
    predicted_ms: float
    measured_ms: float

    @property
    def change(self) -> float:
        """(measured - predicted) / predicted: how much the prediction is corrected."""
        return (self.measured_ms - self.predicted_ms) / self.predicted_ms


def corrections(points: pd.DataFrame, before: ProfileTable) -> list[Correction]:
    """What `before` predicted at each replayed point, beside what was measured."""
    out: list[Correction] = []
    for row in points.to_dict("records"):
        try:
            eighths = share_eighths(float(row["gpu_fraction"]))
        except ValueError:
            continue  # not a share the planner plans (k/8): it predicted nothing for it
        key = ShapeKey(str(row["model"]), str(row["gpu_type"]), int(row["tp"]), eighths)
        try:
            point = before.at_rate(
                key, row["input_tokens"], row["output_tokens"], row["request_rate"]
            )
        except PlannerError:
            continue  # nothing predicted this shape before (a model outside the catalog)
        predicted = {"ttft_ms": point.ttft_ms, "tpot_ms": point.tpot_ms, "e2e_ms": point.e2e_ms}
        for metric, value in predicted.items():
            measured = row[f"{metric}_mean"]
            if value > 0 and math.isfinite(value) and math.isfinite(measured):
                out.append(
                    Correction(key, row["request_rate"], point.source, metric, value, measured)
                )
    return out


def correction_lines(items: Sequence[Correction]) -> list[str]:
    """One line per replayed shape: each latency's prediction, measurement and change."""
    by_key: dict[tuple[ShapeKey, float, str], list[Correction]] = {}
    for c in items:
        by_key.setdefault((c.key, c.rate_per_s, c.source), []).append(c)
    lines = []
    for (key, rate, source), group in sorted(by_key.items(), key=lambda kv: kv[0][:2]):
        parts = ", ".join(
            f"{c.metric.removesuffix('_ms')} {c.predicted_ms:.4g} -> {c.measured_ms:.4g} ms "
            f"({c.change:+.1%})"
            for c in group
        )
        lines.append(
            f"corrected {key.model} on {key.gpu_type} TP {key.tp} x {key.gpu_fraction:g} at "
            f"{rate:.3g} calls/s per replica ({source} prediction -> measured): {parts}"
        )
    return lines
