"""Measure kernel latencies on the local device with torch: `planner profile kernels`.

GEMMs run `torch.nn.functional.linear` (what vLLM's unquantised linear layers call, on
CPU and GPU) per dtype the device supports: bfloat16 everywhere, plus FP8 per-tensor
(`torch._scaled_mm`) on GPUs that have it. Attention runs torch's
`scaled_dot_product_attention` (causal prompts; one-token decodes over a KV history)
with grouped KV heads; vLLM's own attention kernels take paged KV caches and engine
metadata that a standalone call cannot build, so they are not timed here. The
all-reduce runs `torch.distributed.all_reduce` on bfloat16 messages across the devices
(gloo on CPU, NCCL on GPUs), one process per device, when there is more than one.

On CPU a "device" is the cores one vLLM engine would get (`threads`, default 1: the
CPU backend binds one engine per core group), so all-reduce ranks = cores // threads.
Each latency is the median of `repeats` timed batches, each batch long enough
(`_MIN_BATCH_S`) for the clock; torch is imported only here (the `vllm` extra).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

from planner.errors import InputError
from planner.io.atomic import write_text_atomic
from planner.profiles.kernel_grid import (
    ALLREDUCE_TABLE,
    CONTEXT_TABLE,
    GEMM_TABLE,
    GENERATION_TABLE,
    Device,
    KernelGrid,
    kernel_table,
)

_MIN_BATCH_S = {"cpu": 0.002, "cuda": 0.001}
_WARMUP = 2
_COLLECTIVE_ITERS = 20
FRAMEWORK = "torch"

#: Called after each measured shape: (done, total, table name).
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class KernelRun:
    """What a collection wrote."""

    files: tuple[Path, ...]
    rows: dict[str, int]  # table -> rows
    device_name: str
    devices: int
    wall_s: float


def collect_kernels(
    device: Device,
    grid: KernelGrid,
    out: Path,
    *,
    repeats: int = 5,
    threads: int = 1,
    devices: int | None = None,
    progress: Progress | None = None,
) -> KernelRun:
    """Measure `grid` on `device` and write the tables (and system.yaml) under `out`.

    Raises:
        InputError: torch is missing, or CUDA is asked for on a machine without a GPU.
    """
    torch = _torch()
    started = time.perf_counter()
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: torch sees no CUDA GPU here; use --device cpu")
    if device == "cpu":
        torch.set_num_threads(threads)
        available = max(1, len(os.sched_getaffinity(0)) // threads)
    else:
        available = torch.cuda.device_count()
    ranks = min(devices or available, available)
    name = _device_name(torch, device)
    meta = {"framework": FRAMEWORK, "version": str(torch.__version__), "device": name}
    bench = _Bench(torch, device, repeats)
    total = grid.size() * len(bench.gemm_dtypes()) + (
        len(grid.allreduce_elements) if ranks > 1 else 0
    )
    done = 0

    def step(table: str) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total, table)

    tables: dict[str, list[dict[str, Any]]] = {
        GEMM_TABLE: [],
        CONTEXT_TABLE: [],
        GENERATION_TABLE: [],
    }
    for dtype, source in bench.gemm_dtypes().items():
        for m in grid.gemm_m:
            for n, k in grid.gemm_nk:
                ms = bench.gemm(dtype, m, n, k)
                tables[GEMM_TABLE].append(
                    {**meta, "op_name": "gemm", "kernel_source": source, "gemm_dtype": dtype,
                     "m": m, "n": n, "k": k, "latency": ms}
                )  # fmt: skip
                step("gemm")
    for heads in grid.heads:
        shape = {
            "num_heads": heads.num_heads,
            "num_key_value_heads": heads.num_key_value_heads,
            "head_dim": heads.head_dim,
            "beam_width": 1,
            "attn_dtype": "bfloat16",
            "kv_cache_dtype": "bfloat16",
            "window_size": 0,
            "kernel_source": "torch_sdpa",
        }
        for batch, isl in grid.context:
            ms = bench.attention(heads.num_heads, heads.num_key_value_heads, heads.head_dim,
                                 batch, isl, isl, causal=True)  # fmt: skip
            tables[CONTEXT_TABLE].append(
                {**meta, **shape, "op_name": "context_attention", "batch_size": batch,
                 "isl": isl, "step": 0, "latency": ms}
            )  # fmt: skip
            step("context_attention")
        for batch, history in grid.generation:
            ms = bench.attention(heads.num_heads, heads.num_key_value_heads, heads.head_dim,
                                 batch, 1, history + 1, causal=False)  # fmt: skip
            tables[GENERATION_TABLE].append(
                {**meta, **shape, "op_name": "generation_attention", "batch_size": batch,
                 "isl": 1, "step": history, "latency": ms}
            )  # fmt: skip
            step("generation_attention")
    if ranks > 1:
        tables[ALLREDUCE_TABLE] = [
            {**meta, "op_name": "all_reduce", "kernel_source": f"torch.distributed.{backend}",
             "allreduce_dtype": "bfloat16", "num_gpus": ranks, "message_size": size,
             "latency": ms, "backend": f"torch_{backend}"}
            for size, ms, backend in _allreduce(device, ranks, grid.allreduce_elements,
                                                repeats, threads)
        ]  # fmt: skip
        for _ in grid.allreduce_elements:
            step("all_reduce")
    files: list[Path] = []
    for table, rows in tables.items():
        path = out / table
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(kernel_table(table, rows), path)
        files.append(path)
    files.append(_write_system(out, name, device, ranks, tables[GEMM_TABLE], torch))
    wall = time.perf_counter() - started
    counts = {t: len(r) for t, r in tables.items()}
    return KernelRun(tuple(files), counts, name, ranks, wall)


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise InputError(
            "measuring kernels needs torch; install the extra: pip install 'planner[vllm]'"
        ) from None
    return torch


def _device_name(torch: Any, device: Device) -> str:
    if device == "cuda":
        return str(torch.cuda.get_device_name(0))
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


class _Bench:
    def __init__(self, torch: Any, device: Device, repeats: int) -> None:
        self.torch = torch
        self.device = device
        self.repeats = repeats

    def sync(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def time_ms(self, fn: Callable[[], object], iters: int | None = None) -> float:
        """Median ms per call over `repeats` batches of `iters` calls (None: as many as
        make a batch last `_MIN_BATCH_S`; collectives pass a fixed count, since every rank
        must make the same number of calls)."""
        for _ in range(_WARMUP):
            fn()
        self.sync()
        floor = _MIN_BATCH_S[self.device]
        if iters is None:
            iters = 1
            while True:
                t = time.perf_counter()
                for _ in range(iters):
                    fn()
                self.sync()
                if time.perf_counter() - t >= floor or iters >= 4096:
                    break
                iters *= 2
        samples = []
        for _ in range(self.repeats):
            t = time.perf_counter()
            for _ in range(iters):
                fn()
            self.sync()
            samples.append((time.perf_counter() - t) / iters)
        return 1000 * statistics.median(samples)

    def gemm_dtypes(self) -> dict[str, str]:
        """dtype -> kernel source, for the dtypes this device runs."""
        out = {"bfloat16": "torch.nn.functional.linear"}
        if self.device == "cuda" and hasattr(self.torch, "_scaled_mm"):
            major, minor = self.torch.cuda.get_device_capability(0)
            if (major, minor) >= (8, 9):  # FP8 tensor cores: Ada, Hopper and newer
                out["fp8"] = "torch._scaled_mm"
        return out

    def gemm(self, dtype: str, m: int, n: int, k: int) -> float:
        torch = self.torch
        x = torch.randn(m, k, device=self.device).to(torch.bfloat16)
        w = torch.randn(n, k, device=self.device).to(torch.bfloat16)
        if dtype == "bfloat16":
            return self.time_ms(lambda: torch.nn.functional.linear(x, w))
        xf, wf = x.to(torch.float8_e4m3fn), w.to(torch.float8_e4m3fn)
        one = torch.ones((), device=self.device)
        return self.time_ms(
            lambda: torch._scaled_mm(xf, wf.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
        )

    def attention(
        self, heads: int, kv_heads: int, dim: int, batch: int, q_len: int, kv_len: int,
        causal: bool,
    ) -> float:  # fmt: skip
        torch = self.torch
        bf16 = torch.bfloat16
        q = torch.randn(batch, heads, q_len, dim, device=self.device).to(bf16)
        k = torch.randn(batch, kv_heads, kv_len, dim, device=self.device).to(bf16)
        v = torch.randn(batch, kv_heads, kv_len, dim, device=self.device).to(bf16)
        sdpa = torch.nn.functional.scaled_dot_product_attention
        return self.time_ms(lambda: sdpa(q, k, v, is_causal=causal, enable_gqa=True))


def _allreduce(
    device: Device, ranks: int, sizes: tuple[int, ...], repeats: int, threads: int
) -> list[tuple[int, float, str]]:
    """(elements, ms, backend) per message size, from `ranks` spawned processes."""
    import torch.multiprocessing as tmp

    backend = "nccl" if device == "cuda" else "gloo"
    ctx = tmp.get_context("spawn")
    queue = ctx.SimpleQueue()
    port = _free_port()
    procs = [
        ctx.Process(
            target=_allreduce_worker,
            args=(rank, ranks, port, backend, device, sizes, repeats, threads, queue),
        )
        for rank in range(ranks)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    if failed:
        raise InputError(f"the all-reduce processes failed (exit codes {failed})")
    result: list[tuple[int, float]] = queue.get()
    return [(size, ms, backend) for size, ms in result]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _allreduce_worker(
    rank: int, ranks: int, port: int, backend: str, device: str, sizes: tuple[int, ...],
    repeats: int, threads: int, queue: Any,
) -> None:  # fmt: skip
    import torch
    import torch.distributed as dist

    torch.set_num_threads(threads)
    if device == "cpu":  # one rank per core group, as vLLM binds TP ranks on CPU
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, cores[rank * threads : (rank + 1) * threads])
    else:
        torch.cuda.set_device(rank)
    dist.init_process_group(
        backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=ranks
    )
    dev = device if device == "cpu" else f"cuda:{rank}"
    bench = _Bench(torch, "cuda" if device == "cuda" else "cpu", repeats)
    out = []
    for size in sizes:
        x = torch.ones(size, dtype=torch.bfloat16, device=dev)
        dist.barrier()
        out.append((size, bench.time_ms(partial(dist.all_reduce, x), iters=_COLLECTIVE_ITERS)))
    dist.barrier()
    if rank == 0:
        queue.put(out)
    dist.destroy_process_group()


def _write_system(
    out: Path, name: str, device: Device, ranks: int, gemm_rows: list[dict[str, Any]], torch: Any
) -> Path:
    """system.yaml beside the tables: the device, its memory, and the peak bf16 GEMM
    rate measured here (the largest GEMM's FLOP/s), as the shipped files record datasheet
    figures."""
    peak = max(
        (2.0 * r["m"] * r["n"] * r["k"] / (r["latency"] / 1000) for r in gemm_rows
         if r["gemm_dtype"] == "bfloat16"),
        default=0.0,
    )  # fmt: skip
    if device == "cuda":
        memory = int(torch.cuda.get_device_properties(0).total_memory)
    else:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    doc = {
        "device": name,
        "measured_by": "planner profile kernels",
        "gpu": {"mem_capacity": memory, "bfloat16_tc_flops": float(f"{peak:.4g}")},
        "node": {"num_gpus_per_node": ranks},
    }
    path = out / "system.yaml"
    write_text_atomic(path, yaml.safe_dump(doc, sort_keys=False))
    return path
