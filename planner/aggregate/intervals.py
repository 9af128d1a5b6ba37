"""Vectorised interval arithmetic over many small groups (calls of one workflow/model).

Times are relative to their workflow's start, so a group's intervals lie in [0, W) for a
small W. Grouped sorts and running maxima then reduce to one global sort / accumulate over
the composite key `group * W + t`, which is exact to well below a microsecond for the
group counts and workflow lengths we meet (checked: falls back to lexsort otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

# Above this composite magnitude float64 spacing exceeds ~1 us; use the exact path.
_EXACT_LIMIT = 2.0**53 * 1e-6


def group_order(group: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Permutation sorting rows by (group, t)."""
    if len(group) == 0:
        return np.zeros(0, dtype=np.int64)
    width = _width(t)
    if float(group.max()) * width < _EXACT_LIMIT:
        composite = group * width
        composite += t
        return np.asarray(np.argsort(composite, kind="stable"))  # timsort: nearly sorted
    # numpy 2.3's stubs type lexsort as Any; asarray keeps the signature honest.
    return np.asarray(np.lexsort((t, group)))


@dataclass(frozen=True)
class GroupedIntervals:
    """Per distinct key: how many intervals, their summed length and their union length."""

    keys: np.ndarray
    counts: np.ndarray
    summed: np.ndarray
    union: np.ndarray


def grouped_intervals(key: np.ndarray, start: np.ndarray, end: np.ndarray) -> GroupedIntervals:
    """Group intervals [start, end) by `key` (one sort) and measure each group.

    Args:
        key: non-negative integer group key per interval.
        start, end: bounds relative to the workflow start (no NaN, end >= start).
    """
    if len(key) == 0:
        empty = np.zeros(0)
        return GroupedIntervals(np.zeros(0, dtype=np.int64), np.zeros(0, np.int64), empty, empty)
    order = group_order(key, start)
    k, s, e = key[order], start[order], end[order]
    del order
    first = _group_starts(k)
    heads = np.flatnonzero(first)
    keys = k[heads]
    del k
    running = _running_max_by_group(first, e)
    # A call opens a new busy segment when it starts after everything before it in its
    # group has ended (or it is the group's first call).
    opens = first.copy()
    np.logical_or(opens[1:], s[1:] > running[:-1], out=opens[1:])
    del running
    segment_heads = np.flatnonzero(opens)
    segment_lengths = np.maximum.reduceat(e, segment_heads) - s[segment_heads]
    segment_group = np.cumsum(first)[segment_heads] - 1
    return GroupedIntervals(
        keys=keys,
        counts=np.diff(np.append(heads, len(first))),
        summed=np.add.reduceat(e - s, heads),
        union=np.bincount(segment_group, weights=segment_lengths, minlength=len(heads)),
    )


def max_concurrency(
    group: np.ndarray, start: np.ndarray, end: np.ndarray, n_groups: int
) -> np.ndarray:
    """Most intervals open at once in each group (an interval ending at t does not overlap
    one starting at t).

    The peak is reached at some interval's start s: there, open = #(starts <= s) -
    #(ends <= s) within the group. With composite keys group * W + t both counts are
    searchsorted positions in the sorted keys (earlier groups cancel out), so the work is
    two value sorts and two sorted searches.
    """
    if len(group) == 0:
        return np.zeros(n_groups, dtype=np.int64)
    width = max(_width(start), _width(end))
    if float(group.max()) * width >= _EXACT_LIMIT:
        return _max_concurrency_exact(group, start, end, n_groups)
    base = group.astype(np.float64) * width
    starts = base + start
    starts.sort()
    ends = base + end
    del base
    ends.sort()
    level = np.searchsorted(starts, starts, side="right")
    level -= np.searchsorted(ends, starts, side="right")
    del ends
    # Relative times are below W - 1, so flooring recovers the group exactly.
    owner = np.floor(starts / width).astype(np.int64)
    heads = np.flatnonzero(_group_starts(owner))
    best = np.zeros(n_groups, dtype=np.int64)
    best[owner[heads]] = np.maximum.reduceat(level, heads)
    return best


