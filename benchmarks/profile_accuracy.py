"""Accuracy of the profile models against measured vLLM serving points.

    PYTHONPATH=. python benchmarks/profile_accuracy.py [--source kernels|roofline]
        [--data CSV] [--no-holdout] [--all-rows]

`--source kernels` (default): the 992 measured points (dense and MoE; H100, B200, B300)
against the kernel-composed step model, less the rows the stated TPOT consistency rule
sets aside (`planner.profiles.calibrate.inconsistent_points`; each printed with its
reason and its error under the shipped constants; `--all-rows` keeps them everywhere).
Prints TPOT and TTFT mean absolute percentage error (MAPE) and median APE per model
family, per model, per GPU type and dense vs MoE, with the shipped engine overhead
(fitted on these same points: in-sample), then the fitted part evaluated out of
sample: leave-one-family-out (overhead refitted without any checkpoint of that model
family, applied to it) and leave-one-GPU-out; and the scatter between repeated
measurements of one configuration (the floor for any deterministic model).
TTFT is also given for the points below the predicted KV-cache limit.

`--source roofline`: the dense rows against the calibrated roofline, in-sample with the
constants shipped in configs/gpus/*.yaml, then leave-one-GPU-out.
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
    consistent_points,
    fit_calibration,
    inconsistent_points,
    mape,
    predict,
)
from planner.profiles.kernels import shipped_overhead  # noqa: E402
from planner.profiles.kernels.fit import (  # noqa: E402
    PointCosts,
    fit_overhead,
    point_costs,
    predict_points,
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


# Checkpoints of one base model form a family: held out together.
FAMILY = {
    "Kimi-K2.5": "Kimi-K2.5",
    "Kimi-K2.5-NVFP4": "Kimi-K2.5",
    "MiniMax-M2.5": "MiniMax-M2.5",
    "MiniMax-M2.5-NVFP4": "MiniMax-M2.5",
    "Llama-3.1-70B-Instruct-FP4": "Llama-3.1-70B",
    "Llama-3.1-70B-Instruct-FP8": "Llama-3.1-70B",
    "Qwen3-32B": "Qwen3-32B",
    "Qwen3-32B-FP8": "Qwen3-32B",
    "gpt-oss-120b": "gpt-oss-120b",
}


def _kernel_table(
    catalog: Catalog, items: Sequence[PointCosts], ttft: np.ndarray, tpot: np.ndarray, title: str
) -> None:
    m_ttft = np.array([it.point.ttft_ms for it in items])
    m_tpot = np.array([it.point.tpot_ms for it in items])
    below = np.array([it.point.concurrency <= it.max_concurrency for it in items])
    print(f"\n{title}\n")
    print(
        "| group | points | TPOT MAPE % | TPOT median APE % | TTFT MAPE % | TTFT median APE % "
        "| TTFT MAPE % below KV limit (points) |"
    )
    print("|---|---|---|---|---|---|---|")
    models = [it.point.model for it in items]
    groups: list[tuple[str, np.ndarray]] = []
    for fam in sorted(set(FAMILY.values())):
        groups.append((f"family {fam}", np.array([FAMILY[m] == fam for m in models])))
    for model in sorted(set(models)):
        groups.append((model, np.array([m == model for m in models])))
    for gpu in sorted({it.point.gpu_type for it in items}):
        groups.append((gpu, np.array([it.point.gpu_type == gpu for it in items])))
    moe = np.array([catalog.models[m].is_moe for m in models])
    groups += [("dense", ~moe), ("MoE", moe), ("all", np.ones(len(items), dtype=bool))]
    for label, idx in groups:
        if not idx.any():
            continue
        sel = idx & below
        below_text = f"{mape(ttft[sel], m_ttft[sel]):.1f} ({int(sel.sum())})" if sel.any() else "-"
        print(
            f"| {label} | {int(idx.sum())} | {mape(tpot[idx], m_tpot[idx]):.1f} "
            f"| {_median_ape(tpot[idx], m_tpot[idx]):.1f} | {mape(ttft[idx], m_ttft[idx]):.1f} "
            f"| {_median_ape(ttft[idx], m_ttft[idx]):.1f} | {below_text} |"
        )


def _repeat_scatter(items: Sequence[PointCosts]) -> None:
    """How far repeated measurements of one configuration lie from their median: the
    error no deterministic model can go below on those rows."""
    groups: dict[tuple[object, ...], list[MeasuredPoint]] = {}
    for it in items:
        p = it.point
        if p.concurrency <= it.max_concurrency:
            key = (p.model, p.gpu_type, p.tp, p.input_tokens, p.output_tokens, p.concurrency)
            groups.setdefault(key, []).append(p)
    print("\nRepeat scatter (configurations measured more than once with differing results,")
    print("each row's absolute % deviation from its configuration's median, below KV limit):\n")
    print("| family | rows | TPOT % | TTFT % |")
    print("|---|---|---|---|")
    per_family: dict[str, tuple[list[float], list[float]]] = {}
    for rows in groups.values():
        if len(rows) < 2 or len({round(p.ttft_ms, 3) for p in rows}) < 2:
            continue
        t_med = float(np.median([p.tpot_ms for p in rows]))
        f_med = float(np.median([p.ttft_ms for p in rows]))
        tpot, ttft = per_family.setdefault(FAMILY[rows[0].model], ([], []))
        tpot += [abs(p.tpot_ms / t_med - 1) * 100 for p in rows]
        ttft += [abs(p.ttft_ms / f_med - 1) * 100 for p in rows]
    for fam in sorted(per_family):
        tpot, ttft = per_family[fam]
        print(f"| {fam} | {len(tpot)} | {np.mean(tpot):.1f} | {np.mean(ttft):.1f} |")
    everything = [v for tp, _ in per_family.values() for v in tp]
    everything_f = [v for _, tf in per_family.values() for v in tf]
    print(f"| all | {len(everything)} | {np.mean(everything):.1f} | {np.mean(everything_f):.1f} |")


def kernels_main(data: Path, holdout: bool, all_rows: bool) -> int:
    catalog = load_catalog()
    points = read_measured_points(data, moe=True)
    dropped = () if all_rows else inconsistent_points(points)
    n_read = len(points)
    if dropped:
        aside = point_costs(catalog, [x.point for x in dropped])
        _, a_tpot = predict_points(aside, shipped_overhead())
        print(f"set aside by the TPOT consistency rule ({len(dropped)} of {n_read} rows):\n")
        print("| row | reason | TPOT error % (shipped) |")
        print("|---|---|---|")
        for x, pred in zip(dropped, a_tpot, strict=True):
            p = x.point
            print(
                f"| {p.model} {p.gpu_type} TP{p.tp} {p.input_tokens}/{p.output_tokens} "
                f"c={p.concurrency} | {x.reason} | {(pred / p.tpot_ms - 1) * 100:+.0f} |"
            )
        points = consistent_points(points)
    items = point_costs(catalog, points)
    print(f"\n{len(items)} measured points (dense and MoE) from {data.name}")
    ttft, tpot = predict_points(items, shipped_overhead())
    _kernel_table(catalog, items, ttft, tpot, "In-sample (shipped engine overhead):")
    _repeat_scatter(items)
    if not holdout:
        return 0
    for kind, key in (
        ("family", lambda it: FAMILY[it.point.model]),
        ("GPU type", lambda it: it.point.gpu_type),
    ):
        out_ttft = np.empty(len(items))
        out_tpot = np.empty(len(items))
        for held in sorted({key(it) for it in items}):
            train = [it for it in items if key(it) != held]
            test = [i for i, it in enumerate(items) if key(it) == held]
            fitted = fit_overhead(train, source=f"fit without {held}")
            t1, t2 = predict_points([items[i] for i in test], fitted)
            out_ttft[test], out_tpot[test] = t1, t2
        _kernel_table(
            catalog,
            items,
            out_ttft,
            out_tpot,
            f"Leave-one-{kind}-out (engine overhead refitted without the held-out {kind}):",
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--source", choices=("kernels", "roofline"), default="kernels")
    parser.add_argument("--no-holdout", action="store_true", help="in-sample figures only")
    parser.add_argument(
        "--all-rows", action="store_true", help="keep the rows the consistency rule sets aside"
    )
    args = parser.parse_args()
    if args.source == "kernels":
        return kernels_main(args.data, not args.no_holdout, args.all_rows)
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
