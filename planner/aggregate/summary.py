"""Small numeric summaries shared by the aggregate modules."""

from __future__ import annotations

import numpy as np

from planner.types.apl import Stats


def summarise(values: np.ndarray) -> Stats | None:
    """Mean, median and 95th percentile (linear interpolation); None when empty or NaN."""
    values = values[~np.isnan(values)] if values.dtype.kind == "f" else values
    if len(values) == 0:
        return None
    p50, p95 = np.percentile(values, [50.0, 95.0])
    return Stats(mean=float(np.mean(values)), p50=float(p50), p95=float(p95))


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, None when the denominator is zero or not a number."""
    if not np.isfinite(denominator) or denominator <= 0 or not np.isfinite(numerator):
        return None
    return float(numerator / denominator)
