"""The accuracy job: the analytic performance model against measured vLLM serving points."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from planner.profiles.calibrate import MeasuredPoint


@dataclass(frozen=True)
class PointAccuracy:
    """One measured point next to the model's prediction for it."""

    point: MeasuredPoint
    predicted_ttft_ms: float
    predicted_tpot_ms: float

    @property
    def ttft_error(self) -> float:
        """(predicted - measured) / measured."""
        return (self.predicted_ttft_ms - self.point.ttft_ms) / self.point.ttft_ms

    @property
    def tpot_error(self) -> float:
        return (self.predicted_tpot_ms - self.point.tpot_ms) / self.point.tpot_ms


def accuracy_job(measured_csv: Path, configs_dir: Path | None = None) -> tuple[PointAccuracy, ...]:
    """Predict TTFT and TPOT with the catalog's calibrated analytic model for every
    measured point the catalog models (an AIConfigurator `silicon` CSV, such as
    `../shared/data/calibration/vllm_measured_ttft_tpot.csv`).

    The shipped constants were fitted on these same points, so the errors are
    in-sample (benchmarks/profile_accuracy.py also reports leave-one-GPU-out).

    Raises:
        InputError: the CSV is missing or lacks a needed column.
    """
    from planner.io.calibration import read_measured_points
    from planner.io.configs import load_catalog
    from planner.profiles.calibrate import predict

    catalog = load_catalog(configs_dir)
    points = read_measured_points(measured_csv)
    predicted = predict(catalog, points)
    return tuple(
        PointAccuracy(p, float(ttft), float(tpot))
        for p, ttft, tpot in zip(points, predicted.ttft_ms, predicted.tpot_ms, strict=True)
    )
