"""Distributions, histograms and arrival burstiness over numpy arrays."""

from __future__ import annotations

import numpy as np

from planner.study.types import Burst, Distribution, Histogram

# Windows at which arrival burstiness is measured: a second (a burst of tasks), ten
# seconds (an autoscaler's reaction time), a minute (a scrape interval), ten minutes.
BURST_WINDOWS_S = (1.0, 10.0, 60.0, 600.0)

# Up to this many distinct integer values a count histogram has one bin per value.
EXACT_BINS = 20


def distribution(values: np.ndarray) -> Distribution | None:
    """Count, mean, p10/p50/p90/p99, min and max of the finite values; None when empty."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None
    p10, p50, p90, p99 = np.percentile(values, [10.0, 50.0, 90.0, 99.0])
    return Distribution(
        count=len(values),
        mean=float(values.mean()),
        p10=float(p10),
        p50=float(p50),
        p90=float(p90),
        p99=float(p99),
        min=float(values.min()),
        max=float(values.max()),
    )


def count_histogram(values: np.ndarray) -> Histogram:
    """Histogram of non-negative integers: one bin per value when few, else 20 equal
    integer-wide bins from the minimum."""
    values = np.asarray(values, dtype=np.int64)
    if len(values) == 0:
        return Histogram((), ())
    low, high = int(values.min()), int(values.max())
    width = 1 if high - low + 1 <= EXACT_BINS else -(-(high - low + 1) // EXACT_BINS)
    bins = (values - low) // width
    counts = np.bincount(bins)
    edges = low + width * np.arange(len(counts) + 1)
    return Histogram(tuple(float(e) for e in edges), tuple(int(c) for c in counts))


def log2_histogram(values: np.ndarray) -> Histogram:
    """Histogram over power-of-two bins [0, 1), [1, 2), [2, 4), ... up to the maximum."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return Histogram((), ())
    top = max(int(np.ceil(np.log2(max(float(values.max()), 1.0) + 1))), 1)
    edges = np.concatenate([[0.0], 2.0 ** np.arange(top + 1)])
    counts, _ = np.histogram(values, bins=edges)
    return Histogram(tuple(float(e) for e in edges), tuple(int(c) for c in counts))


def burstiness(
    starts: np.ndarray, windows_s: tuple[float, ...] = BURST_WINDOWS_S
) -> tuple[Burst, ...]:
    """Peak-to-mean of arrivals at each window no longer than the arrival span.

    Peak: most starts in any window [t, t + w) (t at an arrival, which is where the
    maximum of a sliding count is reached). Mean: starts / span x w, with span the time
    from the first to the last start. Fewer than two arrivals, or all at once: none.
    """
    starts = np.sort(np.asarray(starts, dtype=np.float64))
    if len(starts) < 2:
        return ()
    span = float(starts[-1] - starts[0])
    out = []
    for w in windows_s:
        if not span >= w:
            continue
        ends = np.searchsorted(starts, starts + w, side="left")
        peak = int(np.max(ends - np.arange(len(starts))))
        mean = len(starts) / span * w
        out.append(Burst(w, peak, mean, peak / mean))
    return tuple(out)
