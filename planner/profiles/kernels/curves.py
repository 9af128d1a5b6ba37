"""Cached kernel-cost curves of one shape on uniform log2 grids (fast scalar lookups).

The steady-state solver asks for the same few functions (token-proportional kernels,
LM head, decode attention, prefill attention) thousands of times per shape at scalar
arguments. Each is evaluated once, vectorised, on a uniform grid in log2 of its
arguments (4 points per doubling), and then read back by linear interpolation in log
space in O(1) pure-Python arithmetic: between grid points the curve is the power law
through its neighbours, as the tables themselves are interpolated. The grid is far
finer than the measured one (2 points per doubling or fewer), so this adds well under
1% (checked in tests against the direct composition). Kernels whose lookups left the
measured grid at the bracketing points are reported, as for direct lookups.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

PER_DOUBLING = 4
SURFACE_PER_DOUBLING = 4

Flags = dict[str, np.ndarray]


@dataclass
class LogCurve:
    """f(x) on x = 2^(i / PER_DOUBLING), i = 0..n-1 (log values)."""

    log_ms: list[float]
    segments: list[tuple[str, ...]]  # kernels extrapolated at either end of segment i
    noted: set[str] = field(default_factory=set)

    @classmethod
    def build(cls, fn: Callable[[np.ndarray], tuple[np.ndarray, Flags]], top: float) -> LogCurve:
        n = math.ceil(math.log2(top) * PER_DOUBLING) + 2
        x = 2.0 ** (np.arange(n) / PER_DOUBLING)
        ms, flags = fn(x)
        segments = [
            tuple(sorted(k for k, f in flags.items() if f[i] or f[i + 1])) for i in range(n - 1)
        ]
        return cls(np.log(np.maximum(ms, 1e-12)).tolist(), segments)

    def __call__(self, x: float) -> float:
        if x <= 0:
            return 0.0
        pos = math.log2(x) * PER_DOUBLING if x > 1.0 else 0.0
        last = len(self.log_ms) - 2
        i = int(pos) if pos < last else last
        if self.segments[i]:
            self.noted.update(self.segments[i])
        y0 = self.log_ms[i]
        return math.exp(y0 + (pos - i) * (self.log_ms[i + 1] - y0))


@dataclass
class LogSurface:
    """f(a, b) on a, b = 2^(i / SURFACE_PER_DOUBLING) (log values, rows by a)."""

    log_ms: list[list[float]]
    flagged: dict[str, list[list[bool]]]  # grid cells each kernel was extrapolated at
    noted: set[str] = field(default_factory=set)

    @classmethod
    def build(
        cls,
        fn: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, Flags]],
        top_a: float,
        top_b: float,
    ) -> LogSurface:
        step = SURFACE_PER_DOUBLING
        na = math.ceil(math.log2(top_a) * step) + 2
        nb = math.ceil(math.log2(top_b) * step) + 2
        a = 2.0 ** (np.arange(na) / step)
        b = 2.0 ** (np.arange(nb) / step)
        aa, bb = np.meshgrid(a, b, indexing="ij")
        ms, flags = fn(aa.ravel(), bb.ravel())
        log_ms = np.log(np.maximum(ms, 1e-12)).reshape(na, nb)
        flagged = {k: v.reshape(na, nb).tolist() for k, v in flags.items() if v.any()}
        return cls(log_ms.tolist(), flagged)

    def __call__(self, a: float, b: float) -> float:
        if a <= 0:
            return 0.0
        grid = self.log_ms
        na, nb = len(grid), len(grid[0])
        pa = max(math.log2(a) * SURFACE_PER_DOUBLING, 0.0)
        pb = max(math.log2(max(b, 1.0)) * SURFACE_PER_DOUBLING, 0.0)
        i, j = min(int(pa), na - 2), min(int(pb), nb - 2)
        ta, tb = pa - i, pb - j
        for name, f in self.flagged.items():
            if f[i][j] or f[i + 1][j] or f[i][j + 1] or f[i + 1][j + 1]:
                self.noted.add(name)
        y = (
            (1 - ta) * (1 - tb) * grid[i][j]
            + ta * (1 - tb) * grid[i + 1][j]
            + (1 - ta) * tb * grid[i][j + 1]
            + ta * tb * grid[i + 1][j + 1]
        )
        return math.exp(y)
