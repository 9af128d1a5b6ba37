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
from planner.aggregate.intervals import max_concurrency
from planner.aggregate.summary import ratio, summarise

# Pointer jumping stops after this many levels: deeper chains are reported as at least it.
MAX_DEPTH = 10_000


def characterise(ix: Indexed, frame: pd.DataFrame) -> dict[int, dict[str, Any]]:
    """Characterisation dict per workflow type index."""
    llm = ix.is_llm
    calls_per_wf = np.bincount(ix.wf[llm], minlength=ix.n_workflows)
    fanout = (
        max_concurrency(ix.wf[llm], ix.rel_start[llm], ix.rel_end[llm], ix.n_workflows)
        if ix.timed
        else None
    )
    depth = _depth_per_workflow(ix, frame)
    duration = ix.rel_end - ix.rel_start
    tool_time = np.bincount(ix.wf[ix.is_tool], weights=duration[ix.is_tool], minlength=ix.n_workflows)
    tool_calls = np.bincount(ix.wf[ix.is_tool], minlength=ix.n_workflows)
    row_type = ix.wf_type[ix.wf]
    status = frame["status"].array
    cached = frame["cached_input_tokens"].to_numpy()
    inputs = frame["input_tokens"].to_numpy()
    prefix = frame["prefix_hash"].array
    agents = frame["agent"].array

    result: dict[int, dict[str, Any]] = {}
    for t in range(len(ix.type_names)):
        wfs = np.flatnonzero(ix.wf_type == t)
        rows = llm & (row_type == t)
        counts = calls_per_wf[wfs].astype("float64")
        wall = float(np.sum(ix.wf_wall[wfs]))
        entry: dict[str, Any] = {
            "calls_per_workflow": _distribution(counts),
            "max_fanout": _fanout(fanout[wfs]) if fanout is not None else None,
            "call_graph_depth": _fanout(depth[wfs][depth[wfs] > 0]) if depth is not None else None,
            "tool_calls_per_workflow": float(np.mean(tool_calls[wfs])),
            "tool_time_share": ratio(float(np.sum(tool_time[wfs])), wall) if ix.timed else None,
            "error_calls": int(np.sum(np.asarray(status[rows] == "error"))),
            "retry_calls": int(np.sum(np.asarray(status[rows] == "retry"))),
            "prefix_reuse": _prefix_reuse(cached[rows], inputs[rows], prefix[rows]),
            "calls_by_agent": _agents(agents[rows]),
        }
        result[t] = entry
    return result


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


def _fanout(values: np.ndarray) -> dict[str, float] | None:
    if len(values) == 0:
        return None
    return {"max": int(values.max()), "mean": float(values.mean())}


def _prefix_reuse(cached: np.ndarray, inputs: np.ndarray, prefix: pd.Categorical) -> dict[str, Any]:
    """Share of input tokens served from prefix cache; share of calls repeating a prefix."""
    reported = ~np.isnan(cached)
    codes = np.asarray(prefix.codes)
    hashed = codes[codes >= 0]
    return {
        "cached_input_fraction": ratio(float(cached[reported].sum()), float(inputs[reported].sum()))
        if reported.any()
        else None,
        "repeated_prefix_fraction": float(1.0 - len(np.unique(hashed)) / len(hashed))
        if len(hashed)
        else None,
    }


def _agents(agents: pd.Categorical) -> dict[str, int]:
    codes = np.asarray(agents.codes)
    counts = np.bincount(codes[codes >= 0], minlength=len(agents.categories))
    return {
        str(name): int(n) for name, n in sorted(zip(agents.categories, counts, strict=True)) if n
    }


def _depth_per_workflow(ix: Indexed, frame: pd.DataFrame) -> np.ndarray | None:
    """Longest parent chain (in calls) per workflow; 0 where no call has a call id."""
    parents = frame["parent_call_id"].array
    if not np.any(np.asarray(parents.codes) >= 0):
        return None
    call = frame["call_id"].array
    call_codes = np.asarray(call.codes, dtype=np.int64)
    # Parent names -> codes in call_id's categories (-1 when the parent is not a call here).
    lookup = pd.Index(call.categories).get_indexer(parents.categories)
    parent_codes = np.where(np.asarray(parents.codes) >= 0, np.append(lookup, -1)[parents.codes], -1)
    width = len(call.categories) + 1
    key = ix.wf * width + call_codes
    has_id = call_codes >= 0
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    target = ix.wf * width + parent_codes
    found = np.searchsorted(sorted_key, target)
    found = np.minimum(found, len(order) - 1)
    ok = (parent_codes >= 0) & (sorted_key[found] == target) & has_id[order][found]
    parent_row = np.where(ok, order[found], -1)
    depth = np.ones(len(key), dtype=np.int64)
    cursor = parent_row.copy()
    for _ in range(MAX_DEPTH):
        active = cursor >= 0
        if not active.any():
            break
        depth[active] += 1
        cursor[active] = parent_row[cursor[active]]
    best = np.zeros(ix.n_workflows, dtype=np.int64)
    np.maximum.at(best, ix.wf[has_id], depth[has_id])
    return best
