"""Workflow templates: each traced workflow compiled to a small dependency graph.

The simulator replays workflows with their real structure. A call's predecessors are
its `parent_call_id` when the trace gives one that ended before the call started (plus,
when the call started more than WAIT_TOLERANCE_S after that parent ended, every call that
ended in between: traces name one parent even when a call waited at a barrier for
several, and lineage parents can end long before the call is dispatched); otherwise
they are inferred from timestamps inside the workflow: the call depends on the
*frontier* of calls that ended before it started, i.e. those calls that ended after the
latest start among all calls already finished. A chain a -> b -> c gives c the single
predecessor b; k parallel calls started after a each depend on a (fan-out stays
parallel); a call started after k parallel calls ended depends on all k (fan-in). The
observed gap between the last predecessor's end and the call's start is kept as
think/tool time; root calls keep their offset from the workflow's first start.

Tool rows (`kind == "tool"`) are nodes too, with their observed duration. LLM calls get
their duration from the simulated servers instead, from their token counts.

Everything is flattened into numpy/list arrays (CSR for the successor lists) so the
event loop touches no pandas.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

import numpy as np
import pandas as pd

from planner.errors import InputError
from planner.types.calls import KIND_TOOL, CallTable
from planner.types.names import ModelName, WorkflowType

TOOL = -1  # model index of tool rows
NO_PARENT = -1  # the trace names no parent for this call (a root when others have one)
UNKNOWN_PARENT = -2  # the trace names a parent that is not a call of the workflow
# A call starting more than this after its parent ended waited for something else too
# (a barrier): agent frameworks dispatch a ready call within tens of milliseconds.
WAIT_TOLERANCE_S = 0.1


@dataclass(frozen=True)
class Workload:
    """All workflows of a CallTable as dependency graphs over flat arrays.

    Node `i` of workflow `w` is `first_node[w] + local` with `0 <= local < calls[w]`;
    successor lists and dependency counts use local indices.

    Attributes:
        models: model names; `node_model` indexes into it (TOOL for tool rows).
        workflow_types: type names; `workflow_type` indexes into it.
        first_node / node_count: per workflow, its slice of the node arrays.
        workflow_start_s: per workflow, its first call's start in the trace.
        workflow_type: per workflow, the index of its type.
        node_model: per node, model index or TOOL.
        node_delay_s: per node, the wait after its last predecessor ends (roots: after
            the workflow starts).
        node_tool_s: per node, the duration of a tool row (0 for LLM calls).
        node_input_tokens / node_output_tokens: per node, token counts.
        node_deps: per node, the number of predecessors.
        node_row: per node, its row in the CallTable frame it was compiled from (so
            callers can read columns the graph does not carry, e.g. prefix keys).
        succ_start / succ: CSR successor lists (global node index -> local indices).
        mean_input_tokens / mean_output_tokens: per model, the token shape curves are
            evaluated at.
    """

    models: tuple[ModelName, ...]
    workflow_types: tuple[WorkflowType, ...]
    first_node: np.ndarray
    node_count: np.ndarray
    workflow_start_s: np.ndarray
    workflow_type: np.ndarray
    node_model: np.ndarray
    node_delay_s: np.ndarray
    node_tool_s: np.ndarray
    node_input_tokens: np.ndarray
    node_output_tokens: np.ndarray
    node_deps: np.ndarray
    node_row: np.ndarray
    succ_start: np.ndarray
    succ: np.ndarray
    mean_input_tokens: np.ndarray
    mean_output_tokens: np.ndarray

    @property
    def workflows(self) -> int:
        return len(self.first_node)

    @property
    def nodes(self) -> int:
        return len(self.node_model)

    def llm_calls_per_workflow(self) -> np.ndarray:
        """Per model, mean LLM calls per workflow (the APL's n_m, from the graphs)."""
        llm = self.node_model[self.node_model >= 0]
        counts = np.bincount(llm, minlength=len(self.models))
        return counts / max(self.workflows, 1)


def compile_workload(calls: CallTable) -> Workload:
    """Compile every workflow of `calls` into a dependency graph.

    Raises:
        InputError: the table has no LLM call.
    """
    frame = calls.frame
    if len(frame) == 0:
        raise InputError("the traces contain no calls; nothing to simulate")
    is_tool = (frame["kind"] == KIND_TOOL).fillna(False).to_numpy(dtype=bool)
    if is_tool.all():
        raise InputError("the traces contain only tool rows; nothing to simulate")

    model_cat = frame["model"].astype("category")
    models = tuple(str(m) for m in model_cat.cat.categories)
    model_codes = model_cat.cat.codes.to_numpy(dtype=np.int64)
    model_codes = np.where(is_tool | (model_codes < 0), TOOL, model_codes)

    wf_cat = frame["workflow_id"].astype("category")
    wf_codes = wf_cat.cat.codes.to_numpy(dtype=np.int64)
    start = frame["start_s"].to_numpy(dtype=np.float64)
    end = frame["end_s"].to_numpy(dtype=np.float64)
    # Stable order: workflow, then start, then row order; the replay is deterministic.
    order = np.lexsort((np.arange(len(frame)), start, wf_codes))
    wf_sorted = wf_codes[order]
    start = start[order]
    end = end[order]
    is_tool = is_tool[order]
    model_codes = model_codes[order]
    in_tok = frame["input_tokens"].to_numpy(dtype=np.float64)[order]
    out_tok = frame["output_tokens"].to_numpy(dtype=np.float64)[order]

    bounds = np.flatnonzero(np.diff(wf_sorted)) + 1
    first = np.concatenate(([0], bounds)).astype(np.int64)
    count = np.diff(np.concatenate((first, [len(order)]))).astype(np.int64)

    type_cat = frame["workflow_type"].astype("category")
    types = tuple(str(t) for t in type_cat.cat.categories)
    wf_type = type_cat.cat.codes.to_numpy(dtype=np.int64)[order][first]

    tool_s = np.where(is_tool, np.nan_to_num(end - start, nan=0.0), 0.0).clip(min=0.0)
    parents = _parent_positions(frame, order, first, count)

    delay, deps, succ_start, succ = _infer_dependencies(start, end, first, count, parents)

    llm = model_codes >= 0
    n_llm = np.maximum(np.bincount(model_codes[llm], minlength=len(models)), 1)
    sum_in = np.bincount(model_codes[llm], weights=in_tok[llm], minlength=len(models))
    sum_out = np.bincount(model_codes[llm], weights=out_tok[llm], minlength=len(models))
    mean_in = np.asarray(sum_in / n_llm, dtype=np.float64)
    mean_out = np.asarray(sum_out / n_llm, dtype=np.float64)

    return Workload(
        models=models,
        workflow_types=types,
        first_node=first,
        node_count=count,
        workflow_start_s=start[first],
        workflow_type=wf_type,
        node_model=model_codes,
        node_delay_s=delay,
        node_tool_s=tool_s,
        node_input_tokens=in_tok,
        node_output_tokens=out_tok,
        node_deps=deps,
        node_row=order.astype(np.int64),
        succ_start=succ_start,
        succ=succ,
        mean_input_tokens=mean_in,
        mean_output_tokens=mean_out,
    )


def _parent_positions(
    frame: pd.DataFrame, order: np.ndarray, first: np.ndarray, count: np.ndarray
) -> np.ndarray:
    """Per sorted node: local index of its parent call, NO_PARENT, or UNKNOWN_PARENT."""
    out = np.full(len(order), NO_PARENT, dtype=np.int64)
    parent = frame["parent_call_id"]
    if parent.isna().all():
        return out
    wf = frame["workflow_id"].astype(str).to_numpy()[order]
    call = frame["call_id"].astype(object).to_numpy()[order]
    par = parent.astype(object).to_numpy()[order]
    local = np.arange(len(order)) - np.repeat(first, count)
    index = {(wf[i], call[i]): int(local[i]) for i in range(len(order)) if not pd.isna(call[i])}
    for i in np.flatnonzero(~pd.isna(par)):
        out[i] = index.get((wf[i], par[i]), UNKNOWN_PARENT)
    return out


def _infer_dependencies(
    start: np.ndarray,
    end: np.ndarray,
    first: np.ndarray,
    count: np.ndarray,
    parents: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Predecessor counts, delays and CSR successor lists of every node."""
    n = len(start)
    delay = np.zeros(n)
    deps = np.zeros(n, dtype=np.int64)
    succ_lists: list[list[int]] = [[] for _ in range(n)]
    starts = start.tolist()
    ends = end.tolist()
    par = parents.tolist()
    for w0, k in zip(first.tolist(), count.tolist(), strict=True):
        wf_start = starts[w0]
        # Workflows that name parents use them; a call without one is then a root.
        has_parents = any(p != NO_PARENT for p in par[w0 : w0 + k])
        # Calls of this workflow ordered by end (NaN ends never precede anything).
        idx = [i for i in range(k) if ends[w0 + i] == ends[w0 + i]]
        idx.sort(key=lambda i: (ends[w0 + i], i))
        end_vals = [ends[w0 + i] for i in idx]
        prefix_max_start: list[float] = []
        running = -np.inf
        for i in idx:
            running = max(running, starts[w0 + i])
            prefix_max_start.append(running)
        for j in range(k):
            g = w0 + j
            s = starts[g]
            p = par[g]
            if 0 <= p < j and ends[w0 + p] <= s:
                preds = [p]
                if s - ends[w0 + p] > WAIT_TOLERANCE_S:
                    # Started well after its parent: it also waited for what ended since.
                    lo = bisect_right(end_vals, ends[w0 + p])
                    hi = bisect_right(end_vals, s)
                    preds += [i for i in idx[lo:hi] if i < j and i != p]
            elif has_parents and p == NO_PARENT:
                preds = []
            else:
                done = bisect_right(end_vals, s)
                if done == 0:
                    preds = []
                else:
                    latest_start = prefix_max_start[done - 1]
                    lo = bisect_right(end_vals, latest_start)
                    # Predecessors must precede in start order: no cycles via 0-length rows.
                    preds = [i for i in idx[lo:done] if i < j]
                    if not preds:  # only zero-length rows ended: take the latest
                        preds = [i for i in idx[:done] if i < j][-1:]
            if preds:
                last_end = max(ends[w0 + i] for i in preds)
                delay[g] = max(s - last_end, 0.0)
                deps[g] = len(preds)
                for i in preds:
                    succ_lists[w0 + i].append(j)
            else:
                delay[g] = max(s - wf_start, 0.0)
    lengths = np.fromiter((len(s) for s in succ_lists), dtype=np.int64, count=n)
    succ_start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=succ_start[1:])
    flat = [x for s in succ_lists for x in s]
    succ = np.asarray(flat, dtype=np.int64) if flat else np.zeros(0, dtype=np.int64)
    return delay, deps, succ_start, succ
