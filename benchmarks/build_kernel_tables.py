"""Build the kernel tables shipped in planner/profiles/kernels/data from ../shared.

    PYTHONPATH=. python benchmarks/build_kernel_tables.py [--kernels DIR]

Keeps only what the step model reads (planner.profiles.kernels.tables documents the
columns): latency as float32, keys as int32/strings, the balanced and power-law-1.01
MoE routing rows with at most 8 GPUs, the CUDA-graph and eager custom all-reduce, NCCL
in half precision, and the MLA modules. Writes deterministic zstd Parquet files and a
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

TABLES: dict[str, tuple[str, list[str]]] = {
    "gemm": ("gemm/gemm_perf.parquet", ["gemm_dtype", "m", "n", "k"]),
    "context_attention": (
        "attention/context_attention_perf.parquet",
        [
            "kv_cache_dtype",
            "head_dim",
            "window_size",
            "num_heads",
            "num_key_value_heads",
            "batch_size",
            "isl",
        ],
    ),
    "generation_attention": (
        "attention/generation_attention_perf.parquet",
        [
            "kv_cache_dtype",
            "head_dim",
            "window_size",
            "num_heads",
            "num_key_value_heads",
            "batch_size",
            "step",
        ],
    ),
    "moe": (
        "moe/moe_perf.parquet",
        [
            "moe_dtype",
            "distribution",
            "hidden_size",
            "inter_size",
            "topk",
            "num_experts",
            "moe_tp_size",
            "moe_ep_size",
            "num_tokens",
        ],
    ),
    "allreduce": ("comm/custom_allreduce_perf.parquet", ["backend", "num_gpus", "message_size"]),
    "nccl": ("nccl/nccl_perf.parquet", ["op_name", "num_gpus", "message_size"]),
    "mla_context": (
        "mla/mla_context_module_perf.parquet",
        ["kv_cache_dtype", "gemm_type", "num_heads", "batch_size", "isl"],
    ),
    "mla_generation": (
        "mla/mla_generation_module_perf.parquet",
        ["kv_cache_dtype", "gemm_type", "num_heads", "batch_size", "step"],
    ),
}


def _select(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    if name == "moe":
        frame = frame[frame["distribution"].isin(["balanced", "power_law_1.01"])]
        frame = frame[frame["moe_tp_size"] * frame["moe_ep_size"] <= 8]
    if name == "nccl":
        frame = frame[frame["nccl_dtype"] == "half"]
    if name in ("context_attention", "generation_attention"):
        frame = frame[frame["window_size"].isin([0, 128])]
    return frame


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
        for name, (rel, keys) in TABLES.items():
            src = kernels / system / rel
            if not src.exists():
                print(f"{system}: no {rel}, skipped")
                continue
            frame = pd.read_parquet(src)
            if "window_size" in keys and "window_size" not in frame.columns:
                frame = frame.assign(window_size=0)  # older collectors: full attention only
            missing = [c for c in keys if c not in frame.columns]
            if missing:
                print(f"{system}: {rel} lacks {missing}, skipped")
                continue
            frame = _select(name, frame)
            out = frame[keys].copy()
            for col in keys:
                if out[col].dtype.kind in "iu":
                    out[col] = out[col].astype("int64")
                else:
                    out[col] = out[col].astype(str)
            out["latency_ms"] = frame["latency"].astype("float32").to_numpy()
            # One row per key (the collectors log one kernel per key; keep the fastest
            # should a key repeat).
            out = out.groupby(keys, as_index=False, sort=True)["latency_ms"].min()
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
