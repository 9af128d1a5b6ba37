"""What `planner profile kernels` measures, and the tables it writes (pure).

The tables have exactly the layout and schema of the measured kernel tables in
`../shared/data/kernels/<gpu>/` (REFERENCE.md section 7; collected by AIConfigurator), so
the kernel-composed step model reads a table measured here like a shipped one:

- gemm/gemm_perf.parquet: framework, version, device, op_name, kernel_source,
  gemm_dtype, m, n, k, latency
- attention/context_attention_perf.parquet and generation_attention_perf.parquet:
  framework, version, device, op_name, kernel_source, batch_size, isl, num_heads,
  num_key_value_heads, head_dim, beam_width, attn_dtype, kv_cache_dtype, step,
  window_size, latency (generation: isl 1, step = KV history)
- comm/custom_allreduce_perf.parquet: framework, version, device, op_name, kernel_source,
  allreduce_dtype, num_gpus, message_size, latency, backend

`latency` is in ms per kernel call; heads are per device; `message_size` counts elements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa

Device = Literal["cpu", "cuda"]

_ATTENTION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("framework", "string"),
    ("version", "string"),
    ("device", "string"),
    ("op_name", "string"),
    ("kernel_source", "string"),
    ("batch_size", "int64"),
    ("isl", "int64"),
    ("num_heads", "int64"),
    ("num_key_value_heads", "int64"),
    ("head_dim", "int64"),
    ("beam_width", "int64"),
    ("attn_dtype", "string"),
    ("kv_cache_dtype", "string"),
    ("step", "int64"),
    ("window_size", "int64"),
    ("latency", "double"),
)

#: Table file (relative to the output folder) -> (column, Arrow type), in file order.
TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "gemm/gemm_perf.parquet": (
        ("framework", "string"),
        ("version", "string"),
        ("device", "string"),
        ("op_name", "string"),
        ("kernel_source", "string"),
        ("gemm_dtype", "string"),
        ("m", "int64"),
        ("n", "int64"),
        ("k", "int64"),
        ("latency", "double"),
    ),
    "attention/context_attention_perf.parquet": _ATTENTION_COLUMNS,
    "attention/generation_attention_perf.parquet": _ATTENTION_COLUMNS,
    "comm/custom_allreduce_perf.parquet": (
        ("framework", "string"),
        ("version", "string"),
        ("device", "string"),
        ("op_name", "string"),
        ("kernel_source", "string"),
        ("allreduce_dtype", "string"),
        ("num_gpus", "int64"),
        ("message_size", "int64"),
        ("latency", "double"),
        ("backend", "string"),
    ),
}
GEMM_TABLE = "gemm/gemm_perf.parquet"
CONTEXT_TABLE = "attention/context_attention_perf.parquet"
GENERATION_TABLE = "attention/generation_attention_perf.parquet"
ALLREDUCE_TABLE = "comm/custom_allreduce_perf.parquet"

_ARROW = {"string": pa.string(), "int64": pa.int64(), "double": pa.float64()}


@dataclass(frozen=True)
class HeadShape:
    """Attention heads per device: query heads, KV heads, head size."""

    num_heads: int
    num_key_value_heads: int
    head_dim: int


@dataclass(frozen=True)
class KernelGrid:
    """The shapes one collection measures.

    Attributes:
        gemm_m: token counts; gemm_nk: (n, k) feature pairs (output, input).
        heads: attention head shapes (per device).
        context: (batch_size, isl) prompt batches.
        generation: (batch_size, step) decode batches at a KV history.
        allreduce_elements: all-reduce message sizes in elements.
    """

    gemm_m: tuple[int, ...]
    gemm_nk: tuple[tuple[int, int], ...]
    heads: tuple[HeadShape, ...]
    context: tuple[tuple[int, int], ...]
    generation: tuple[tuple[int, int], ...]
    allreduce_elements: tuple[int, ...]

    def size(self) -> int:
        """Kernel shapes per dtype (for progress)."""
        return (
            len(self.gemm_m) * len(self.gemm_nk)
            + len(self.heads) * (len(self.context) + len(self.generation))
            + len(self.allreduce_elements)
        )


def _pow2(lo: int, hi: int) -> tuple[int, ...]:
    out, x = [], lo
    while x <= hi:
        out.append(x)
        x *= 2
    return tuple(out)


#: Minutes on two CPU cores: the shapes small models (hidden 256-4096) run at.
SMALL_GRID = KernelGrid(
    gemm_m=(1, 4, 16, 64, 256),
    gemm_nk=((256, 256), (768, 256), (1024, 256), (256, 512), (512, 512), (1536, 512),
             (2048, 512), (512, 1024), (1024, 1024), (4096, 1024)),
    heads=(HeadShape(4, 2, 64), HeadShape(8, 4, 64)),
    context=((1, 64), (1, 256), (1, 512), (4, 128)),
    generation=((1, 128), (4, 128), (16, 128), (4, 512)),
    allreduce_elements=_pow2(256, 262144),
)  # fmt: skip

#: GPU-sized shapes (what the shipped tables cover for 8B-70B dense models).
FULL_GRID = KernelGrid(
    gemm_m=_pow2(1, 16384),
    gemm_nk=tuple(
        (n, k)
        for k in (1024, 2048, 4096, 5120, 8192)
        for n in (1024, 2048, 4096, 6144, 8192, 14336, 28672)
    ),
    heads=(HeadShape(8, 1, 128), HeadShape(16, 2, 128), HeadShape(32, 8, 128),
           HeadShape(64, 8, 128), HeadShape(16, 4, 64)),
    context=tuple((b, s) for b in (1, 2, 4, 8) for s in (128, 512, 1024, 2048, 4096, 8192)),
    generation=tuple((b, s) for b in (1, 8, 32, 64, 128, 256) for s in (128, 1024, 4096, 16384)),
    allreduce_elements=_pow2(128, 33554432),
)  # fmt: skip

GRIDS: Mapping[str, KernelGrid] = {"small": SMALL_GRID, "full": FULL_GRID}


def kernel_table(name: str, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Rows as an Arrow table with exactly the shipped table's columns, types and order
    (no pandas or other schema metadata), sorted by every column but the latency.

    Raises:
        KeyError: `name` is not one of TABLES (a bug, not input).
    """
    columns = TABLES[name]
    keys = [c for c, _ in columns if c != "latency"]
    ordered = sorted(rows, key=lambda r: tuple(r[k] for k in keys))
    arrays = [pa.array([r[c] for r in ordered], type=_ARROW[t]) for c, t in columns]
    return pa.Table.from_arrays(arrays, schema=pa.schema([(c, _ARROW[t]) for c, t in columns]))
