"""Multilinear interpolation of measured latencies on a grid, in log space.

A kernel's latency is close to a power law of each size (tokens, features, sequence
length) between grid points, so both the axes and the latency are interpolated in log
space: between measured points the estimate is the power law through its neighbours.
Outside an axis's measured range the value is carried from the nearest edge with a fixed
log-log slope per side (e.g. 1 above the largest token count: work and time grow in
proportion; 0 below the smallest: a launch-bound floor); such a query is flagged
`extrapolated`. Grid cells that were never measured are filled once, along each axis in
turn, the same way, and a query that leans on a filled cell is flagged too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class LogGrid:
    """Latency (ms) on the full product of measured axis values, in logs.

    Attributes:
        axes: log of each axis's sorted distinct values.
        log_ms: log latency, shape (len(axis) for axis in axes); filled where unmeasured.
        measured: whether each cell was measured.
        slope_below / slope_above: log-log slope used beyond each axis's ends.
    """

    axes: tuple[np.ndarray, ...]
    log_ms: np.ndarray
    measured: np.ndarray
    slope_below: tuple[float, ...]
    slope_above: tuple[float, ...]

    def __call__(self, *coords: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Latency (ms) at the given coordinates (broadcast arrays, linear units).

        Returns:
            (latency_ms, extrapolated): arrays of the broadcast shape; `extrapolated` is
            True where a coordinate lies outside its axis or a filled cell is used.
        """
        arrays = np.broadcast_arrays(*[np.asarray(c, dtype=float) for c in coords])
        shape = arrays[0].shape
        flat = [np.log(np.maximum(a.ravel(), 1e-30)) for a in arrays]
        n = flat[0].size
        lower: list[np.ndarray] = []
        weight: list[np.ndarray] = []
        offset = np.zeros(n)
        outside = np.zeros(n, dtype=bool)
        for d, x in enumerate(flat):
            axis = self.axes[d]
            if axis.size == 1:
                lower.append(np.zeros(n, dtype=np.intp))
                weight.append(np.zeros(n))
                below_edge = x < axis[0] - 1e-9
                above_edge = x > axis[0] + 1e-9
                offset += np.where(below_edge, self.slope_below[d] * (x - axis[0]), 0.0)
                offset += np.where(above_edge, self.slope_above[d] * (x - axis[0]), 0.0)
                outside |= below_edge | above_edge
                continue
            clipped = np.clip(x, axis[0], axis[-1])
            below = x - axis[0]
            above = x - axis[-1]
            offset += np.where(below < -1e-9, self.slope_below[d] * below, 0.0)
            offset += np.where(above > 1e-9, self.slope_above[d] * above, 0.0)
            outside |= (below < -1e-9) | (above > 1e-9)
            i = np.clip(np.searchsorted(axis, clipped, side="right") - 1, 0, axis.size - 2)
            lower.append(i)
            weight.append((clipped - axis[i]) / (axis[i + 1] - axis[i]))
        total = np.zeros(n)
        filled = np.zeros(n, dtype=bool)
        dims = len(flat)
        for corner in range(1 << dims):
            w = np.ones(n)
            index = []
            for d in range(dims):
                up = (corner >> d) & 1
                w = w * (weight[d] if up else 1.0 - weight[d])
                top = self.axes[d].size - 1
                index.append(np.minimum(lower[d] + up, top))
            cell = tuple(index)
            total += w * self.log_ms[cell]
            filled |= (w > 1e-12) & ~self.measured[cell]
        value = np.exp(total + offset).reshape(shape)
        return value, (outside | filled).reshape(shape)


def _fill_axis(
    values: np.ndarray, known: np.ndarray, axis: np.ndarray, d: int, below: float, above: float
) -> None:
    """Fill unknown cells along dimension `d` in place from known cells on the same line."""
    moved = np.moveaxis(values, d, -1)
    mask = np.moveaxis(known, d, -1)
    lines = moved.reshape(-1, moved.shape[-1])
    masks = mask.reshape(-1, mask.shape[-1])
    for row, ok in zip(lines, masks, strict=True):
        if ok.all() or not ok.any():
            continue
        xs, ys = axis[ok], row[ok]
        missing = ~ok
        x = axis[missing]
        y = np.interp(x, xs, ys)
        y = np.where(x < xs[0], ys[0] + below * (x - xs[0]), y)
        y = np.where(x > xs[-1], ys[-1] + above * (x - xs[-1]), y)
        row[missing] = y
        ok[missing] = True
    np.copyto(np.moveaxis(values, d, -1), lines.reshape(moved.shape))
    np.copyto(np.moveaxis(known, d, -1), masks.reshape(mask.shape))


def log_grid(
    frame: pd.DataFrame,
    keys: Sequence[str],
    slope_below: Sequence[float],
    slope_above: Sequence[float],
    value: str = "latency_ms",
) -> LogGrid:
    """Build a LogGrid from rows holding `keys` (positive numbers) and `value` (ms).

    Duplicate keys keep their (geometric) mean. Unmeasured cells are filled along each axis in turn
    (first axis first), from the measured cells on the same grid line.

    Raises:
        ValueError: no rows (a bug in the caller, which selects rows it knows exist).
    """
    if frame.empty:
        raise ValueError("log_grid needs at least one row")
    axes_values = []
    index = []
    for k in keys:
        values, inverse = np.unique(frame[k].to_numpy(float), return_inverse=True)
        axes_values.append(values)
        index.append(inverse)
    shape = tuple(a.size for a in axes_values)
    latency = np.maximum(frame[value].to_numpy(float), 1e-9)
    # Duplicate keys keep their mean (sum and count per cell).
    flat = np.ravel_multi_index(tuple(index), shape)
    total = np.bincount(flat, weights=np.log(latency), minlength=int(np.prod(shape)))
    count = np.bincount(flat, minlength=int(np.prod(shape)))
    measured = (count > 0).reshape(shape)
    log_ms = np.where(count > 0, total / np.maximum(count, 1), 0.0).reshape(shape)
    known = measured.copy()
    axes = tuple(np.log(a) for a in axes_values)
    for _ in range(len(keys)):
        for d in range(len(keys)):
            _fill_axis(log_ms, known, axes[d], d, slope_below[d], slope_above[d])
        if known.all():
            break
    if not known.all():  # a corner no line reaches: use the mean of what is known
        log_ms[~known] = float(log_ms[known].mean())
    return LogGrid(axes, log_ms, measured, tuple(slope_below), tuple(slope_above))
