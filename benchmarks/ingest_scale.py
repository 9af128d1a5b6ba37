"""Ingest + aggregate 10 million calls from Parquet: wall time and peak memory.

    PYTHONPATH=. python benchmarks/ingest_scale.py [--calls 10000000]

A child process writes a synthetic canonical trace (three workflow types, five models,
fan-out, tool rows, a few errors) to a temporary Parquet file; this process then times
`read_calls` and `aggregate_pipeline` and reports its own peak RSS (resource.getrusage),
so generation does not count. Target (issue 2): < 20 s and < 2 GB on 2 cores.
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


def generate(path: Path, calls: int, seed: int = 7) -> None:
    """Write `calls` canonical rows (~CALLS_PER_WORKFLOW per workflow) to Parquet."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n_wf = calls // CALLS_PER_WORKFLOW
    writer = None
    chunk = 1_000_000
    wf_types = pa.array(["rag", "beam", "coding"])
    models = pa.array(["llama-8b", "llama-70b", "qwen3-32b", "reranker-0.6b", "verifier-8b"])
    statuses = pa.array(["ok", "error", "retry"])
    kinds = pa.array(["llm", "tool"])
    for first in range(0, calls, chunk):
        n = min(chunk, calls - first)
        row = np.arange(first, first + n)
        wf = row // CALLS_PER_WORKFLOW
        position = row % CALLS_PER_WORKFLOW
        wf_start = wf * (86_400.0 / n_wf)  # one day of workflow arrivals
        # Calls of one workflow: a chain with fan-out (positions 3-6 start together).
        offset = np.where((position >= 3) & (position <= 6), 3.0, position.astype(float))
        start = wf_start + offset + rng.uniform(0, 0.2, n)
        duration = rng.lognormal(-0.5, 0.6, n)
        is_tool = rng.random(n) < 0.05
        model = np.where(is_tool, -1, rng.integers(0, 5, n))
        ids = pa.array(np.char.add("wf-", wf.astype(str)))
        table = pa.table(
            {
                "workflow_id": ids,
                "workflow_type": pa.DictionaryArray.from_arrays(pa.array(wf % 3), wf_types),
                "kind": pa.DictionaryArray.from_arrays(pa.array(is_tool.astype(np.int8)), kinds),
                "model": pa.DictionaryArray.from_arrays(pa.array(model, mask=model < 0), models),
                "start_time": start,
                "end_time": start + duration,
                "input_tokens": np.where(is_tool, 0, rng.integers(50, 8000, n)),
                "output_tokens": np.where(is_tool, 0, rng.integers(1, 1000, n)),
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
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--generate-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate_only:
        generate(args.generate_only, args.calls)
        return

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "calls.parquet"
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--calls", str(args.calls), "--generate-only", str(path)],
            check=True,
        )
        print(
            f"generated {args.calls:,} calls ({path.stat().st_size / 2**20:.0f} MiB Parquet) "
            f"in {time.perf_counter() - t0:.1f} s"
        )

        os.sync()  # flush the generator's writes so they are not timed as reading

        from planner.aggregate import aggregate_pipeline
        from planner.io.traces import read_calls

        c0, t0 = time.process_time(), time.perf_counter()
        calls = read_calls(path)
        c1, t1 = time.process_time(), time.perf_counter()
        apl = aggregate_pipeline(calls)
        c2, t2 = time.process_time(), time.perf_counter()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    frame_mib = calls.frame.memory_usage(deep=True).sum() / 2**20
    workflows = sum(w.workflow_count for w in apl.workflows)
    print(f"read_calls:          {t1 - t0:6.2f} s wall  {c1 - c0:6.2f} s CPU", end="  ")
    print(f"({len(calls):,} calls, CallTable {frame_mib:.0f} MiB)")
    print(f"aggregate_pipeline:  {t2 - t1:6.2f} s wall  {c2 - c1:6.2f} s CPU", end="  ")
    print(f"({workflows:,} workflows, {len(apl.workflows)} types)")
    print(f"total:               {t2 - t0:6.2f} s wall  {c2 - c0:6.2f} s CPU")
    print(f"peak RSS:            {peak_mib:6.0f} MiB")


if __name__ == "__main__":
    main()
