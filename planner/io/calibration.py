"""Read measured vLLM serving points (the calibration CSV) into `MeasuredPoint`s."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from planner.errors import InputError
from planner.profiles.calibrate import SYSTEM_TO_GPU, MeasuredPoint, catalog_name

COLUMNS = (
    "model_path",
    "system",
    "precision",
    "isl",
    "osl",
    "batch_size",
    "tp_size",
    "silicon_ttft_ms",
    "silicon_tpot_ms",
)


def read_measured_points(path: Path, moe: bool = False) -> list[MeasuredPoint]:
    """Rows of an AIConfigurator-style `silicon` CSV that map to catalog models and GPUs.

    Rows for GPUs or models the catalog does not model are skipped; mixture-of-experts
    rows only count with `moe=True` (the roofline does not model them). Expert
    parallelism is read from the row id (`expert_parallel`).

    Raises:
        InputError: the file is missing or lacks a needed column.
    """
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot read measured points ({exc})") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    frame = frame.fillna({"precision": ""})
    ids = frame["id"].astype(str) if "id" in frame.columns else pd.Series([""] * len(frame))
    try:
        numbers = frame[list(COLUMNS[3:])].astype(float).to_numpy()
    except ValueError as exc:
        raise InputError(f"{path}: a numeric column holds text ({exc})") from None
    points = []
    names = zip(
        frame["system"].astype(str),
        frame["model_path"].astype(str),
        frame["precision"].astype(str),
        ids,
        strict=True,
    )
    for (system, model_path, precision, row_id), row in zip(names, numbers, strict=True):
        gpu = SYSTEM_TO_GPU.get(system)
        model = catalog_name(model_path, precision, moe)
        if gpu is None or model is None:
            continue
        isl, osl, concurrency, tp, ttft, tpot = row
        points.append(
            MeasuredPoint(
                model=model,
                gpu_type=gpu,
                tp=int(tp),
                input_tokens=int(isl),
                output_tokens=int(osl),
                concurrency=int(concurrency),
                ttft_ms=float(ttft),
                tpot_ms=float(tpot),
                expert_parallel=expert_parallel(row_id),
            )
        )
    return points


_EP = re.compile(r"_tp(\d+)(?:_\d+)?_ep(\d+)(?:_\d+)?(?:_|$)")


def expert_parallel(row_id: str) -> bool:
    """Whether a row ran with --enable-expert-parallel: its id names `_tp<T>_ep<E>_` (or
    `_tp<T>_0_ep<E>_0_`) with E > 1 (the CSV has no EP column; `ep1`/`epnone` and ids
    without it ran MoE-TP)."""
    found = _EP.search(row_id)
    return found is not None and int(found.group(2)) > 1
