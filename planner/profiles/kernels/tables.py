"""Measured kernel latencies of one GPU type: shipped inside the package, or collected.

Shipped: `planner/profiles/kernels/data/<system>/*.parquet` (built from AIConfigurator's
collected data by benchmarks/build_kernel_tables.py; attribution in `data/NOTICE`).
Collected: `planner profile kernels` output under a profiles folder, reduced to the same
compact tables (`planner.profiles.kernels.layout`, read by `planner.io.kernel_tables`).
Latency in ms per kernel call on one GPU:

- gemm: gemm_dtype (bfloat16, fp8, fp8_block, nvfp4), m tokens, n out and k in features;
- context_attention: kv_cache_dtype, head_dim, window_size, heads and KV heads per GPU,
  batch_size prompts x isl;
- generation_attention: the same head keys, batch_size sequences, step = KV history;
- moe: moe_dtype, distribution, hidden_size, inter_size (per expert), topk,
  num_experts, moe_tp_size, moe_ep_size, num_tokens;
- allreduce: backend (vllm_graph, vllm_eager), num_gpus, message_size (BF16 elements);
- nccl: op_name, num_gpus, message_size (FP16 elements);
- mla_context / mla_generation: kv_cache_dtype, gemm_type, heads per GPU, batch_size,
  isl / step (KV length including the new token).

Lookups are vectorised over the token (or batch) axis and return (latency_ms,
extrapolated) arrays; `planner.profiles.kernels.interp` does the log-space work.
A key the tables lack (a model's exact head count, MoE shape or dtype) is answered from
the nearest measured one, scaled by the ratio of work, and flagged as extrapolated.
"""

from __future__ import annotations

import functools
import importlib.resources
import io
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from planner.catalog import ModelSpec
from planner.errors import ProfileError
from planner.profiles.kernels.interp import LogGrid, log_grid
from planner.profiles.kernels.layout import COLLECTED

DATA_PACKAGE = "planner.profiles.kernels"
Lookup = tuple[np.ndarray, np.ndarray]
_EMPTY = pd.DataFrame()

# Log-log slopes beyond the measured range: time grows in proportion to work above the
# largest size and stays at the launch-bound floor below the smallest.
_UP, _FLAT = 1.0, 0.0

# Systems whose MLA module rows are read from another system's tables (documented table
# correction). B300's MLA rows sit 1.5-2x above B200's at every size (batch 4 decode:
# 0.09 ms flat in the KV length, B200 0.046 ms, H200 0.10 ms), although B300 has B200's
# HBM3e bandwidth (7.75 vs 7.7 TB/s, AIConfigurator system files) and at least its
# compute: a collector-side floor, not GPU time. Read as measured, Kimi-K2.5-NVFP4 on
# B300 comes out 1.48x slow (TPOT) against measured serving, against 1.05x on B200.
_MLA_FROM = {"b300_sxm": "b200_sxm"}


@functools.cache
def shipped_systems() -> tuple[str, ...]:
    """The GPU systems whose tables ship in the package."""
    root = importlib.resources.files(DATA_PACKAGE).joinpath("data")
    return tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))


@functools.cache
def _read(system: str, table: str) -> pd.DataFrame:
    resource = importlib.resources.files(DATA_PACKAGE).joinpath("data", system, f"{table}.parquet")
    if not resource.is_file():
        return pd.DataFrame()
    frame: pd.DataFrame = pq.read_table(io.BytesIO(resource.read_bytes())).to_pandas()
    return frame


_ATTENTION_KEYS = ("kv_cache_dtype", "head_dim", "window_size", "num_heads", "num_key_value_heads")
_MOE_KEYS = (
    "moe_dtype",
    "distribution",
    "moe_tp_size",
    "moe_ep_size",
    "hidden_size",
    "inter_size",
    "topk",
    "num_experts",
)


def _split(frame: pd.DataFrame, keys: tuple[str, ...]) -> dict[tuple[Any, ...], pd.DataFrame]:
    if frame.empty:
        return {}
    return {
        tuple(k) if isinstance(k, tuple) else (k,): g
        for k, g in frame.groupby(list(keys), sort=True)
    }


@functools.cache
def _groups(system: str, table: str, keys: tuple[str, ...]) -> dict[tuple[Any, ...], pd.DataFrame]:
    """A shipped table split once by `keys`."""
    return _split(_read(system, table), keys)


