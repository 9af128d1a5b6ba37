"""Vectorised interval arithmetic over many small groups (calls of one workflow/model).

Times are relative to their workflow's start, so a group's intervals lie in [0, W) for a
small W. Grouped sorts and running maxima then reduce to one global sort / accumulate over
the composite key `group * W + t`, which is exact to well below a microsecond for the
group counts and workflow lengths we meet (checked: falls back to pandas otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Above this composite magnitude float64 spacing exceeds ~1 us; use the exact path.
_EXACT_LIMIT = 2.0**53 * 1e-6


def group_order(group: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Permutation sorting rows by (group, t)."""
    if len(group) == 0:
        return np.zeros(0, dtype=np.int64)
    width = _width(t)
    if float(group.max()) * width < _EXACT_LIMIT:
        return np.argsort(group * width + t, kind="stable")
    return np.lexsort((t, group))


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
    first = np.empty(len(k), dtype=bool)
    first[0] = True
    first[1:] = k[1:] != k[:-1]
    heads = np.flatnonzero(first)
    running = _running_max_by_group(np.cumsum(first) - 1, e)
    previous = np.empty_like(running)
    previous[0] = -np.inf
    previous[1:] = running[:-1]
    previous[first] = -np.inf
    segment_heads = np.flatnonzero(first | (s > previous))
    segment_lengths = np.maximum.reduceat(e, segment_heads) - s[segment_heads]
    segment_group = np.cumsum(first)[segment_heads] - 1
    return GroupedIntervals(
        keys=k[heads],
        counts=np.diff(np.append(heads, len(k))),
        summed=np.add.reduceat(e - s, heads),
        union=np.bincount(segment_group, weights=segment_lengths, minlength=len(heads)),
    )


def max_concurrency(
    group: np.ndarray, start: np.ndarray, end: np.ndarray, n_groups: int
) -> np.ndarray:
    """Most intervals open at once in each group (an interval ending at t does not overlap
    one starting at t)."""
    if len(group) == 0:
        return np.zeros(n_groups, dtype=np.int64)
    events_group = np.concatenate([group, group])
    times = np.concatenate([start, end])
    delta = np.concatenate([np.ones(len(group), np.int64), -np.ones(len(group), np.int64)])
    order = group_order(events_group, times)
    g, t, d = events_group[order], times[order], delta[order]
    # Every group's deltas sum to zero, so the global running sum is the per-group one.
    level = np.cumsum(d)
    # Read the level only after all events at one instant ([start, end) intervals), so a
    # call starting exactly when another ends does not count as overlapping.
    settled = np.ones(len(g), dtype=bool)
    settled[:-1] = (g[1:] != g[:-1]) | (t[1:] != t[:-1])
    best = np.zeros(n_groups, dtype=np.int64)
    np.maximum.at(best, g[settled], level[settled])
    return best


def _running_max_by_group(g: np.ndarray, values: np.ndarray) -> np.ndarray:
    width = _width(values)
    if float(g.max()) * width < _EXACT_LIMIT:
        offset = g * width
        return np.maximum.accumulate(values + offset) - offset
    return pd.Series(values).groupby(g).cummax().to_numpy()


def _width(t: np.ndarray) -> float:
    """A span strictly larger than every value (values are >= 0 relative times)."""
    return float(np.max(t)) + 1.0 if len(t) else 1.0
