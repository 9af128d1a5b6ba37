"""Fit the kernels source's engine overhead on the measured serving points and ship it.

    PYTHONPATH=. python benchmarks/fit_kernel_overhead.py [--data CSV] [--check]

Reads all measured vLLM points (dense and MoE) of ../shared/data/calibration, sets aside
the rows the stated consistency rule rejects (`planner.profiles.calibrate.
inconsistent_points`, printed with the reason), composes the kernel costs of the rest
with the shipped tables, fits the free constants of `EngineOverhead`
(planner.profiles.kernels.fit) and writes
planner/profiles/kernels/data/engine_overhead.json. `--check` only prints the fit and
says whether the shipped file matches.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from planner.io.calibration import read_measured_points  # noqa: E402
from planner.io.configs import load_catalog  # noqa: E402
from planner.profiles.calibrate import (  # noqa: E402
    DATA_SOURCE,
    consistent_points,
    inconsistent_points,
)
from planner.profiles.kernels import OVERHEAD_FILE  # noqa: E402
from planner.profiles.kernels.fit import fit_overhead, point_costs  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "calibration" / "vllm_measured_ttft_tpot.csv"
OUT = REPO / "planner" / "profiles" / "kernels" / "data" / OVERHEAD_FILE


def overhead_json(data: Path) -> str:
    catalog = load_catalog()
    points = read_measured_points(data, moe=True)
    dropped = inconsistent_points(points)
    for x in dropped:
        p = x.point
        print(
            f"set aside: {p.model} {p.gpu_type} TP{p.tp} {p.input_tokens}/{p.output_tokens} "
            f"c={p.concurrency}: {x.reason}",
            file=sys.stderr,
        )
    items = point_costs(catalog, consistent_points(points))
    models = sorted({it.point.model for it in items})
    gpus = sorted({it.point.gpu_type for it in items})
    source = (
        f"fit (benchmarks/fit_kernel_overhead.py) on {len(items)} measured vLLM points "
        f"({len(dropped)} set aside by the TPOT consistency rule) "
        f"of {', '.join(gpus)}: {', '.join(models)}; data: {DATA_SOURCE}"
    )
    fitted = asdict(fit_overhead(items, source=source))
    rounded = {k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in fitted.items()}
    return json.dumps(rounded, indent=2) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--check", action="store_true", help="print only; compare to shipped")
    args = parser.parse_args()
    text = overhead_json(args.data)
    print(text, end="")
    if args.check:
        same = OUT.exists() and OUT.read_text() == text
        print("shipped file matches" if same else "shipped file differs")
        return 0 if same else 1
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