def _nearest(values: np.ndarray, wanted: float) -> float:
    """The value in `values` nearest to `wanted` in log space (ties: the larger)."""
    logs = np.abs(np.log(values.astype(float)) - math.log(max(wanted, 1e-9)))
    best = np.flatnonzero(logs == logs.min())
    return float(values[best[-1]])


class KernelTables:
    """The kernel tables of one GPU system; grids are built lazily.

    Args:
        system: a shipped system (e.g. `h100_sxm`), or, with `frames`, a name for the
            tables in messages (the folder they were read from).
        frames: compact tables by name (`planner.profiles.kernels.layout.COLLECTED`),
            e.g. collected on the machine at hand; None: the shipped system's.

    Raises:
        ProfileError: `system` is not shipped and no frames were given.
    """

    def __init__(self, system: str, frames: Mapping[str, pd.DataFrame] | None = None) -> None:
        if frames is None and system not in shipped_systems():
            raise ProfileError(
                f"no kernel tables for '{system}'; shipped: {', '.join(shipped_systems())}"
            )
        self.system = system
        self._frames = None if frames is None else dict(frames)
        self._split: dict[tuple[str, tuple[str, ...]], dict[tuple[Any, ...], pd.DataFrame]] = {}
        self._grids: dict[tuple[object, ...], tuple[LogGrid, float, bool]] = {}

    def frame(self, table: str) -> pd.DataFrame:
        """One compact table (empty when the system has none)."""
        if self._frames is None:
            return _read(self.system, table)
        return self._frames.get(table, _EMPTY)

    def families(self) -> tuple[str, ...]:
        """The tables this system has rows in, sorted."""
        return tuple(sorted(t for t in COLLECTED if not self.frame(t).empty))

    def missing_for(self, model: ModelSpec, gpus: int, dp: int = 1) -> tuple[str, ...]:
        """Tables a kernel-composed step of `model` on `gpus` devices (TP) with `dp`
        data-parallel attention ranks needs and this system lacks (empty: the step model
        can answer). DP ranks gather and scatter the experts' tokens over NCCL."""
        need = ["gemm"]
        if model.is_mla:
            need += ["mla_context", "mla_generation"]
        else:
            need += ["context_attention", "generation_attention"]
        if model.is_moe:
            need.append("moe")
        missing = [t for t in need if self.frame(t).empty]
        if model.is_mla and self._frames is None and self.system in _MLA_FROM:
            missing = [t for t in missing if not t.startswith("mla_")]
        if gpus > 1 and self.frame("allreduce").empty and self.frame("nccl").empty:
            missing.append("allreduce")
        if dp > 1 and self.frame("nccl").empty:
            missing.append("nccl")
        return tuple(missing)

    def _groups(self, table: str, keys: tuple[str, ...]) -> dict[tuple[Any, ...], pd.DataFrame]:
        """A table split once by `keys` (lookups then pick groups by plain tuple keys)."""
        if self._frames is None:
            return _groups(self.system, table, keys)
        split = self._split.get((table, keys))
        if split is None:
            split = _split(self.frame(table), keys)
            self._split[(table, keys)] = split
        return split

    # ---- GEMM --------------------------------------------------------------------

    def gemm_dtypes(self) -> tuple[str, ...]:
        return tuple(sorted(self.frame("gemm")["gemm_dtype"].unique()))

    def gemm(self, dtype: str, n: int, k: int, m: np.ndarray) -> Lookup:
        """One linear layer: `m` tokens x (k -> n) features."""
        key = ("gemm", dtype)
        if key not in self._grids:
            frame = self.frame("gemm")
            rows = frame[frame["gemm_dtype"] == dtype]
            fallback = False
            if rows.empty:  # e.g. NVFP4 on Hopper: the nearest format the GPU runs
                for alt in ("fp8_block", "fp8", "bfloat16"):
                    rows = frame[frame["gemm_dtype"] == alt]
                    if not rows.empty:
                        fallback = True
                        break
            grid = log_grid(rows, ["m", "n", "k"], (_FLAT, _FLAT, _FLAT), (_UP, _UP, _UP))
            self._grids[key] = (grid, 1.0, fallback)
        grid, scale, fallback = self._grids[key]
        ms, extra = grid(m, float(n), float(k))
        if dtype == "fp8_block" and "fp8" in self.gemm_dtypes():
            # The block-scaled FP8 rows carry a size-independent floor (about 0.06 ms on
            # H100, 0.15-0.28 ms on B200/B300, flat up to thousands of tokens) that is
            # host-side work of the eager collector, not GPU time: where both are
            # compute-bound the block and per-tensor kernels take the same time, and
            # block-FP8 MiniMax-M2.5 decodes on 2x B200 in 9.6 ms (measured TPOT), under
            # the 33 ms its 124 block-FP8 GEMMs per step would take at that floor.
            # Block-scaled GEMMs therefore cost at most the per-tensor kernel.
            ms_tensor, _ = self.gemm("fp8", n, k, m)
            ms = np.minimum(ms * scale, ms_tensor)
            return ms, extra | fallback
        return ms * scale, extra | fallback

    # ---- attention -----------------------------------------------------------------

    def _attention_grid(
        self,
        table: str,
        kv_dtype: str,
        head_dim: int,
        window: int,
        heads: int,
        kv_heads: int,
    ) -> tuple[LogGrid, float, bool]:
        key = (table, kv_dtype, head_dim, window, heads, kv_heads)
        if key in self._grids:
            return self._grids[key]
        groups = self._groups(table, _ATTENTION_KEYS)
        flagged = False
        keys = [k for k in groups if k[0] == kv_dtype]
        if not keys:
            keys, flagged = [k for k in groups if k[0] == "bfloat16"], True
        scale = 1.0
        dim = int(_nearest(np.array(sorted({k[1] for k in keys})), head_dim))
        if dim != head_dim:
            scale *= head_dim / dim
            flagged = True
        keys = [k for k in keys if k[1] == dim]
        windows = sorted({k[2] for k in keys})
        if window not in windows:
            flagged = True
            window = 0 if 0 in windows else int(windows[0])
        keys = [k for k in keys if k[2] == window]
        exact = [k for k in keys if (k[3], k[4]) == (heads, kv_heads)]
        if exact:
            chosen = exact[0]
        else:
            flagged = True
            # Same KV-head count if measured, else the nearest; then the nearest head
            # count. Work scales with heads (context: FLOPs per query head; generation:
            # KV bytes per KV head).
            same_kv = [k for k in keys if k[4] == kv_heads]
            if not same_kv:
                kv = _nearest(np.array(sorted({k[4] for k in keys})), kv_heads)
                same_kv = [k for k in keys if k[4] == kv]
            h = _nearest(np.array(sorted({k[3] for k in same_kv})), heads)
            chosen = next(k for k in same_kv if k[3] == h)
            scale *= heads / h if table == "context_attention" else kv_heads / chosen[4]
        rows = groups[chosen]
        seq = "isl" if table == "context_attention" else "step"
        # Context attention grows with the square of the prompt above the largest length.
        slope_seq = 2.0 if table == "context_attention" else _UP
        grid = log_grid(rows, ["batch_size", seq], (_FLAT, _FLAT), (_UP, slope_seq))
        self._grids[key] = (grid, scale, flagged)
        return self._grids[key]

    def context_attention(
        self,
        kv_dtype: str,
        head_dim: int,
        window: int,
        heads: int,
        kv_heads: int,
        batch: np.ndarray,
        isl: np.ndarray,
    ) -> Lookup:
        """Prefill attention of `batch` prompts of `isl` tokens (heads per GPU)."""
        grid, scale, flagged = self._attention_grid(
            "context_attention", kv_dtype, head_dim, window, heads, kv_heads
        )
        ms, extra = grid(batch, isl)
        return ms * scale, extra | flagged

    def generation_attention(
        self,
        kv_dtype: str,
        head_dim: int,
        window: int,
        heads: int,
        kv_heads: int,
        batch: np.ndarray,
        step: np.ndarray,
    ) -> Lookup:
        """Decode attention of `batch` sequences with `step` tokens of KV history."""
        grid, scale, flagged = self._attention_grid(
            "generation_attention", kv_dtype, head_dim, window, heads, kv_heads
        )
        ms, extra = grid(batch, step)
        return ms * scale, extra | flagged

    # ---- MLA -----------------------------------------------------------------------

    def mla(
        self,
        phase: str,
        kv_dtype: str,
        gemm_type: str,
        heads: int,
        batch: np.ndarray,
        seq: np.ndarray,
    ) -> Lookup:
        """A whole MLA attention module (projections included), heads per GPU.

        `phase` is `context` (seq = prompt length) or `generation` (seq = KV length
        including the new token).
        """
        table = f"mla_{phase}"
        key = (table, kv_dtype, gemm_type, heads)
        if key not in self._grids:
            frame = (
                self.frame(table)
                if self._frames is not None or self.system not in _MLA_FROM
                else _read(_MLA_FROM[self.system], table)
            )
            if frame.empty:
                raise ProfileError(f"{self.system}: no measured MLA modules")
            flagged = False
            rows = frame[frame["kv_cache_dtype"] == kv_dtype]
            if rows.empty:
                rows, flagged = frame[frame["kv_cache_dtype"] == "bfloat16"], True
            types = rows["gemm_type"].unique()
            if gemm_type not in types:
                gemm_type, flagged = ("fp8_block" if "fp8_block" in types else types[0]), True
            rows = rows[rows["gemm_type"] == gemm_type]
            h = _nearest(rows["num_heads"].unique(), heads)
            scale = heads / h
            flagged |= h != heads
            rows = rows[rows["num_heads"] == h]
            seq_key = "isl" if phase == "context" else "step"
            slope = 2.0 if phase == "context" else _UP
            grid = log_grid(rows, ["batch_size", seq_key], (_FLAT, _FLAT), (_UP, slope))
            self._grids[key] = (grid, scale, flagged)
        grid, scale, flagged = self._grids[key]
        ms, extra = grid(batch, seq)
        return ms * scale, extra | flagged

    # ---- MoE -----------------------------------------------------------------------

    def moe_dtypes(self) -> tuple[str, ...]:
        return tuple(sorted(self.frame("moe")["moe_dtype"].unique()))

    def moe(
        self,
        dtype: str,
        hidden: int,
        inter: int,
        topk: int,
        experts: int,
        moe_tp: int,
        moe_ep: int,
        tokens: np.ndarray,
        distribution: str = "power_law_1.01",
    ) -> Lookup:
        """One rank's fused MoE layer (router + experts, no communication)."""
        key = ("moe", dtype, hidden, inter, topk, experts, moe_tp, moe_ep, distribution)
        if key not in self._grids:
            self._grids[key] = self._moe_grid(
                dtype, hidden, inter, topk, experts, moe_tp, moe_ep, distribution
            )
        grid, scale, flagged = self._grids[key]
        ms, extra = grid(tokens)
        return ms * scale, extra | flagged

    def _moe_grid(
        self,
        dtype: str,
        hidden: int,
        inter: int,
        topk: int,
        experts: int,
        moe_tp: int,
        moe_ep: int,
        distribution: str,
    ) -> tuple[LogGrid, float, bool]:
        groups = self._groups("moe", _MOE_KEYS)
        flagged = False
        keys = [k for k in groups if k[0] == dtype]
        if not keys:
            for alt in (*_MOE_FALLBACK.get(dtype, ()), "fp8_block", "bfloat16"):
                keys = [k for k in groups if k[0] == alt]
                if keys:
                    flagged = True
                    break
        by_dist = [k for k in keys if k[1] == distribution]
        keys = by_dist or [k for k in keys if k[1] == "balanced"]
        par = [k for k in keys if (k[2], k[3]) == (moe_tp, moe_ep)]
        if not par:  # the nearest split measured: the same total split, else none
            flagged = True
            par = [k for k in keys if k[2] * k[3] == moe_tp * moe_ep]
            par = par or [k for k in keys if (k[2], k[3]) == (1, 1)]
        wanted = np.log([hidden, inter, topk, experts])
        shapes = np.array([k[4:8] for k in par], dtype=float)
        distance = np.abs(np.log(shapes) - wanted).sum(axis=1)
        best = par[int(np.argmin(distance))]
        scale = 1.0
        if float(distance.min()) > 1e-9:
            flagged = True
            # Expert work per token: topk experts of hidden x inter (FLOPs and, at small
            # batches, bytes of the experts touched) relative to the measured shape.
            scale = (hidden * inter * topk) / (best[4] * best[5] * best[6])
        if moe_tp * moe_ep != best[2] * best[3]:
            scale *= best[2] * best[3] / (moe_tp * moe_ep)
        chosen = groups[best]
        grid = log_grid(chosen, ["num_tokens"], (_FLAT,), (_UP,))
        return grid, scale, flagged

    # ---- communication -------------------------------------------------------------

    def allreduce(self, gpus: int, elements: np.ndarray, graph: bool = True) -> Lookup:
        """vLLM's custom all-reduce of `elements` BF16 values across `gpus` GPUs.

        More GPUs than any custom all-reduce row (a TP group across the nodes of a
        multi-node NVLink domain, GB200 NVL72: the GB200 rows stop at one 4-GPU tray):
        vLLM's custom kernel does not cover them and NCCL reduces, so the NCCL
        `all_reduce` rows answer (`nccl`, with its extrapolation in GPU count)."""
        if gpus <= 1:
            zero = np.zeros_like(np.asarray(elements, dtype=float))
            return zero, zero.astype(bool)
        measured = self.frame("allreduce")
        if measured.empty or gpus > int(measured["num_gpus"].max()):
            if self.frame("nccl").empty:  # a collection without NCCL rows: the largest count
                ms, _ = self.allreduce(int(measured["num_gpus"].max()), elements, graph)
                return ms, np.ones_like(ms, dtype=bool)
            return self.nccl("all_reduce", gpus, elements)
        key = ("allreduce", gpus, graph)
        if key not in self._grids:
            frame = self.frame("allreduce")
            backend = "vllm_graph" if graph else "vllm_eager"
            rows = frame[frame["backend"] == backend]
            if rows.empty:
                rows = frame
            counts = rows["num_gpus"].unique()
            n = int(counts[counts >= gpus].min()) if (counts >= gpus).any() else int(counts.max())
            rows = rows[rows["num_gpus"] == n]
            grid = log_grid(rows, ["message_size"], (_FLAT,), (_UP,))
            self._grids[key] = (grid, 1.0, n != gpus)
        grid, scale, flagged = self._grids[key]
        ms, extra = grid(elements)
        return ms * scale, extra | flagged

    def nccl(self, op: str, gpus: int, elements: np.ndarray) -> Lookup:
        """An NCCL collective (`all_gather`, `reduce_scatter`, `alltoall`, `all_reduce`).

        Above the largest measured GPU count n (a TP group across the trays of a
        multi-node NVLink domain: the GB200 rows stop at 4 GPUs), every further doubling
        of the GPUs costs, per message size, what the last measured doubling cost:
        t(g) = t(n) x (t(n) / t(m)) ^ (log2(g / n) / log2(n / m)), m the next measured count
        below n, the ratio at least 1. Backtest: predicting the 8-GPU rows from the 2- and
        4-GPU ones is within -12% .. +20% on H100 and B200 (docs/profiles-kernels.md).
        Flagged extrapolated."""
        if gpus <= 1:
            zero = np.zeros_like(np.asarray(elements, dtype=float))
            return zero, zero.astype(bool)
        frame = self.frame("nccl")
        counts = sorted(int(c) for c in frame[frame["op_name"] == op]["num_gpus"].unique())
        if gpus > counts[-1] and len(counts) > 1:
            n, m = counts[-1], counts[-2]
            top, top_flag = self.nccl(op, n, elements)
            below, below_flag = self.nccl(op, m, elements)
            ratio = np.maximum(top / np.maximum(below, 1e-12), 1.0)
            grown = top * ratio ** (math.log2(gpus / n) / math.log2(n / m))
            return grown, np.ones_like(top_flag | below_flag, dtype=bool)
        key = ("nccl", op, gpus)
        if key not in self._grids:
            rows = frame[frame["op_name"] == op]
            n = min((c for c in counts if c >= gpus), default=counts[-1])
            rows = rows[rows["num_gpus"] == n]
            grid = log_grid(rows, ["message_size"], (_FLAT,), (_UP,))
            self._grids[key] = (grid, 1.0, n != gpus)
        grid, scale, flagged = self._grids[key]
        ms, extra = grid(elements)
        return ms * scale, extra | flagged


# MoE formats a GPU may lack, and what vLLM runs instead (Hopper has no NVFP4 MoE kernel).
_MOE_FALLBACK: dict[str, tuple[str, ...]] = {
    "nvfp4": ("w4a16_mxfp4", "fp8_block"),
    "w4a16_mxfp4": ("int4_wo", "fp8_block"),
    "int4_wo": ("w4a16_mxfp4", "fp8_block"),
}


@functools.cache
def kernel_tables(system: str) -> KernelTables:
    """The (cached) tables of one system."""
    return KernelTables(system)
