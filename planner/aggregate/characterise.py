"""The workload study per workflow type: how agentic workflows actually use their LLMs.

Values are JSON-ready (numbers, None, dicts) and documented in docs/ingest.md:
calls per workflow, maximum fan-out (LLM calls in flight at once), call-graph depth where
parent ids exist, tool time share, prefix reuse, errors and retries, calls per agent.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from planner.aggregate.indexed import Indexed
from planner.aggregate.intervals import max_concurrency_by_owner
from planner.aggregate.summary import ratio, summarise

# Pointer jumping stops after this many levels: deeper chains are reported as at least it.
MAX_DEPTH = 10_000


def characterise(ix: Indexed, frame: pd.DataFrame) -> dict[int, dict[str, Any]]:
    """Characterisation dict per workflow type index."""
    calls_per_wf = np.bincount(ix.llm_wf, minlength=ix.n_workflows)
    fanout = (
        max_concurrency_by_owner(ix.llm_wf, ix.llm_start, ix.llm_end, ix.n_workflows)
        if ix.timed
        else None
    )
    depth = _depth_per_workflow(ix, frame)
    n_types = len(ix.type_names)
    tool_time = np.bincount(ix.tool_wf, weights=ix.tool_duration_s, minlength=ix.n_workflows)
    tool_calls = np.bincount(ix.tool_wf, minlength=ix.n_workflows)
    llm_type = ix.wf_type[ix.llm_wf]
    errors = _count_by_type(llm_type, frame["status"].array[ix.llm_rows] == "error", n_types)
    retries = _count_by_type(llm_type, frame["status"].array[ix.llm_rows] == "retry", n_types)
    reuse = prefix_reuse(ix, frame, llm_type)
    agents = _agents(frame["agent"].array, ix.llm_rows, llm_type, n_types)

    result: dict[int, dict[str, Any]] = {}
    for t in range(n_types):
        wfs = np.flatnonzero(ix.wf_type == t)
        counts = calls_per_wf[wfs].astype("float64")
        wall = float(np.sum(ix.wf_wall[wfs]))
        result[t] = {
            "calls_per_workflow": _distribution(counts),
            "calls_per_workflow_histogram": _histogram(calls_per_wf[wfs]),
            "max_fanout": _fanout(fanout[wfs]) if fanout is not None else None,
            "call_graph_depth": _fanout(depth[wfs][depth[wfs] > 0]) if depth is not None else None,
            "tool_calls_per_workflow": float(np.mean(tool_calls[wfs])),
            "tool_time_share": ratio(float(np.sum(tool_time[wfs])), wall) if ix.timed else None,
            "error_calls": int(errors[t]),
            "retry_calls": int(retries[t]),
            "prefix_reuse": reuse[t],
            "calls_by_agent": agents[t],
        }
    return result


def _count_by_type(row_type: np.ndarray, flags: Any, n_types: int) -> np.ndarray:
    return np.bincount(row_type, weights=np.asarray(flags, dtype=bool), minlength=n_types)


def _distribution(values: np.ndarray) -> dict[str, float]:
    stats = summarise(values)
    if stats is None:
        return {}
    return {
        "mean": stats.mean,
        "p50": stats.p50,
        "p95": stats.p95,
        "min": float(values.min()),
        "max": float(values.max()),
    }


# Up to this many distinct values the histogram is exact; beyond, equal-width bins.
HISTOGRAM_BINS = 20


def _histogram(values: np.ndarray) -> dict[str, int]:
    """Workflows per LLM-call count: {"3": 10, ...}, or {"10-19": 4, ...} when spread."""
    if len(values) == 0:
        return {}
    distinct, counts = np.unique(values, return_counts=True)
    if len(distinct) <= HISTOGRAM_BINS:
        return {str(int(v)): int(c) for v, c in zip(distinct, counts, strict=True)}
    low, high = int(values.min()), int(values.max())
    width = -(-(high - low + 1) // HISTOGRAM_BINS)  # ceiling division: whole-call bins
    bins = (values - low) // width
    result = {}
    for b, c in zip(*np.unique(bins, return_counts=True), strict=True):
        start = low + int(b) * width
        result[f"{start}-{start + width - 1}"] = int(c)
    return result


def _fanout(values: np.ndarray) -> dict[str, float] | None:
    if len(values) == 0:
        return None
    return {"max": int(values.max()), "mean": float(values.mean())}


def prefix_reuse(ix: Indexed, frame: pd.DataFrame, llm_type: np.ndarray) -> list[dict[str, Any]]:
    """Per type: share of input tokens served from prefix cache (where reported) and share
    of calls whose prefix key was already seen (where prefix keys exist)."""
    n_types = len(ix.type_names)
    cached = frame["cached_input_tokens"].to_numpy()[ix.llm_rows]
    reported = ~np.isnan(cached)
    cached_sum = np.bincount(llm_type[reported], weights=cached[reported], minlength=n_types)
    inputs = frame["input_tokens"].to_numpy()[ix.llm_rows]
    input_sum = np.bincount(llm_type[reported], weights=inputs[reported], minlength=n_types)
    has_cached = np.bincount(llm_type[reported], minlength=n_types) > 0
    codes = np.asarray(frame["prefix_hash"].array.codes)[ix.llm_rows]
    hashed = codes >= 0
    repeated: list[float | None] = [None] * n_types
    if hashed.any():
        width = int(codes.max()) + 1
        keys = llm_type[hashed].astype(np.int64) * width + codes[hashed]
        distinct = np.bincount(np.unique(keys) // width, minlength=n_types)
        total = np.bincount(llm_type[hashed], minlength=n_types)
        repeated = [float(1 - distinct[t] / total[t]) if total[t] else None for t in range(n_types)]
    return [
        {
            "cached_input_fraction": ratio(float(cached_sum[t]), float(input_sum[t]))
            if has_cached[t]
            else None,
            "repeated_prefix_fraction": repeated[t],
        }
        for t in range(n_types)
    ]


def _agents(
    agents: pd.Categorical, llm_rows: np.ndarray, llm_type: np.ndarray, n_types: int
) -> list[dict[str, int]]:
    codes = np.asarray(agents.codes)[llm_rows]
    named = codes >= 0
    if not named.any():
        return [{} for _ in range(n_types)]
    width = len(agents.categories)
    counts = np.bincount(
        llm_type[named].astype(np.int64) * width + codes[named], minlength=n_types * width
    ).reshape(n_types, width)
    names = [str(c) for c in agents.categories]
    return [
        {name: int(n) for name, n in sorted(zip(names, counts[t], strict=True)) if n}
        for t in range(n_types)
    ]


def parent_rows(ix: Indexed, frame: pd.DataFrame) -> np.ndarray | None:
    """Row number of each row's parent call in the same workflow (-1 for roots and
    parents not in the trace); None when no row names a parent."""
    parents = frame["parent_call_id"].array
    if not np.any(np.asarray(parents.codes) >= 0):
        return None
    call = frame["call_id"].array
    call_codes = np.asarray(call.codes, dtype=np.int64)
    # Parent names -> codes in call_id's categories (-1 when the parent is not a call here).
    lookup = pd.Index(call.categories).get_indexer(parents.categories)
    parent_codes = np.where(
        np.asarray(parents.codes) >= 0, np.append(lookup, -1)[parents.codes], -1
    )
    width = len(call.categories) + 1
    key = ix.wf.astype(np.int64) * width + call_codes
    has_id = call_codes >= 0
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    target = ix.wf.astype(np.int64) * width + parent_codes
    found = np.searchsorted(sorted_key, target)
    found = np.minimum(found, len(order) - 1)
    ok = (parent_codes >= 0) & (sorted_key[found] == target) & has_id[order][found]
    return np.where(ok, order[found], -1)


def row_depths(parent_row: np.ndarray) -> np.ndarray:
    """Calls on the parent chain of each row, itself included (pointer jumping)."""
    depth = np.ones(len(parent_row), dtype=np.int64)
    cursor = parent_row.copy()
    for _ in range(MAX_DEPTH):
        active = cursor >= 0
        if not active.any():
            break
        depth[active] += 1
        cursor[active] = parent_row[cursor[active]]
    return depth


def _depth_per_workflow(ix: Indexed, frame: pd.DataFrame) -> np.ndarray | None:
    """Longest parent chain (in calls) per workflow; 0 where no call has a call id."""
    parent_row = parent_rows(ix, frame)
    if parent_row is None:
        return None
    depth = row_depths(parent_row)
    has_id = np.asarray(frame["call_id"].array.codes) >= 0
    best = np.zeros(ix.n_workflows)  # float: ufunc.at is fast for floats only
    np.maximum.at(best, ix.wf[has_id], depth[has_id].astype(np.float64))
    return best.astype(np.int64)
