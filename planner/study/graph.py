"""Per-workflow call-graph facts: depth, explicit fan-out, shape class, time split.

All functions work on every workflow at once (one sort, bincounts, a few vectorised
passes); none loops over workflows or rows in Python.

Shape classes, tested in this order (the first that holds names the workflow):
- single: one LLM call.
- tree: parent ids show two or more calls at the same depth that each have two or more
  children: branches that branch again (beam and tree search). A single call fanning
  out, however often in sequence, is not a tree.
- fan-out/fan-in: two or more LLM calls run at once, and the last LLM call starts alone
  after at least two LLM calls ended (a map followed by a reduce).
- fan-out: two or more LLM calls run at once otherwise.
- loop: LLM calls never overlap and a role (agent, else model) comes back after another
  role ran (plan -> code -> review -> code).
- chain: LLM calls never overlap and no role comes back.
Without end times only `single` and `tree` can be told; other workflows get no class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from planner.aggregate.characterise import parent_rows, row_depths
from planner.aggregate.indexed import Indexed
from planner.aggregate.intervals import grouped_intervals_by_owner, max_concurrency_by_owner
from planner.study.types import SHAPES

NO_SHAPE = -1


@dataclass(frozen=True)
class GraphFacts:
    """Per workflow (index = workflow id of `Indexed`).

    Attributes:
        max_concurrency: most LLM calls in flight at once (None untimed).
        max_children: most children of one call, or roots of the workflow (None without
            parent ids; NaN in workflows where no call names a parent).
        depth: longest dependency chain (calls): from parent ids in workflows where a
            call names a parent (`linked`), else from timing (NaN untimed).
        shape: index into SHAPES, NO_SHAPE when the trace cannot tell.
        llm_s, tool_s, orchestration_s: time split of the wall time (None untimed).
    """

    max_concurrency: np.ndarray | None
    max_children: np.ndarray | None
    depth: np.ndarray
    linked: np.ndarray
    shape: np.ndarray
    llm_s: np.ndarray | None
    tool_s: np.ndarray | None
    orchestration_s: np.ndarray | None


def graph_facts(ix: Indexed, frame: pd.DataFrame, llm_role: np.ndarray) -> GraphFacts:
    """Graph facts of every workflow.

    Args:
        llm_role: role code per LLM call (agent where named, else model), for loops.
    """
    n = ix.n_workflows
    wf_start = ix.wf_start[ix.wf]
    start = frame["start_s"].to_numpy(dtype=np.float64) - wf_start
    end = frame["end_s"].to_numpy(dtype=np.float64) - wf_start
    counted = ix.is_llm | (np.asarray(frame["kind"].array) == "tool")

    concurrency = (
        max_concurrency_by_owner(ix.llm_wf, ix.llm_start, ix.llm_end, n) if ix.timed else None
    )
    parent = parent_rows(ix, frame)
    children = branching = None
    linked = np.zeros(n, dtype=bool)
    depth = np.full(n, np.nan)
    if parent is not None:
        children, branching, by_parent = _parent_graph(ix, parent, counted)
        linked[ix.wf[parent >= 0]] = True
        depth = np.where(linked, by_parent, depth)
        children = np.where(linked, children, np.nan)
    if ix.timed and not linked.all():
        # Timing gives the depth of the workflows without parent links.
        rows = np.flatnonzero(counted & ~linked[ix.wf])
        timing = sequential_depth(ix.wf[rows], start[rows], end[rows], n)
        depth = np.where(linked, depth, timing)

    llm_calls = np.bincount(ix.llm_wf, minlength=n)
    shape = np.full(n, NO_SHAPE, dtype=np.int64)
    if concurrency is not None:
        fan_in = _fan_in(ix)
        loop = _role_revisits(ix, llm_role)
        sequential = concurrency <= 1
        shape = np.select(
            [fan_in & ~sequential, ~sequential, sequential & loop, sequential],
            [SHAPES.index("fan-out/fan-in"), SHAPES.index("fan-out"), SHAPES.index("loop"),
             SHAPES.index("chain")],
            NO_SHAPE,
        )  # fmt: skip
    if branching is not None:
        shape = np.where(branching >= 2, SHAPES.index("tree"), shape)
    shape = np.where(llm_calls == 1, SHAPES.index("single"), shape)
    shape = np.where(llm_calls == 0, NO_SHAPE, shape)

    llm_s = tool_s = orch_s = None
    if ix.timed:
        llm_s, tool_s, orch_s = _time_split(ix, start, end, counted)
    return GraphFacts(concurrency, children, depth, linked, shape, llm_s, tool_s, orch_s)


def _parent_graph(
    ix: Indexed, parent: np.ndarray, counted: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per workflow: most children of one node (the workflow start counts as the parent
    of root calls), most nodes that branch at one depth, longest chain."""
    n = ix.n_workflows
    rows = np.flatnonzero(counted)
    has_parent = parent[rows] >= 0
    depth = row_depths(parent)
    # Children per parent row; roots are children of their workflow's start.
    per_parent = np.bincount(parent[rows[has_parent]], minlength=len(parent))
    roots = np.bincount(ix.wf[rows[~has_parent]], minlength=n)
    most = np.zeros(n)
    np.maximum.at(most, ix.wf, per_parent.astype(np.float64))
    max_children = np.maximum(most.astype(np.int64), roots)
    # Nodes with >= 2 children per (workflow, depth); the most at one depth per workflow.
    branch_rows = np.flatnonzero(per_parent >= 2)
    width = int(depth.max()) + 1 if len(depth) else 1
    keys, counts = np.unique(
        ix.wf[branch_rows].astype(np.int64) * width + depth[branch_rows], return_counts=True
    )
    levels = np.zeros(n)
    np.maximum.at(levels, keys // width, counts.astype(np.float64))
    longest = np.zeros(n)
    np.maximum.at(longest, ix.wf[rows], depth[rows].astype(np.float64))
    return max_children, levels.astype(np.int64), longest.astype(np.int64)


def sequential_depth(wf: np.ndarray, start: np.ndarray, end: np.ndarray, n: int) -> np.ndarray:
    """Most intervals per group that follow one another without overlapping (an
    interval may start when the previous one ends).

    The greedy of interval scheduling (take the interval that ends first among those not
    yet taken that start at or after the last end) is optimal; it runs for all groups at
    once, one step per chain link, with a vectorised binary search inside each group.
    """
    depth = np.zeros(n, dtype=np.int64)
    if len(wf) == 0:
        return depth
    order = np.lexsort((end, start, wf))
    g, s, e = wf[order], start[order], end[order]
    # Per position: the position of the earliest end at or after it in its group (the
    # first one on ties), from suffix minima of the ends and of their record positions.
    reverse = pd.Series(e[::-1])
    suffix_min = reverse.groupby(g[::-1]).cummin().to_numpy()[::-1]
    record = np.where(e == suffix_min, np.arange(len(e)), len(e))
    earliest = pd.Series(record[::-1]).groupby(g[::-1]).cummin().to_numpy()[::-1]
    bounds = np.searchsorted(g, np.arange(n + 1))
    groups = np.flatnonzero(bounds[1:] > bounds[:-1])
    first, stop = bounds[groups], bounds[groups + 1]
    last_end = np.full(len(groups), -np.inf)
    taken = first - 1  # position of the last interval taken
    active = np.arange(len(groups))
    while len(active):
        # First position after the last one taken whose start is >= the last end.
        lo, hi = taken[active] + 1, stop[active].copy()
        target = last_end[active]
        while True:
            open_ = lo < hi
            if not open_.any():
                break
            mid = (lo + hi) // 2
            below = open_ & (s[np.minimum(mid, len(s) - 1)] < target)
            lo = np.where(below, mid + 1, lo)
            hi = np.where(open_ & ~below, mid, hi)
        found = lo < stop[active]
        active, lo = active[found], lo[found]
        chosen = earliest[lo]
        taken[active] = chosen
        last_end[active] = e[chosen]
        depth[groups[active]] += 1
    return depth


def _fan_in(ix: Indexed) -> np.ndarray:
    """The last LLM call starts with no LLM call in flight after >= 2 LLM calls ended."""
    n = ix.n_workflows
    last = np.full(n, -np.inf)
    np.maximum.at(last, ix.llm_wf, ix.llm_start)
    t = last[ix.llm_wf]
    ended = np.bincount(ix.llm_wf, weights=ix.llm_end <= t, minlength=n)
    in_flight = np.bincount(ix.llm_wf, weights=(ix.llm_start < t) & (ix.llm_end > t), minlength=n)
    return np.asarray((ended >= 2) & (in_flight == 0))


def _role_revisits(ix: Indexed, role: np.ndarray) -> np.ndarray:
    """A role comes back after another one ran (LLM calls in start order)."""
    n = ix.n_workflows
    order = np.lexsort((ix.llm_start, ix.llm_wf))
    wf, r = ix.llm_wf[order], role[order]
    new_run = np.ones(len(wf), dtype=bool)
    new_run[1:] = (wf[1:] != wf[:-1]) | (r[1:] != r[:-1])
    runs = np.bincount(wf[new_run], minlength=n)
    width = int(role.max()) + 1 if len(role) else 1
    distinct = np.bincount(np.unique(wf.astype(np.int64) * width + r) // width, minlength=n)
    return runs > distinct


def _time_split(
    ix: Indexed, start: np.ndarray, end: np.ndarray, counted: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per workflow: time with an LLM call running, with only tools, with neither."""
    n = ix.n_workflows
    llm = np.zeros(n)
    g = grouped_intervals_by_owner(ix.llm_wf, ix.llm_start, ix.llm_end, ix.llm_wf, n)
    llm[g.keys] = g.union
    rows = np.flatnonzero(counted)
    busy = np.zeros(n)
    g = grouped_intervals_by_owner(ix.wf[rows], start[rows], end[rows], ix.wf[rows], n)
    busy[g.keys] = g.union
    return llm, busy - llm, np.maximum(ix.wf_wall - busy, 0.0)
