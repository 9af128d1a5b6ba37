"""Accuracy of the analytic profile model against measured vLLM serving points.

    PYTHONPATH=. python benchmarks/profile_accuracy.py [--data CSV] [--no-holdout]

Prints mean absolute percentage error (MAPE) of TPOT and TTFT per GPU type, per model
and overall, with the constants shipped in configs/gpus/*.yaml (fitted on these same
points: in-sample), then leave-one-GPU-out: the constants are refitted on the other GPU
types' points only and applied to the held-out type (out-of-sample).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from planner.catalog import Calibration, Catalog  # noqa: E402
from planner.io.calibration import read_measured_points  # noqa: E402
from planner.io.configs import load_catalog  # noqa: E402
from planner.profiles.analytic import max_concurrency, memory_fit  # noqa: E402
from planner.profiles.calibrate import (  # noqa: E402
    MEASURED_GPU_MEMORY_UTILIZATION,
    MeasuredPoint,
    fit_calibration,
    mape,
    predict,
)

DEFAULT_DATA = REPO.parent / "shared" / "data" / "calibration" / "vllm_measured_ttft_tpot.csv"


def _median_ape(predicted: np.ndarray, measured: np.ndarray) -> float:
    return float(np.median(np.abs(predicted - measured) / measured) * 100)


def _row(
    label: str,
    points: Sequence[MeasuredPoint],
    ttft: np.ndarray,
    tpot: np.ndarray,
    below_limit: np.ndarray,
) -> str:
    m_ttft = np.array([p.ttft_ms for p in points])
    m_tpot = np.array([p.tpot_ms for p in points])
    below = f"{mape(ttft[below_limit], m_ttft[below_limit]):.1f}" if below_limit.any() else "-"
    return (
        f"| {label} | {len(points)} | {mape(tpot, m_tpot):.1f} | {_median_ape(tpot, m_tpot):.1f} "
        f"| {mape(ttft, m_ttft):.1f} | {_median_ape(ttft, m_ttft):.1f} | {below} |"
    )


def _kv_limit(catalog: Catalog, p: MeasuredPoint) -> float:
    model, gpu = catalog.models[p.model], catalog.gpus[p.gpu_type]
    fit = memory_fit(model, gpu, p.tp, 1.0, MEASURED_GPU_MEMORY_UTILIZATION)
    return max_concurrency(
        fit.kv_cache_tokens, p.input_tokens, p.output_tokens, gpu.vllm_max_num_seqs
    )


def report(
    catalog: Catalog,
    points: Sequence[MeasuredPoint],
    calibrations: dict[str, Calibration] | None,
    title: str,
) -> None:
    pred = predict(catalog, points, calibrations)
    # Rows whose concurrency stays under the predicted KV-cache limit: past it TTFT is
    # dominated by waiting for a slot, and a few % error in capacity moves it by 10-100x.
    below_limit = np.array([p.concurrency <= _kv_limit(catalog, p) for p in points])
    print(f"\n{title}\n")
    print(
        "| group | points | TPOT MAPE % | TPOT median APE % | TTFT MAPE % "
        "| TTFT median APE % | TTFT MAPE % below KV limit |"
    )
    print("|---|---|---|---|---|---|---|")
    groups: list[tuple[str, list[int]]] = []
    for gpu in sorted({p.gpu_type for p in points}):
        groups.append((gpu, [i for i, p in enumerate(points) if p.gpu_type == gpu]))
    for model in sorted({p.model for p in points}):
        groups.append((model, [i for i, p in enumerate(points) if p.model == model]))
    for gpu in sorted({p.gpu_type for p in points}):
        for model in sorted({p.model for p in points}):
            idx = [i for i, p in enumerate(points) if p.gpu_type == gpu and p.model == model]
            if idx:
                groups.append((f"{gpu} / {model}", idx))
    groups.append(("all dense rows", list(range(len(points)))))
    for label, idx in groups:
        rows = [points[i] for i in idx]
        print(_row(label, rows, pred.ttft_ms[idx], pred.tpot_ms[idx], below_limit[idx]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--no-holdout", action="store_true", help="skip leave-one-GPU-out")
    args = parser.parse_args()
    catalog = load_catalog()
    points = read_measured_points(args.data)
    print(f"{len(points)} measured dense points from {args.data.name}")
    report(catalog, points, None, "In-sample (shipped constants, fitted on these points):")
    if args.no_holdout:
        return 0
    gpus = sorted({p.gpu_type for p in points})
    held_out = {}
    for gpu in gpus:
        train = [p for p in points if p.gpu_type != gpu]
        held_out[gpu] = fit_calibration(catalog, train, source=f"fit without {gpu}")
    test = [p for p in points if p.gpu_type in held_out]
    report(
        catalog,
        test,
        held_out,
        "Leave-one-GPU-out (constants fitted on the other GPU types only):",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
