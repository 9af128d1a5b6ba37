"""Per (workflow type, model) statistics: n_m, p_m, execution share and its stability.

Definitions (issue 2, pinned by tests/test_aggregate.py):
- calls_per_workflow: the model's calls / all workflows of the type (workflows that never
  call it count as zero).
- parallelism: over workflows that call the model, summed call time / length of the union
  of its call intervals, plain mean. A workflow whose calls to the model all take zero
  time counts as 1 (nothing overlaps).
- execution_share: the model's summed call time / all LLM call time of the type.
- execution_share_cv: population std / mean of the per-workflow share, over the type's
  workflows with LLM time; a workflow that does not call the model has share 0.
- burst_calls: over the model's calls, mean size of the burst a call belongs to: the
  workflow's calls to the model sorted by start, a burst ending where the next call
  starts more than BURST_GAP_S after the previous one (fan-out arrives together);
  burst_sizes: per burst size, those bursts / all workflows of the type.
Without end times (serving-level traces) durations are unknown: a model called once per
workflow has parallelism 1, a type with a single model has share 1 and cv 0; anything
else is NaN (null in JSON).
Error and retry calls count as calls: they occupied the GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from planner.aggregate.indexed import Indexed
from planner.aggregate.intervals import grouped_intervals_by_owner
from planner.aggregate.summary import summarise
from planner.types.apl import ModelStats, Stats

# Calls of one workflow to one model starting this close together were dispatched by one
# fan-out: agent frameworks dispatch a ready call within tens of milliseconds (the
# simulator's WAIT_TOLERANCE_S reads traces the same way).
BURST_GAP_S = 0.1


@dataclass(frozen=True)
class _PerWorkflowModel:
    """One entry per (workflow, model) pair that has calls."""

    wf: np.ndarray
    model: np.ndarray
    summed: np.ndarray
    parallelism: np.ndarray
    share: np.ndarray  # of the workflow's LLM time; NaN when undefined


def model_stats(ix: Indexed, frame: pd.DataFrame) -> dict[int, tuple[ModelStats, ...]]:
    """ModelStats per workflow type index, models sorted by name."""
    llm = ix.llm_rows
    n_types, n_models = len(ix.type_names), ix.n_models
    pair = (ix.wf_type[ix.llm_wf] * n_models + ix.llm_model).astype(np.int32)
    n_pairs = n_types * n_models
    calls = np.bincount(pair, minlength=n_pairs)
    workflows = np.bincount(ix.wf_type, minlength=n_types)
    per = _per_workflow_model(ix)
    per_pair = ix.wf_type[per.wf] * n_models + per.model
    pair_type = np.arange(n_pairs) // n_models

    summed = np.bincount(per_pair, weights=per.summed, minlength=n_pairs)
    type_total = np.bincount(pair_type, weights=summed, minlength=n_types)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = summed / type_total[pair_type]
    models_in_type = np.bincount(pair_type, weights=calls > 0, minlength=n_types)
    share = np.where(np.isnan(share) & (models_in_type[pair_type] == 1), 1.0, share)
    groups = np.bincount(per_pair, minlength=n_pairs)
    with np.errstate(invalid="ignore", divide="ignore"):
        parallelism = np.bincount(per_pair, weights=per.parallelism, minlength=n_pairs) / groups
    cv = _share_cv(ix, per, per_pair, n_pairs)
    tokens = _token_stats(frame, llm, pair, n_pairs)
    duration = ix.llm_end - ix.llm_start
    status = frame["status"].array[llm]
    errors = np.bincount(pair, weights=np.asarray(status == "error"), minlength=n_pairs)
    retries = np.bincount(pair, weights=np.asarray(status == "retry"), minlength=n_pairs)
    latency_sum = np.bincount(pair, weights=np.nan_to_num(duration), minlength=n_pairs)
    sizes = _burst_sizes(ix)
    burst = np.bincount(pair, weights=sizes, minlength=n_pairs)
    histogram = _burst_histogram(pair, sizes)

    result: dict[int, tuple[ModelStats, ...]] = {}
    for t in range(n_types):
        stats = []
        for m in range(n_models):
            k = t * n_models + m
            if calls[k] == 0:
                continue
            inp, out, cached = tokens[k]
            stats.append(
                ModelStats(
                    model=ix.model_names[m],
                    calls_per_workflow=float(calls[k] / workflows[t]),
                    parallelism=float(parallelism[k]),
                    execution_share=float(share[k]),
                    execution_share_cv=float(cv[k]),
                    input_tokens=inp,
                    output_tokens=out,
                    cached_input_tokens=cached,
                    mean_call_latency_s=float(latency_sum[k] / calls[k]) if ix.timed else None,
                    error_count=int(errors[k]),
                    retry_count=int(retries[k]),
                    burst_calls=float(burst[k] / calls[k]),
                    burst_sizes=tuple(
                        (size, count / float(workflows[t])) for size, count in histogram.get(k, ())
                    ),
                )
            )
        result[t] = tuple(stats)
    return result


def _burst_sizes(ix: Indexed) -> np.ndarray:
    """Per LLM call (in `ix.llm_*` order), the size of its burst (see BURST_GAP_S)."""
    n = len(ix.llm_start)
    if n == 0:
        return np.zeros(0)
    key = ix.llm_wf.astype(np.int64) * ix.n_models + ix.llm_model
    start = np.asarray(ix.llm_start, dtype=np.float64)
    order = np.lexsort((start, key))
    k, t = key[order], start[order]
    new = np.ones(n, dtype=bool)
    new[1:] = (k[1:] != k[:-1]) | (t[1:] - t[:-1] > BURST_GAP_S)
    burst_id = np.cumsum(new) - 1
    sizes = np.bincount(burst_id)[burst_id].astype(np.float64)
    out = np.empty(n)
    out[order] = sizes
    return out


def _burst_histogram(
    pair: np.ndarray, sizes: np.ndarray
) -> dict[int, tuple[tuple[int, float], ...]]:
    """Per (type, model) pair: (burst size, bursts of that size), sizes ascending."""
    if not len(sizes):
        return {}
    # A burst of size s has s calls, each counting 1/s: the sums count the bursts.
    key = pair.astype(np.int64) * (int(sizes.max()) + 1) + sizes.astype(np.int64)
    keys, counts = np.unique(key, return_counts=True)
    out: dict[int, list[tuple[int, float]]] = {}
    span = int(sizes.max()) + 1
    for k, c in zip(keys.tolist(), counts.tolist(), strict=True):
        size = k % span
        out.setdefault(k // span, []).append((size, c / size))
    return {k: tuple(v) for k, v in out.items()}


def _per_workflow_model(ix: Indexed) -> _PerWorkflowModel:
    n_models = ix.n_models
    key = ix.llm_wf.astype(np.int64) * n_models + ix.llm_model
    if ix.timed:
        g = grouped_intervals_by_owner(key, ix.llm_start, ix.llm_end, ix.llm_wf, ix.n_workflows)
        keys, counts, summed = g.keys, g.counts, g.summed
        with np.errstate(invalid="ignore", divide="ignore"):
            parallelism = np.where(g.union > 0, g.summed / g.union, 1.0)
    else:
        keys, counts = np.unique(key, return_counts=True)
        summed = np.full(len(keys), np.nan)
        parallelism = np.where(counts == 1, 1.0, np.nan)
    wf, model = keys // n_models, keys % n_models
    if ix.timed:
        wf_total = np.bincount(wf, weights=summed, minlength=ix.n_workflows)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(wf_total[wf] > 0, summed / wf_total[wf], np.nan)
    else:
        models_per_wf = np.bincount(wf, minlength=ix.n_workflows)
        share = np.where(models_per_wf[wf] == 1, 1.0, np.nan)
    return _PerWorkflowModel(wf, model, summed, parallelism, share)


def _share_cv(
    ix: Indexed, per: _PerWorkflowModel, per_pair: np.ndarray, n_pairs: int
) -> np.ndarray:
    """CV over the type's workflows with LLM time, absent models counting as share 0."""
    n_models = ix.n_models
    n_types = len(ix.type_names)
    # Timed traces: workflows without LLM time have no share and are left out. Untimed:
    # an undefined share (NaN) makes the type's cv undefined.
    keep = ~np.isnan(per.share) if ix.timed else np.ones(len(per.share), dtype=bool)
    member = np.zeros(ix.n_workflows, dtype=bool)
    member[per.wf[keep]] = True
    counted = np.bincount(ix.wf_type, weights=member, minlength=n_types)
    pair_type = np.arange(n_pairs) // n_models
    population = counted[pair_type]
    share, per_pair = per.share[keep], per_pair[keep]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(per_pair, weights=share, minlength=n_pairs) / population
        present = np.bincount(per_pair, minlength=n_pairs)
        squares: np.ndarray = np.bincount(
            per_pair, weights=(share - mean[per_pair]) ** 2, minlength=n_pairs
        ).astype(np.float64)
        squares = squares + (population - present) * mean**2  # the workflows with share 0
        std = np.sqrt(np.maximum(squares / population, 0.0))
        return np.where(mean > 0, std / mean, np.where(np.isnan(mean), np.nan, 0.0))


def _token_stats(
    frame: pd.DataFrame, llm: np.ndarray, pair: np.ndarray, n_pairs: int
) -> dict[int, tuple[Stats, Stats, Stats | None]]:
    # One radix sort by (type, model) pair; then one column at a time is gathered in that
    # order, so each group is a slice and only one gathered column is alive at once.
    order = np.argsort(pair.astype(np.int16 if n_pairs < 2**15 else np.int64), kind="stable")
    rows = llm[order].astype(np.int32) if len(llm) < 2**31 else llm[order]
    del order
    bounds = np.concatenate([[0], np.cumsum(np.bincount(pair, minlength=n_pairs))])
    columns = ("input_tokens", "output_tokens", "cached_input_tokens")
    per_column: list[list[Stats | None]] = []
    for name in columns:
        values = frame[name].to_numpy()[rows]
        per_column.append([summarise(values[bounds[k] : bounds[k + 1]]) for k in range(n_pairs)])
        del values
    stats: dict[int, tuple[Stats, Stats, Stats | None]] = {}
    for k in range(n_pairs):
        inp, out, cached = (column[k] for column in per_column)
        if inp is None or out is None:
            continue  # the model is not called in this workflow type
        stats[k] = (inp, out, cached)
    return stats
