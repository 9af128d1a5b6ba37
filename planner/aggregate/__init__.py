"""Aggregate: CallTable -> AggregatePipeline (pure, vectorised over numpy arrays).

The statistics and their precise definitions live in the submodules: `models` (n_m, p_m,
execution share and its cv), `workflows` (rates, latency, LLM time fraction),
`characterise` (the workload study); `intervals` holds the grouped interval arithmetic.
"""

from __future__ import annotations

from dataclasses import replace

from planner.aggregate.characterise import characterise
from planner.aggregate.indexed import index_calls
from planner.aggregate.models import model_stats
from planner.aggregate.reuse import prefix_references, reuse_by_type
from planner.aggregate.workflows import workflow_facts
from planner.types.apl import AggregatePipeline, WorkflowStats
from planner.types.calls import CallTable


def aggregate_pipeline(calls: CallTable) -> AggregatePipeline:
    """Summarise each workflow type of `calls` as an Aggregate LLM Pipeline.

    Args:
        calls: a validated CallTable (from `planner.io.traces.read_calls`).

    Returns:
        One WorkflowStats per workflow type, sorted by type, models sorted by name; notes
        say when latency statistics are unavailable and how many rows were skipped.
    """
    ix = index_calls(calls)
    models = model_stats(ix, calls.frame)
    facts = workflow_facts(ix)
    study = characterise(ix, calls.frame)
    reuse = reuse_by_type(calls, prefix_references(calls))
    workflows = tuple(
        WorkflowStats(
            workflow_type=name,
            workflow_count=facts[t].workflow_count,
            arrival_rate_per_s=facts[t].arrival_rate_per_s,
            peak_rate_per_s=facts[t].peak_rate_per_s,
            latency_s=facts[t].latency_s,
            llm_time_fraction=facts[t].llm_time_fraction,
            non_llm_time_s=facts[t].non_llm_time_s,
            models=tuple(
                replace(
                    m,
                    prefix_reuse_potential=reuse[(name, m.model)][0],
                    prefix_reuse_source=reuse[(name, m.model)][1],
                )
                if (name, m.model) in reuse
                else m
                for m in models[t]
            ),
            characterisation=study[t],
        )
        for t, name in enumerate(ix.type_names)
    )
    notes = list(calls.notes)
    if calls.skipped_rows:
        total = sum(calls.skipped_rows.values())
        detail = ", ".join(f"{n} {reason}" for reason, n in calls.skipped_rows.items())
        notes.append(f"skipped {total} bad rows ({detail})")
    return AggregatePipeline(workflows=workflows, sources=calls.sources, notes=tuple(notes))
