"""Collected kernel tables -> the compact tables the step model reads (pure).

A kernel collection (`planner profile kernels -o DIR`, or AIConfigurator's collectors,
whose layout it copies: ../shared/data/kernels/<gpu>/) writes one Parquet file per
kernel family under DIR, with a `latency` column in ms and the family's key columns.
The step model reads compact tables (`planner.profiles.kernels.tables`): the keys it
looks up, `latency_ms` as float32, one row per key. `compact_table` does that reduction
for the shipped tables (benchmarks/build_kernel_tables.py) and for tables a user
collected (read by `planner.io.kernel_tables`), so both go through the same checks.

All-reduce backends: the shipped rows are vLLM's custom all-reduce captured in CUDA
graphs (`vllm_graph`) and run eagerly (`vllm_eager`); a torch collection measures one
`torch.distributed` all-reduce (`torch_nccl` on GPUs, `torch_gloo` on CPU), whose rows
answer both (vLLM falls back to that backend where its custom kernel does not run).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

#: Compact table name -> (file under a collection folder, key columns in lookup order).
COLLECTED: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "gemm": ("gemm/gemm_perf.parquet", ("gemm_dtype", "m", "n", "k")),
    "context_attention": (
        "attention/context_attention_perf.parquet",
        (
            "kv_cache_dtype",
            "head_dim",
            "window_size",
            "num_heads",
            "num_key_value_heads",
            "batch_size",
            "isl",
        ),
    ),
    "generation_attention": (
        "attention/generation_attention_perf.parquet",
        (
            "kv_cache_dtype",
            "head_dim",
            "window_size",
            "num_heads",
            "num_key_value_heads",
            "batch_size",
            "step",
        ),
    ),
    "moe": (
        "moe/moe_perf.parquet",
        (
            "moe_dtype",
            "distribution",
            "hidden_size",
            "inter_size",
            "topk",
            "num_experts",
            "moe_tp_size",
            "moe_ep_size",
            "num_tokens",
        ),
    ),
    "allreduce": ("comm/custom_allreduce_perf.parquet", ("backend", "num_gpus", "message_size")),
    "nccl": ("nccl/nccl_perf.parquet", ("op_name", "num_gpus", "message_size")),
    "mla_context": (
        "mla/mla_context_module_perf.parquet",
        ("kv_cache_dtype", "gemm_type", "num_heads", "batch_size", "isl"),
    ),
    "mla_generation": (
        "mla/mla_generation_module_perf.parquet",
        ("kv_cache_dtype", "gemm_type", "num_heads", "batch_size", "step"),
    ),
}

#: Families every kernel-composed prediction reads (a dense model on one device).
REQUIRED = ("gemm", "context_attention", "generation_attention")

#: The all-reduce backends the step model reads, per backend a collection may name.
ALLREDUCE_BACKENDS: Mapping[str, tuple[str, ...]] = {
    "vllm_graph": ("vllm_graph",),
    "vllm_eager": ("vllm_eager",),
    "torch_nccl": ("vllm_graph", "vllm_eager"),
    "torch_gloo": ("vllm_graph", "vllm_eager"),
}


class LayoutError(ValueError):
    """A collected table lacks a column or holds an impossible value (message: which)."""


def _select(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows the step model reads (the shipped collections hold more)."""
    if name == "moe":
        frame = frame[frame["distribution"].isin(["balanced", "power_law_1.01"])]
        frame = frame[frame["moe_tp_size"] * frame["moe_ep_size"] <= 8]
    if name == "nccl" and "nccl_dtype" in frame.columns:
        frame = frame[frame["nccl_dtype"] == "half"]
    if name in ("context_attention", "generation_attention"):
        frame = frame[frame["window_size"].isin([0, 128])]
    return frame


def compact_table(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """One collected table reduced to the step model's keys and `latency_ms` (float32),
    sorted, one row per key (the fastest, should a key repeat).

    Raises:
        LayoutError: a key or the latency column is missing, a latency is not a positive
            number, or an all-reduce backend is unknown.
    """
    keys = list(COLLECTED[name][1])
    if "window_size" in keys and "window_size" not in frame.columns:
        frame = frame.assign(window_size=0)  # older collectors: full attention only
    missing = [c for c in (*keys, "latency") if c not in frame.columns]
    if missing:
        raise LayoutError(f"lacks column(s) {', '.join(missing)}")
    latency = pd.to_numeric(frame["latency"], errors="coerce")
    if not (latency > 0).all():
        raise LayoutError("has latencies that are not positive numbers")
    if name == "allreduce":
        unknown = sorted(set(frame["backend"].astype(str)) - set(ALLREDUCE_BACKENDS))
        if unknown:
            raise LayoutError(
                f"names all-reduce backend(s) {', '.join(unknown)}; known: "
                f"{', '.join(ALLREDUCE_BACKENDS)}"
            )
        frame = pd.concat(
            [
                rows.assign(backend=target)
                for backend, rows in frame.groupby("backend", sort=True)
                for target in ALLREDUCE_BACKENDS[str(backend)]
            ],
            ignore_index=True,
        )
    frame = _select(name, frame)
    out = frame[keys].copy()
    for col in keys:
        if out[col].dtype.kind in "iu":
            out[col] = out[col].astype("int64")
        elif out[col].dtype.kind == "f":
            if not (out[col] == out[col].round()).all():
                raise LayoutError(f"has non-integer values in column {col}")
            out[col] = out[col].astype("int64")
        else:
            out[col] = out[col].astype(str)
    out["latency_ms"] = pd.to_numeric(frame["latency"]).astype("float32").to_numpy()
    return out.groupby(keys, as_index=False, sort=True).agg(latency_ms=("latency_ms", "min"))
