"""Per workflow type: counts, arrival rate, end-to-end latency and LLM time fraction.

- arrival_rate_per_s: workflows / (last start - first start); None with fewer than two
  workflows or when all start at once.
- peak_rate_per_s: most workflow starts in any sliding 60-second window [t, t + 60), / 60.
- latency_s: workflow wall time (first start to last end over LLM and tool rows).
- llm_time_fraction: sum over workflows of the union of LLM call intervals / sum of wall
  time (an aggregate ratio, like execution_share).
- non_llm_time_s: mean over workflows of wall time minus LLM busy time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.aggregate.indexed import Indexed
from planner.aggregate.intervals import grouped_intervals_by_owner
from planner.aggregate.summary import ratio, summarise
from planner.types.apl import Stats

PEAK_WINDOW_S = 60.0


@dataclass(frozen=True)
class WorkflowFacts:
    workflow_count: int
    arrival_rate_per_s: float | None
    peak_rate_per_s: float | None
    latency_s: Stats | None
    llm_time_fraction: float | None
    non_llm_time_s: float | None


def workflow_facts(ix: Indexed) -> dict[int, WorkflowFacts]:
    llm_busy = np.zeros(ix.n_workflows)
    if ix.timed:
        g = grouped_intervals_by_owner(
            ix.llm_wf, ix.llm_start, ix.llm_end, ix.llm_wf, ix.n_workflows
        )
        llm_busy[g.keys] = g.union
    facts: dict[int, WorkflowFacts] = {}
    for t in range(len(ix.type_names)):
        wfs = np.flatnonzero(ix.wf_type == t)
        starts = np.sort(ix.wf_start[wfs])
        wall = ix.wf_wall[wfs]
        span = float(starts[-1] - starts[0]) if len(starts) else 0.0
        rate = len(starts) / span if len(starts) >= 2 and span > 0 else None
        facts[t] = WorkflowFacts(
            workflow_count=len(wfs),
            arrival_rate_per_s=rate,
            peak_rate_per_s=_peak_rate(starts),
            latency_s=summarise(wall) if ix.timed else None,
            llm_time_fraction=ratio(float(llm_busy[wfs].sum()), float(wall.sum()))
            if ix.timed
            else None,
            non_llm_time_s=float(np.mean(wall - llm_busy[wfs])) if ix.timed else None,
        )
    return facts


def _peak_rate(sorted_starts: np.ndarray) -> float | None:
    if len(sorted_starts) == 0:
        return None
    window_end = np.searchsorted(sorted_starts, sorted_starts + PEAK_WINDOW_S, side="left")
    most = int(np.max(window_end - np.arange(len(sorted_starts))))
    return most / PEAK_WINDOW_S
