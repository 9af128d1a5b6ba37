"""The workload study (`characterise_workload`) on millions of calls: wall time and memory.

    PYTHONPATH=. python benchmarks/characterise_scale.py [--calls 1000000]

A child process writes a synthetic agentic trace to a temporary Parquet file: workflows of
ten calls (planner, two explorers, four parallel workers, two reviewers, a verifier),
parent ids along the chain (the workers all children of the second explorer), 5% tool
rows, a few errors and retries, three workflow types. This process times `read_calls`
and `characterise_workload` and reports its own peak RSS (generation does not count).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CALLS_PER_WORKFLOW = 10
ROLES = ("planner", "explorer", "explorer", "worker", "worker", "worker", "worker",
         "reviewer", "reviewer", "verifier")  # fmt: skip
PARENT = (-1, 0, 1, 2, 2, 2, 2, 6, 7, 8)  # position of each position's parent


def generate(path: Path, calls: int, seed: int = 7) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n_wf = calls // CALLS_PER_WORKFLOW
    writer = None
    chunk = 1_000_000
    wf_types = pa.array(["rag", "beam", "coding"])
    models = pa.array(["llama-8b", "llama-70b", "qwen3-32b", "reranker-0.6b", "verifier-8b"])
    roles = pa.array(sorted(set(ROLES)))
    role_code = np.array([sorted(set(ROLES)).index(r) for r in ROLES])
    parent_pos = np.array(PARENT)
    statuses = pa.array(["ok", "error", "retry"])
    kinds = pa.array(["llm", "tool"])
    for first in range(0, calls, chunk):
        n = min(chunk, calls - first)
        row = np.arange(first, first + n)
        wf = row // CALLS_PER_WORKFLOW
        position = row % CALLS_PER_WORKFLOW
        wf_start = wf * (86_400.0 / n_wf)
        offset = np.where((position >= 3) & (position <= 6), 3.0, position.astype(float))
        start = wf_start + offset + rng.uniform(0, 0.2, n)
        duration = rng.lognormal(-0.5, 0.6, n)
        is_tool = rng.random(n) < 0.05
        model = np.where(is_tool, -1, rng.integers(0, 5, n))
        prefix = np.char.add(np.char.add("wf-", wf.astype(str)), "/")
        call_id = np.char.add(prefix, position.astype(str))
        parent = np.char.add(prefix, np.maximum(parent_pos[position], 0).astype(str))
        table = pa.table(
            {
                "workflow_id": pa.array(np.char.add("wf-", wf.astype(str))),
                "workflow_type": pa.DictionaryArray.from_arrays(pa.array(wf % 3), wf_types),
                "kind": pa.DictionaryArray.from_arrays(pa.array(is_tool.astype(np.int8)), kinds),
                "model": pa.DictionaryArray.from_arrays(pa.array(model, mask=model < 0), models),
                "agent": pa.DictionaryArray.from_arrays(pa.array(role_code[position]), roles),
                "call_id": pa.array(call_id),
                "parent_call_id": pa.array(parent, mask=parent_pos[position] < 0),
                "start_time": start,
                "end_time": start + duration,
                "input_tokens": np.where(is_tool, 0, rng.integers(50, 8000, n)),
                "output_tokens": np.where(is_tool, 0, rng.integers(1, 1000, n)),
                "cached_input_tokens": np.where(is_tool, 0, rng.integers(0, 50, n)),
                "status": pa.DictionaryArray.from_arrays(
                    pa.array(rng.choice(3, n, p=[0.98, 0.01, 0.01]).astype(np.int8)), statuses
                ),
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--generate-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate_only:
        generate(args.generate_only, args.calls)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "calls.parquet"
        subprocess.run(
            [sys.executable, __file__, "--calls", str(args.calls), "--generate-only", str(path)],
            check=True,
        )
        os.sync()
        from planner.io.traces import read_calls
        from planner.study import characterise_workload

        c0, t0 = time.process_time(), time.perf_counter()
        calls = read_calls(path)
        c1, t1 = time.process_time(), time.perf_counter()
        study = characterise_workload(calls)
        c2, t2 = time.process_time(), time.perf_counter()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    workflows = sum(w.workflow_count for w in study.workflows)
    print(f"read_calls:             {t1 - t0:6.2f} s wall  {c1 - c0:6.2f} s CPU", end="  ")
    print(f"({len(calls):,} calls)")
    print(f"characterise_workload:  {t2 - t1:6.2f} s wall  {c2 - c1:6.2f} s CPU", end="  ")
    print(f"({workflows:,} workflows)")
    print(f"peak RSS:               {peak_mib:6.0f} MiB")
    w = study.workflows[0]
    depth = w.depth.max if w.depth else None
    print(f"check: {w.workflow_type} shapes {dict(w.shapes)}, depth max {depth}")
    print(f"       pattern {w.patterns[0].pattern if w.patterns else None}")


if __name__ == "__main__":
    main()
