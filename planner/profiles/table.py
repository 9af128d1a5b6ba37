"""One ProfileTable over stored points (measured, imported) with an analytic fallback.

For a shape (model, GPU type, TP, fraction) that has stored points of status `ok`, the
best source answers (measured beats imported); every other shape goes to the fallback.
Within a source, the token shape nearest to the requested one (in log space) is used,
its metrics are interpolated linearly over concurrency (open-loop points join the curve
at their mean number in flight, throughput x latency by Little's law), and the result
is corrected for the difference between the requested and the measured token shape by
the fallback's own ratio:

    value(req, C) = measured(meas, C) * fallback(req, C) / fallback(meas, C)

Outside the measured concurrency range the same ratio extends the curve from its
nearest end. When the fallback cannot answer (a model outside the catalog), no
correction is applied and the curve is held flat beyond its ends.

A point measured at prefix hit rate h (the `prefix_hit_rate` column; 0 when not
recorded) is a point at cached tokens h x input tokens: a request at another cached
prefix is corrected by the same fallback ratio, the cached tokens being part of the
token shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from planner.errors import PlannerError
from planner.profiles import MemoryFit, PerfPoint, ProfileTable, Source
from planner.profiles.points import STATUS_OK
from planner.types.shapes import ShapeKey, share_eighths

_SOURCE_RANK: dict[str, int] = {"measured": 0, "imported": 1}
_LATENCIES = ("ttft_ms", "tpot_ms", "e2e_ms")


@dataclass(frozen=True)
class _Curve:
    """Closed-loop points of one shape, source and token shape, sorted by concurrency."""

    source: Source
    input_tokens: float
    output_tokens: float
    concurrency: np.ndarray
    requests_per_s: np.ndarray
    latency_ms: dict[str, np.ndarray]
    kv_cache_tokens: float
    cached_tokens: float = 0.0  # mean cached prefix the points were measured at

    def at(self, concurrency: float) -> tuple[float, dict[str, float]]:
        """Interpolated (requests_per_s, latencies) at a concurrency, held flat past the ends."""
        rps = float(np.interp(concurrency, self.concurrency, self.requests_per_s))
        lat = {
            k: float(np.interp(concurrency, self.concurrency, v))
            for k, v in self.latency_ms.items()
        }
        return rps, lat


class StoredProfiles:
    """ProfileTable answering from stored points where present, else from `fallback`.

    Args:
        points: a points table (see `planner.profiles.points`); failed rows are ignored.
        fallback: answers shapes without points and supplies the token-shape correction.
    """

    def __init__(self, points: pd.DataFrame, fallback: ProfileTable) -> None:
        ok = points[points["status"] == STATUS_OK]
        ok = ok[ok["source"].isin(list(_SOURCE_RANK))]
        self.points = ok.reset_index(drop=True)
        self.fallback = fallback
        self._curves: dict[ShapeKey, list[_Curve]] = {}
        self._build()

    # ---- lookups -------------------------------------------------------------------

    def stored_keys(self) -> tuple[ShapeKey, ...]:
        """Shapes answered from stored points, sorted."""
        return tuple(sorted(self._curves))

    def source_of(self, key: ShapeKey) -> Source:
        """Which source answers `key`."""
        curves = self._curves.get(key)
        if curves:
            return curves[0].source
        source_of = getattr(self.fallback, "source_of", None)
        return source_of(key) if source_of is not None else "roofline"

    def memory(self, key: ShapeKey) -> MemoryFit:
        stored_kv = self._kv_tokens(key)
        try:
            fit = self.fallback.memory(key)
        except PlannerError:
            if math.isnan(stored_kv):
                raise
            nan = math.nan
            return MemoryFit(True, nan, nan, nan, nan, int(stored_kv))
        if math.isnan(stored_kv):
            return fit
        # The engine started and reported its KV cache: it fits, whatever the model says.
        return replace(fit, fits=True, kv_cache_tokens=int(stored_kv))

    def at_concurrency(
        self,
        key: ShapeKey,
        input_tokens: float,
        output_tokens: float,
        concurrency: float,
        cached_tokens: float = 0.0,
    ) -> PerfPoint:
        curve = self._curve(key, input_tokens, output_tokens)
        if curve is None:
            return self.fallback.at_concurrency(
                key, input_tokens, output_tokens, concurrency, cached_tokens
            )
        rps, lat = curve.at(concurrency)
        rps, lat = self._extend(key, curve, concurrency, rps, lat)
        rps, lat = self._reshape(
            key, curve, (input_tokens, output_tokens, cached_tokens), concurrency, rps, lat
        )
        return self._point(curve, input_tokens, output_tokens, concurrency, rps, lat, False)

    def at_rate(
        self,
        key: ShapeKey,
        input_tokens: float,
        output_tokens: float,
        rate_per_s: float,
        cached_tokens: float = 0.0,
    ) -> PerfPoint:
        curve = self._curve(key, input_tokens, output_tokens)
        if curve is None:
            return self.fallback.at_rate(
                key, input_tokens, output_tokens, rate_per_s, cached_tokens
            )
        capacity = self.capacity_per_s(key, input_tokens, output_tokens, cached_tokens)
        if rate_per_s >= capacity:
            top = float(curve.concurrency[-1])
            point = self.at_concurrency(key, input_tokens, output_tokens, top, cached_tokens)
            return replace(point, saturated=True)
        # Open loop at rate r behaves like the closed loop whose throughput is r (Little's
        # law ties the mean number in flight to rate x latency); invert the throughput curve.
        concurrency = self._concurrency_for_rate(
            key, curve, input_tokens, output_tokens, rate_per_s, cached_tokens
        )
        point = self.at_concurrency(key, input_tokens, output_tokens, concurrency, cached_tokens)
        return replace(
            point,
            requests_per_s=rate_per_s,
            output_tokens_per_s=rate_per_s * output_tokens,
        )

    def capacity_per_s(
        self, key: ShapeKey, input_tokens: float, output_tokens: float, cached_tokens: float = 0.0
    ) -> float:
        curve = self._curve(key, input_tokens, output_tokens)
        if curve is None:
            return self.fallback.capacity_per_s(key, input_tokens, output_tokens, cached_tokens)
        measured = float(curve.requests_per_s.max())
        return measured * self._ratio_capacity(
            key, curve, input_tokens, output_tokens, cached_tokens
        )

    # ---- internals -----------------------------------------------------------------

    def _build(self) -> None:
        frame = self.points
        if frame.empty:
            return
        closed = frame[frame["request_rate"].isna() & frame["concurrency"].notna()]
        # An open-loop point sits on the same curve at its mean number in flight, which
        # Little's law gives as throughput x latency.
        opened = frame[frame["request_rate"].notna()]
        opened = opened.assign(concurrency=opened["requests_per_s"] * opened["e2e_ms_mean"] / 1e3)
        both = pd.concat([closed, opened]) if not opened.empty else closed
        both = both[both["concurrency"] > 0]
        groups = both.groupby(
            ["model", "gpu_type", "tp", "gpu_fraction", "source", "input_tokens", "output_tokens"],
            sort=True,
        )
        for _, group in groups:
            first = group.iloc[0]
            key = _key_of(first)
            source, isl, osl = first["source"], first["input_tokens"], first["output_tokens"]
            g = group.sort_values("concurrency")
            g = g.groupby("concurrency", as_index=False).mean(numeric_only=True)
            hit = float(np.nan_to_num(g["prefix_hit_rate"].mean())) if len(g) else 0.0
            curve = _Curve(
                source=str(source),  # type: ignore[arg-type]
                input_tokens=float(isl),
                output_tokens=float(osl),
                concurrency=g["concurrency"].to_numpy(float),
                requests_per_s=g["requests_per_s"].to_numpy(float),
                latency_ms={k: g[f"{k}_mean"].to_numpy(float) for k in _LATENCIES},
                kv_cache_tokens=float(g["kv_cache_tokens"].max()),
                cached_tokens=hit * float(isl),
            )
            self._curves.setdefault(key, []).append(curve)
        for key, curves in self._curves.items():
            best = min(_SOURCE_RANK[c.source] for c in curves)
            self._curves[key] = [c for c in curves if _SOURCE_RANK[c.source] == best]

    def _curve(self, key: ShapeKey, input_tokens: float, output_tokens: float) -> _Curve | None:
        curves = self._curves.get(key)
        if not curves:
            return None

        def distance(c: _Curve) -> float:
            return abs(math.log(max(c.input_tokens, 1) / max(input_tokens, 1))) + abs(
                math.log(max(c.output_tokens, 1) / max(output_tokens, 1))
            )

        return min(curves, key=lambda c: (distance(c), c.input_tokens, c.output_tokens))

    def _kv_tokens(self, key: ShapeKey) -> float:
        rows = self.points[
            (self.points["model"] == key.model)
            & (self.points["gpu_type"] == key.gpu_type)
            & (self.points["tp"] == key.tp)
            & (self.points["gpu_fraction"] == key.gpu_fraction)  # k/8 is exact in binary
        ]
        kv = rows["kv_cache_tokens"].dropna()
        return float(kv.max()) if not kv.empty else math.nan

    def _fallback_point(
        self, key: ShapeKey, isl: float, osl: float, concurrency: float, cached: float = 0.0
    ) -> PerfPoint | None:
        try:
            return self.fallback.at_concurrency(key, isl, osl, concurrency, min(cached, isl))
        except PlannerError:
            return None

    def _extend(
        self, key: ShapeKey, curve: _Curve, c: float, rps: float, lat: dict[str, float]
    ) -> tuple[float, dict[str, float]]:
        """Past the measured concurrency range, follow the fallback's trend from the end."""
        lo, hi = float(curve.concurrency[0]), float(curve.concurrency[-1])
        if lo <= c <= hi:
            return rps, lat
        end = lo if c < lo else hi
        shape = (curve.input_tokens, curve.output_tokens)
        at_end = self._fallback_point(key, *shape, end, curve.cached_tokens)
        at_c = self._fallback_point(key, *shape, c, curve.cached_tokens)
        if at_end is None or at_c is None:
            return rps, lat
        return _scaled(rps, lat, at_c, at_end)

    def _reshape(
        self,
        key: ShapeKey,
        curve: _Curve,
        request: tuple[float, float, float],
        c: float,
        rps: float,
        lat: dict[str, float],
    ) -> tuple[float, dict[str, float]]:
        """Correct a measured value for the requested token shape (input, output, cached
        tokens) by the fallback's ratio."""
        isl, osl, cached = request
        measured_shape = (curve.input_tokens, curve.output_tokens, curve.cached_tokens)
        if (isl, osl, cached) == measured_shape:
            return rps, lat
        wanted = self._fallback_point(key, isl, osl, c, cached)
        measured = self._fallback_point(
            key, curve.input_tokens, curve.output_tokens, c, curve.cached_tokens
        )
        if wanted is None or measured is None:
            return rps, lat
        return _scaled(rps, lat, wanted, measured)

    def _ratio_capacity(
        self, key: ShapeKey, curve: _Curve, isl: float, osl: float, cached: float
    ) -> float:
        if (isl, osl, cached) == (curve.input_tokens, curve.output_tokens, curve.cached_tokens):
            return 1.0
        try:
            wanted = self.fallback.capacity_per_s(key, isl, osl, min(cached, isl))
            measured = self.fallback.capacity_per_s(
                key, curve.input_tokens, curve.output_tokens, curve.cached_tokens
            )
        except PlannerError:
            return 1.0
        return wanted / measured if measured > 0 else 1.0

    def _concurrency_for_rate(
        self, key: ShapeKey, curve: _Curve, isl: float, osl: float, rate: float, cached: float
    ) -> float:
        """Smallest concurrency whose (corrected) throughput reaches `rate`, by bisection."""
        lo, hi = 0.0, float(curve.concurrency[-1])
        if self.at_concurrency(key, isl, osl, hi, cached).requests_per_s <= rate:
            return hi
        for _ in range(60):
            mid = (lo + hi) / 2
            if self.at_concurrency(key, isl, osl, mid, cached).requests_per_s < rate:
                lo = mid
            else:
                hi = mid
        return hi

    @staticmethod
    def _point(
        curve: _Curve,
        isl: float,
        osl: float,
        concurrency: float,
        rps: float,
        lat: dict[str, float],
        saturated: bool,
    ) -> PerfPoint:
        kv = curve.kv_cache_tokens
        kv_tokens = 0 if math.isnan(kv) else int(kv)
        max_conc = math.inf if math.isnan(kv) else kv / max(isl + osl, 1.0)
        return PerfPoint(
            concurrency=concurrency,
            requests_per_s=rps,
            output_tokens_per_s=rps * osl,
            ttft_ms=lat["ttft_ms"],
            tpot_ms=lat["tpot_ms"],
            e2e_ms=lat["e2e_ms"],
            kv_cache_tokens=kv_tokens,
            max_concurrency=max_conc,
            source=curve.source,
            saturated=saturated,
        )


def _key_of(row: pd.Series) -> ShapeKey:
    return ShapeKey(
        str(row["model"]),
        str(row["gpu_type"]),
        int(row["tp"]),
        share_eighths(float(row["gpu_fraction"])),
    )


def _scaled(
    rps: float, lat: dict[str, float], num: PerfPoint, den: PerfPoint
) -> tuple[float, dict[str, float]]:
    def ratio(a: float, b: float) -> float:
        return a / b if b > 0 and math.isfinite(a) and math.isfinite(b) else 1.0

    scaled = {
        "ttft_ms": lat["ttft_ms"] * ratio(num.ttft_ms, den.ttft_ms),
        "tpot_ms": lat["tpot_ms"] * ratio(num.tpot_ms, den.tpot_ms),
        "e2e_ms": lat["e2e_ms"] * ratio(num.e2e_ms, den.e2e_ms),
    }
    return rps * ratio(num.requests_per_s, den.requests_per_s), scaled
