"""The workload study: how agentic workflows use their LLMs, per workflow type.

    characterise_workload(calls) -> WorkloadStudy

Graph facts (fan-out, depth, shape classes, the time split of the critical path) live in
`graph`, agent roles and their path patterns in `roles`, distributions and burstiness in
`numbers`; the JSON contract is `planner.io.study_json` (docs/characterise.md). Pure and
vectorised: per-row work is numpy over the whole table, Python loops run over workflow
types, models and roles only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from planner.aggregate.characterise import prefix_reuse
from planner.aggregate.indexed import Indexed, index_calls
from planner.aggregate.models import model_stats
from planner.study.graph import NO_SHAPE, GraphFacts, graph_facts
from planner.study.numbers import burstiness, count_histogram, distribution, log2_histogram
from planner.study.roles import role_patterns, role_stats
from planner.study.types import (
    SHAPES,
    DepthSource,
    Distribution,
    Failures,
    ModelStability,
    PrefixReuse,
    Shape,
    TimeSplit,
    WorkflowStudy,
    WorkloadStudy,
)
from planner.types.calls import CallTable

__all__ = ["characterise_workload"]


def characterise_workload(calls: CallTable) -> WorkloadStudy:
    """Study every workflow type of `calls`.

    Args:
        calls: a validated CallTable (from `planner.io.traces.read_calls`).

    Returns:
        One WorkflowStudy per workflow type (sorted by type), with the sources and notes
        of the table.
    """
    frame = calls.frame
    ix = index_calls(calls)
    role = _llm_roles(ix, frame)
    facts = graph_facts(ix, frame, role)
    models = model_stats(ix, frame)
    llm_type = ix.wf_type[ix.llm_wf]
    reuse = prefix_reuse(ix, frame, llm_type)
    carryover = _context_carryover(ix, frame, role, len(ix.type_names))
    status = np.asarray(frame["status"].array)[ix.llm_rows]
    inputs = frame["input_tokens"].to_numpy()[ix.llm_rows]
    outputs = frame["output_tokens"].to_numpy()[ix.llm_rows]
    tools = np.bincount(ix.wf[np.asarray(frame["kind"].array) == "tool"], minlength=ix.n_workflows)
    llm_per_wf = np.bincount(ix.llm_wf, minlength=ix.n_workflows)
    failed_wf = np.bincount(
        ix.llm_wf, weights=(status == "error") | (status == "retry"), minlength=ix.n_workflows
    )
    workflows = []
    for t, name in enumerate(ix.type_names):
        wfs = np.flatnonzero(ix.wf_type == t)
        rows = llm_type == t
        workflows.append(
            WorkflowStudy(
                workflow_type=name,
                workflow_count=len(wfs),
                llm_calls=int(rows.sum()),
                tool_calls=int(tools[wfs].sum()),
                calls_per_workflow=_required(distribution(llm_per_wf[wfs])),
                calls_per_workflow_histogram=count_histogram(llm_per_wf[wfs]),
                max_concurrency=_per_wf(facts.max_concurrency, wfs),
                max_children=_per_wf(facts.max_children, wfs),
                depth=_per_wf(facts.depth, wfs),
                depth_source=_depth_source(facts, wfs, ix.timed),
                shapes=_shapes(facts.shape[wfs]),
                time_split=_time_split(facts, wfs),
                failures=_failures(status[rows], failed_wf[wfs]),
                prefix_reuse=PrefixReuse(
                    cached_input_fraction=reuse[t]["cached_input_fraction"],
                    repeated_prefix_fraction=reuse[t]["repeated_prefix_fraction"],
                    context_carryover_fraction=carryover[t],
                ),
                input_tokens=_required(distribution(inputs[rows])),
                output_tokens=_required(distribution(outputs[rows])),
                input_tokens_histogram=log2_histogram(inputs[rows]),
                output_tokens_histogram=log2_histogram(outputs[rows]),
                latency_s=distribution(ix.wf_wall[wfs]) if ix.timed else None,
                latency_cv=_cv(ix.wf_wall[wfs]) if ix.timed else None,
                burstiness=burstiness(ix.wf_start[wfs]),
                stability=tuple(
                    ModelStability(
                        m.model, m.calls_per_workflow, m.execution_share, m.execution_share_cv
                    )
                    for m in models[t]
                ),
                roles=role_stats(ix, frame, t),
                patterns=role_patterns(ix, frame, t),
            )
        )
    notes = list(calls.notes)
    if not ix.timed:
        notes.append(
            "the traces have no end times: time split, latency, concurrency and shapes "
            "beyond single calls and parent-id trees are unknown"
        )
    return WorkloadStudy(tuple(workflows), len(frame), calls.sources, tuple(notes))


def _required(d: Distribution | None) -> Distribution:
    # Every workflow type has at least one workflow and one LLM call (ingest checks).
    if d is None:
        raise ValueError("empty sample for a workflow type")
    return d


def _per_wf(values: np.ndarray | None, wfs: np.ndarray) -> Distribution | None:
    return distribution(values[wfs]) if values is not None else None


def _depth_source(facts: GraphFacts, wfs: np.ndarray, timed: bool) -> DepthSource | None:
    linked = int(facts.linked[wfs].sum())
    if linked == len(wfs):
        return "parent_ids"
    if not timed:
        return None
    return "timing" if linked == 0 else "mixed"


def _shapes(shape: np.ndarray) -> tuple[tuple[Shape, int], ...]:
    counts = np.bincount(shape[shape != NO_SHAPE], minlength=len(SHAPES))
    return tuple((SHAPES[i], int(c)) for i, c in enumerate(counts) if c)


def _cv(values: np.ndarray) -> float | None:
    mean = float(np.mean(values))
    return float(np.std(values) / mean) if mean > 0 else None


def _time_split(facts: GraphFacts, wfs: np.ndarray) -> TimeSplit | None:
    if facts.llm_s is None or facts.tool_s is None or facts.orchestration_s is None:
        return None
    llm, tool, orch = facts.llm_s[wfs], facts.tool_s[wfs], facts.orchestration_s[wfs]
    wall = float(llm.sum() + tool.sum() + orch.sum())

    def share(x: np.ndarray) -> float:
        return float(x.sum() / wall) if wall > 0 else 0.0

    return TimeSplit(
        llm_s=float(llm.mean()),
        tool_s=float(tool.mean()),
        orchestration_s=float(orch.mean()),
        llm_fraction=share(llm),
        tool_fraction=share(tool),
        orchestration_fraction=share(orch),
    )


def _failures(status: np.ndarray, failed_per_wf: np.ndarray) -> Failures:
    errors = int(np.sum(status == "error"))
    retries = int(np.sum(status == "retry"))
    n = max(len(status), 1)
    return Failures(
        error_calls=errors,
        retry_calls=retries,
        error_call_fraction=errors / n,
        retry_call_fraction=retries / n,
        workflows_with_failures_fraction=float(np.mean(failed_per_wf > 0)),
    )


def _llm_roles(ix: Indexed, frame: pd.DataFrame) -> np.ndarray:
    """Role code per LLM call: its agent where named, else its model (offset past agents)."""
    agents = frame["agent"].array
    codes = np.asarray(agents.codes, dtype=np.int64)[ix.llm_rows]
    return np.where(codes >= 0, codes, len(agents.categories) + ix.llm_model)


def _context_carryover(
    ix: Indexed, frame: pd.DataFrame, role: np.ndarray, n_types: int
) -> list[float]:
    """Per type: sum over calls of min(input, previous call's input + output), previous
    call = the one before in start order of the same workflow and role; / all input."""
    inputs = frame["input_tokens"].to_numpy()[ix.llm_rows].astype(np.float64)
    outputs = frame["output_tokens"].to_numpy()[ix.llm_rows].astype(np.float64)
    order = np.lexsort((ix.llm_start, role, ix.llm_wf))
    wf, r = ix.llm_wf[order], role[order]
    same = np.zeros(len(order), dtype=bool)
    same[1:] = (wf[1:] == wf[:-1]) & (r[1:] == r[:-1])
    context = np.zeros(len(order))
    context[1:] = (inputs[order] + outputs[order])[:-1]
    reusable = np.where(same, np.minimum(inputs[order], context), 0.0)
    types = ix.wf_type[wf]
    num = np.bincount(types, weights=reusable, minlength=n_types)
    den = np.bincount(types, weights=inputs[order], minlength=n_types)
    return [float(num[t] / den[t]) if den[t] > 0 else 0.0 for t in range(n_types)]
