"""What the stored profiles hold, as a table for `planner profile show` (pure)."""

from __future__ import annotations

import pandas as pd

from planner.catalog import Catalog
from planner.profiles.points import STATUS_OK

_SHAPE = ["model", "gpu_type", "tp", "gpu_fraction", "source", "input_tokens", "output_tokens"]


def summarise_points(points: pd.DataFrame) -> pd.DataFrame:
    """One row per stored configuration and token shape.

    Columns: the shape, `points` (ok load points), `concurrency` (measured range),
    `max_req_per_s`, `max_out_tok_per_s`, `kv_cache_tokens`, `status` (ok, failed, or
    partial when some load points failed) and the first `error`.
    """
    if points.empty:
        return pd.DataFrame()
    frame = points.assign(ok=points["status"] == STATUS_OK)
    rows = []
    for shape, group in frame.groupby(_SHAPE, sort=True, dropna=False):
        good = group[group["ok"]]
        conc = good["concurrency"].dropna()
        rates = good["request_rate"].dropna()
        if good.empty:
            status = "failed"
        elif len(good) < len(group):
            status = "partial"
        else:
            status = "ok"
        errors = group.loc[~group["ok"], "error"]
        rows.append(
            {
                **dict(zip(_SHAPE, shape, strict=True)),
                "points": len(good),
                "concurrency": f"{conc.min():g}-{conc.max():g}" if not conc.empty else "-",
                "rates": f"{rates.min():g}-{rates.max():g}" if not rates.empty else "-",
                "max_req_per_s": round(float(good["requests_per_s"].max()), 3)
                if not good.empty
                else float("nan"),
                "max_out_tok_per_s": round(float(good["output_tokens_per_s"].max()), 1)
                if not good.empty
                else float("nan"),
                "kv_cache_tokens": group["kv_cache_tokens"].max(),
                "status": status,
                "error": str(errors.iloc[0])[:80] if not errors.empty else "",
            }
        )
    return pd.DataFrame(rows)


def analytic_only(points: pd.DataFrame, catalog: Catalog) -> list[str]:
    """Lines naming the catalog (model, GPU) pairs that only a prediction answers (the
    kernels source, or the roofline where a GPU has no kernel tables)."""
    ok = points[points["status"] == STATUS_OK] if not points.empty else points
    covered = set(zip(ok["model"], ok["gpu_type"], strict=True)) if not ok.empty else set()
    nowhere: list[str] = []
    lines: list[str] = []
    for model in sorted(catalog.models):
        missing = [g for g in sorted(catalog.gpus) if (model, g) not in covered]
        if len(missing) == len(catalog.gpus):
            nowhere.append(model)
        elif missing:
            lines.append(f"predicted only: {model} on {', '.join(missing)}")
    if nowhere:
        lines.insert(0, f"predicted only (no stored points on any GPU type): {', '.join(nowhere)}")
    return lines


# A closed-loop sweep whose throughput still grew by more than this share over its last
# step (e.g. from 4 to 8 requests in flight) has not reached the engine's saturation.
UNSATURATED_GROWTH = 0.15


def unsaturated_sweeps(points: pd.DataFrame) -> list[str]:
    """One line per swept configuration and token shape whose throughput was still
    rising at the highest concurrency measured: a plan reads its capacity as the highest
    throughput measured, so it would understate it."""
    if points.empty:
        return []
    closed = points[
        (points["status"] == STATUS_OK)
        & points["request_rate"].isna()
        & points["concurrency"].notna()
    ]
    lines = []
    for shape, group in closed.groupby(_SHAPE, sort=True, dropna=False):
        curve = group.groupby("concurrency")["requests_per_s"].mean().sort_index()
        if len(curve) < 2:
            continue
        (c0, x0), (c1, x1) = list(curve.items())[-2:]
        if x0 > 0 and x1 / x0 - 1 > UNSATURATED_GROWTH:
            s = dict(zip(_SHAPE, shape, strict=True))
            lines.append(
                f"{s['model']} on {s['gpu_type']} TP {s['tp']} x {s['gpu_fraction']:g} "
                f"({s['input_tokens']:g} in / {s['output_tokens']:g} out): throughput still "
                f"rose {x1 / x0 - 1:+.0%} from {c0:g} to {c1:g} in flight ({x1:.4g} "
                f"requests/s): its capacity is at least that; sweep higher concurrency "
                f"to measure it"
            )
    return lines
