"""The stored-points schema: one row per (shape, token shape, load point) measurement.

Measured (our profiler driving real vLLM) and imported (`vllm bench serve
--save-result` JSON) points share this one schema; `profiles/README.md` documents it.
A load point is either closed loop (`concurrency` clients, `request_rate` NaN) or open
loop (Poisson arrivals at `request_rate`, `concurrency` the client cap or NaN).
A configuration that could not run is one row with `status = "failed"`, its `error`,
and NaN metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from planner.errors import InputError

STATUS_OK = "ok"
STATUS_FAILED = "failed"

LATENCY_METRICS = ("ttft_ms", "tpot_ms", "e2e_ms")
LATENCY_STATS = ("mean", "p50", "p90", "p99")

#: Column name -> pandas dtype, in file order.
POINT_COLUMNS: dict[str, str] = {
    "model": "object",
    "gpu_type": "object",
    "tp": "int64",
    "gpu_fraction": "float64",
    "source": "object",  # measured | imported
    "input_tokens": "float64",  # mean prompt tokens per request
    "output_tokens": "float64",  # mean completion tokens per request
    "concurrency": "float64",  # closed-loop clients (or open-loop cap); NaN when unbounded
    "request_rate": "float64",  # open-loop Poisson rate per second; NaN when closed loop
    "num_requests": "float64",  # requests that completed
    "failed_requests": "float64",
    "duration_s": "float64",
    "requests_per_s": "float64",
    "output_tokens_per_s": "float64",
    **{f"{m}_{s}": "float64" for m in LATENCY_METRICS for s in LATENCY_STATS},
    "kv_cache_tokens": "float64",  # KV cache capacity of the replica; NaN when unknown
    # Share of prompt tokens the engine served from its prefix cache during the point
    # (vLLM's prefix_cache_hits / prefix_cache_queries); NaN when not measured.
    "prefix_hit_rate": "float64",
    "vllm_version": "object",
    "measured_at": "object",  # ISO 8601 UTC
    "status": "object",  # ok | failed
    "error": "object",  # why a configuration failed; "" when ok
}

#: Columns that identify one row; a newer row with the same key replaces an older one.
KEY_COLUMNS = (
    "model",
    "gpu_type",
    "tp",
    "gpu_fraction",
    "source",
    "input_tokens",
    "output_tokens",
    "concurrency",
    "request_rate",
)

_STRING_COLUMNS = tuple(c for c, t in POINT_COLUMNS.items() if t == "object")


def empty_points() -> pd.DataFrame:
    """A points table with no rows and the declared dtypes."""
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in POINT_COLUMNS.items()})


def points_frame(rows: Sequence[Mapping[str, Any]], where: str = "points") -> pd.DataFrame:
    """Build a normalised points table from row mappings (missing metrics become NaN).

    Raises:
        InputError: a row lacks an identifying column or carries an unknown one.
    """
    if not rows:
        return empty_points()
    for i, row in enumerate(rows):
        unknown = sorted(set(row) - set(POINT_COLUMNS))
        if unknown:
            raise InputError(f"{where}: row {i} has unknown column(s) {', '.join(unknown)}")
        for col in ("model", "gpu_type", "tp", "source", "status"):
            if row.get(col) is None:
                raise InputError(f"{where}: row {i} lacks '{col}'")
    frame = pd.DataFrame([dict(row) for row in rows])
    return normalise_points(frame, where)


def normalise_points(frame: pd.DataFrame, where: str = "points") -> pd.DataFrame:
    """Check columns, cast to the declared dtypes, sort rows deterministically.

    Raises:
        InputError: a declared column is missing and cannot be defaulted, or a value
            does not cast.
    """
    frame = frame.copy()
    for col, dtype in POINT_COLUMNS.items():
        if col not in frame.columns:
            if col in ("model", "gpu_type", "tp", "source", "status"):
                raise InputError(f"{where}: column '{col}' is missing")
            frame[col] = "" if dtype == "object" else np.nan
        if col == "gpu_fraction":
            frame[col] = frame[col].fillna(1.0)
    for col in _STRING_COLUMNS:
        frame[col] = frame[col].fillna("").astype(str).astype(object)
    try:
        frame = frame.astype({c: t for c, t in POINT_COLUMNS.items() if t != "object"})
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: a numeric column holds a non-number ({exc})") from exc
    frame = frame[list(POINT_COLUMNS)]
    return sort_points(frame)


def sort_points(frame: pd.DataFrame) -> pd.DataFrame:
    """Sort by the key columns (NaN last) and then the timestamp; reset the index."""
    order = [*KEY_COLUMNS, "measured_at", "status"]
    return frame.sort_values(order, na_position="last", kind="mergesort").reset_index(drop=True)


#: A profiler sweep replaces everything stored for a configuration and token shape
#: (its load ladder may differ from the previous run's, and a failure replaces a success).
SWEEP_COLUMNS = KEY_COLUMNS[:7]


def merge_points(
    old: pd.DataFrame, new: pd.DataFrame, replace_on: Sequence[str] = KEY_COLUMNS
) -> pd.DataFrame:
    """Rows of `new` replace rows of `old` that agree on `replace_on`; the rest are kept."""
    if old.empty:
        return sort_points(new)
    if new.empty:
        return sort_points(old)
    new_keys = set(_row_keys(new, replace_on))
    kept = old[[k not in new_keys for k in _row_keys(old, replace_on)]]
    both = pd.concat([kept, new], ignore_index=True) if not kept.empty else new
    return sort_points(both)


def _row_keys(frame: pd.DataFrame, columns: Sequence[str]) -> list[tuple[str, ...]]:
    # NaN never equals NaN, so compare string renderings in which NaN is stable.
    rendered = [frame[c].astype(object).map(repr) for c in columns]
    return list(zip(*rendered, strict=True))