def _max_concurrency_exact(
    group: np.ndarray, start: np.ndarray, end: np.ndarray, n_groups: int
) -> np.ndarray:
    best = np.zeros(n_groups, dtype=np.int64)
    order = np.lexsort((start, group))
    g, s, e = group[order], start[order], end[order]
    heads = np.flatnonzero(_group_starts(g)).tolist()
    for a, b in pairwise([*heads, len(g)]):
        ends = np.sort(e[a:b])
        level = np.arange(1, b - a + 1) - np.searchsorted(ends, s[a:b], side="right")
        # Starts tied at one instant: the last of them sees them all.
        best[g[a]] = int(
            np.max(
                level + (np.searchsorted(s[a:b], s[a:b], side="right") - np.arange(1, b - a + 1))
            )
        )
    return best


# Rows handled per chunk: bounds the temporary arrays (sort permutations, gathered
# copies) to a few hundred MB however many calls the trace has.
CHUNK_ROWS = 2_000_000


def owner_chunks(
    owner: np.ndarray, n_owners: int, rows: int | None = None
) -> list[np.ndarray | None]:
    """Row selections of about `rows` rows each, never splitting an owner (a workflow).

    Returns [None] when everything fits in one chunk (use all rows as they are).
    """
    rows = rows or CHUNK_ROWS
    if len(owner) <= rows:
        return [None]
    per_owner = np.cumsum(np.bincount(owner, minlength=n_owners))
    cuts = np.searchsorted(per_owner, np.arange(rows, per_owner[-1], rows), side="left") + 1
    bounds = [0, *sorted(set(cuts.tolist())), n_owners]
    return [np.flatnonzero((owner >= lo) & (owner < hi)) for lo, hi in pairwise(bounds) if hi > lo]


def grouped_intervals_by_owner(
    key: np.ndarray, start: np.ndarray, end: np.ndarray, owner: np.ndarray, n_owners: int
) -> GroupedIntervals:
    """grouped_intervals in chunks of whole owners; keys must increase with the owner."""
    parts = [
        grouped_intervals(key, start, end)
        if rows is None
        else grouped_intervals(key[rows], start[rows], end[rows])
        for rows in owner_chunks(owner, n_owners)
    ]
    if len(parts) == 1:
        return parts[0]
    return GroupedIntervals(
        keys=np.concatenate([p.keys for p in parts]),
        counts=np.concatenate([p.counts for p in parts]),
        summed=np.concatenate([p.summed for p in parts]),
        union=np.concatenate([p.union for p in parts]),
    )


def max_concurrency_by_owner(
    group: np.ndarray, start: np.ndarray, end: np.ndarray, n_groups: int
) -> np.ndarray:
    """max_concurrency in chunks of whole groups."""
    best = np.zeros(n_groups, dtype=np.int64)
    for rows in owner_chunks(group, n_groups):
        if rows is None:
            return max_concurrency(group, start, end, n_groups)
        np.maximum(best, max_concurrency(group[rows], start[rows], end[rows], n_groups), out=best)
    return best


def _group_starts(k: np.ndarray) -> np.ndarray:
    first = np.empty(len(k), dtype=bool)
    first[0] = True
    np.not_equal(k[1:], k[:-1], out=first[1:])
    return first


def _running_max_by_group(first: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Running maximum of `values` restarting at each group start (values >= 0)."""
    width = _width(values)
    gid = np.cumsum(first, dtype=np.int64) - 1
    if float(gid[-1]) * width < _EXACT_LIMIT:
        offset = gid * width
        del gid
        running: np.ndarray = offset + values
        np.maximum.accumulate(running, out=running)
        running -= offset
        return running
    # Huge groups x long workflows: exact but slower segment-wise accumulate.
    heads = np.flatnonzero(first)
    bounds = np.append(heads, len(values)).tolist()
    return np.concatenate([np.maximum.accumulate(values[a:b]) for a, b in pairwise(bounds)])


def _width(t: np.ndarray) -> float:
    """A span strictly larger than every value (values are >= 0 relative times)."""
    return float(np.max(t)) + 1.0 if len(t) else 1.0
