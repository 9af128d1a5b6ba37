"""Build the kernel tables shipped in planner/profiles/kernels/data from ../shared.

    PYTHONPATH=. python benchmarks/build_kernel_tables.py [--kernels DIR]

Keeps only what the step model reads (planner.profiles.kernels.layout.compact_table, the
reduction `planner` applies to tables collected with `planner profile kernels` too):
latency as float32, keys as int64/strings, the balanced and power-law-1.01 MoE routing
rows with at most 8 GPUs, the CUDA-graph and eager custom all-reduce, NCCL in half
precision, and the MLA modules. Writes deterministic zstd Parquet files and a
NOTICE with the source commit. Source: NVIDIA AIConfigurator (Apache-2.0).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from planner.profiles.kernels.layout import COLLECTED, LayoutError, compact_table  # noqa: E402

DEFAULT_KERNELS = REPO.parent / "shared" / "data" / "kernels"
OUT = REPO / "planner" / "profiles" / "kernels" / "data"

# Tables directories shipped: every system a catalog GPU maps to (configs/gpus kernel_tables).
SYSTEMS = (
    "h100_sxm",
    "h200_sxm",
    "b200_sxm",
    "b300_sxm",
    "gb200",
    "a100_sxm",
    "l40s",
    "rtx_pro_6000_server",
)


def _write(frame: pd.DataFrame, path: Path) -> int:
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", compression_level=19, store_schema=False)
    path.write_bytes(sink.getvalue())
    return len(sink.getvalue())


def build(kernels: Path) -> int:
    total = 0
    manifest = json.loads((kernels / "MANIFEST.json").read_text())
    for system in SYSTEMS:
        (OUT / system).mkdir(parents=True, exist_ok=True)
        for name, (rel, _) in COLLECTED.items():
            src = kernels / system / rel
            if not src.exists():
                print(f"{system}: no {rel}, skipped")
                continue
            try:
                out = compact_table(name, pd.read_parquet(src))
            except LayoutError as exc:
                print(f"{system}: {rel} {exc}, skipped")
                continue
            total += _write(out, OUT / system / f"{name}.parquet")
    notice = (
        "Kernel latency tables measured on real GPUs with vLLM by NVIDIA AIConfigurator\n"
        f"({manifest['source']}, commit {manifest['commit']},\n"
        "aic-core/src/aiconfigurator_core/systems/data), licensed under the Apache License,\n"
        "Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0). Copyright (c) 2025-2026\n"
        "NVIDIA CORPORATION & AFFILIATES. Reduced by benchmarks/build_kernel_tables.py to the\n"
        "columns and rows planner's step model reads; latencies unchanged (float32, ms).\n"
    )
    (OUT / "NOTICE").write_text(notice)
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kernels", type=Path, default=DEFAULT_KERNELS)
    args = parser.parse_args()
    total = build(args.kernels)
    print(f"wrote {OUT} ({total / 1e6:.2f} MB of Parquet)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
