"""Fit the analytic model's constants per GPU type and write them into configs/gpus/*.yaml.

    PYTHONPATH=. python benchmarks/calibrate.py            # fit and write
    PYTHONPATH=. python benchmarks/calibrate.py --check    # fit, compare, write nothing

Deterministic: the same CSV gives the same constants, byte for byte. GPU types without
measured points get the constants of the nearest measured type (TRANSFERS), and say so.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from planner.io.calibration import read_measured_points  # noqa: E402
from planner.io.configs import calibration_block, load_catalog, write_calibration  # noqa: E402
from planner.profiles.calibrate import (  # noqa: E402
    DATA_SOURCE,
    fit_calibration,
    mape,
    predict,
)

DEFAULT_DATA = REPO.parent / "shared" / "data" / "calibration" / "vllm_measured_ttft_tpot.csv"
# GPU types with no measured points -> (measured type whose constants they take, why).
TRANSFERS = {
    "H200-SXM-141GB": ("H100-SXM-80GB", "same Hopper die and NVLink4 fabric as H100"),
    "A100-SXM-80GB": ("H100-SXM-80GB", "nearest measured NVSwitch generation"),
    "A100-SXM-40GB": ("H100-SXM-80GB", "nearest measured NVSwitch generation"),
    "L40S-48GB": ("H100-SXM-80GB", "nearest measured GPU; L40S runs TP 1 only"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="measured points CSV")
    parser.add_argument("--configs", type=Path, default=REPO / "configs")
    parser.add_argument("--check", action="store_true", help="compare only, write nothing")
    args = parser.parse_args()

    catalog = load_catalog(args.configs)
    points = read_measured_points(args.data)
    fitted = {}
    for gpu in sorted({p.gpu_type for p in points}):
        rows = [p for p in points if p.gpu_type == gpu]
        models = ", ".join(sorted({p.model for p in rows}))
        tps = "/".join(str(t) for t in sorted({p.tp for p in rows}))
        cal = fit_calibration(
            catalog,
            rows,
            source=f"fit (benchmarks/calibrate.py) on {len(rows)} measured vLLM points of "
            f"{gpu}: {models}; TP {tps}; data: {DATA_SOURCE}",
        )
        pred = predict(catalog, rows, {gpu: cal})
        tpot = mape(pred.tpot_ms, __import__("numpy").array([p.tpot_ms for p in rows]))
        print(f"{gpu}: {len(rows)} points, fitted TPOT MAPE {tpot:.1f}%")
        fitted[gpu] = cal
    for gpu, (donor, why) in TRANSFERS.items():
        fitted[gpu] = replace(
            fitted[donor],
            source=f"transferred from {donor} (no measured points for {gpu}; {why})",
        )
    stale = []
    for gpu, cal in sorted(fitted.items()):
        path = args.configs / "gpus" / f"{gpu}.yaml"
        block = calibration_block(cal)
        if block not in path.read_text(encoding="utf-8"):
            stale.append(gpu)
            if not args.check:
                write_calibration(path, cal)
        print(block)
    if args.check and stale:
        print(f"stale calibration in: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
