"""How fast the simulator replays workflows: 100,000 workflows, about a million calls.

Builds a seeded synthetic CallTable (every workflow: planner call -> 4 parallel worker
calls -> a tool call -> planner call -> 2 parallel reranker calls -> planner call, with
random durations and token counts), then times `compile_workload` and the event loop
separately, on three models with profile-like latency curves (latency growing with
concurrency, KV caches of 64-256 mean calls, admission by tokens), at 80% of the
replicas' capacity.

    PYTHONPATH=$PWD python benchmarks/simulate_speed.py [--workflows 100000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from planner.simulate import ArrivalSpec, Replica, ServerCurve, compile_workload, simulate_workload
from planner.types.calls import CALL_COLUMNS, CallTable

# (model, parallel calls) per stage; None marks the tool call.
STAGES: list[tuple[str | None, int]] = [
    ("planner", 1),
    ("worker", 4),
    (None, 1),
    ("planner", 1),
    ("reranker", 2),
    ("planner", 1),
]


def synthetic_calls(workflows: int, seed: int) -> CallTable:
    rng = np.random.default_rng(seed)
    wf_start = np.sort(rng.uniform(0, workflows / 5.0, workflows))
    t = wf_start.copy()
    parts = []
    for model, k in STAGES:
        dur = rng.gamma(2.0, 0.5 if model else 0.3, size=(workflows, k))
        start = np.repeat(t[:, None], k, axis=1) + rng.uniform(0, 0.05, size=(workflows, 1))
        end = start + dur
        parts.append(
            pd.DataFrame(
                {
                    "workflow_id": np.repeat(np.arange(workflows), k),
                    "kind": "llm" if model else "tool",
                    "model": model,
                    "start_s": start.ravel(),
                    "end_s": end.ravel(),
                    "input_tokens": rng.integers(200, 4000, workflows * k) if model else 0,
                    "output_tokens": rng.integers(20, 600, workflows * k) if model else 0,
                }
            )
        )
        t = end.max(axis=1)
    frame = pd.concat(parts, ignore_index=True)
    frame["workflow_id"] = "wf" + frame["workflow_id"].astype(str)
    frame["workflow_type"] = "bench"
    frame["status"] = "ok"
    for col in CALL_COLUMNS:
        if col not in frame:
            frame[col] = np.nan
    return CallTable(frame[list(CALL_COLUMNS)].astype(CALL_COLUMNS))


def curve(alone_s: float, cap: int) -> ServerCurve:
    # e2e(n) = alone * (1 + n / 32): the shape of a decode-bound vLLM replica.
    n = np.arange(cap + 1, dtype=float)
    speed = 1.0 / (1.0 + np.maximum(n, 1) / 32.0) * (1 + 1 / 32.0)
    # KV cache for `cap` calls of the mean footprint (2,100 + 310 tokens): admission by tokens.
    return ServerCurve(speed, 0.2 * alone_s, 0.8 * alone_s, 2100.0, 310.0, kv_tokens=cap * 2410.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    t0 = time.perf_counter()
    calls = synthetic_calls(args.workflows, args.seed)
    t1 = time.perf_counter()
    workload = compile_workload(calls)
    t2 = time.perf_counter()
    index = {m: i for i, m in enumerate(workload.models)}
    replicas = (
        [Replica(index["planner"], curve(1.0, 64)) for _ in range(4)]
        + [Replica(index["worker"], curve(1.0, 256)) for _ in range(4)]
        + [Replica(index["reranker"], curve(0.5, 128)) for _ in range(2)]
    )
    # Capacity-bound rate: min over models of replicas x capacity / calls per workflow.
    n_m = workload.llm_calls_per_workflow()
    bound = min(
        sum(r.curve.capacity_per_s for r in replicas if r.model == m) / n_m[m]
        for m in range(len(workload.models))
    )
    spec = ArrivalSpec(0.8 * bound, workflows=args.workflows)
    t3 = time.perf_counter()
    res = simulate_workload(workload, replicas, spec, seed=args.seed, warmup_s=60.0)
    t4 = time.perf_counter()
    print(f"workflows            {args.workflows}")
    print(f"calls (incl. tools)  {res.calls_simulated}")
    print(f"build table          {t1 - t0:.1f} s")
    print(f"compile_workload     {t2 - t1:.1f} s")
    print(f"event loop           {t4 - t3:.1f} s")
    print(f"compile + simulate   {t4 - t1:.1f} s")
    print(f"calls per second     {res.calls_simulated / (t4 - t3):,.0f}")
    print(f"offered rate         {res.offered_rate_per_s:.2f}/s (80% of bound {bound:.2f}/s)")
    print(f"throughput           {res.throughput_per_s:.2f}/s")
    print(f"latency mean/p95     {res.latency_s.mean:.2f} / {res.latency_s.p95:.2f} s")


if __name__ == "__main__":
    main()
