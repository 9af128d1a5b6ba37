"""Kernel tables collected on the user's hardware, found in a profiles folder.

`<profiles>/kernels/<gpu type>/` holds what `planner profile kernels -o` wrote there
(or an AIConfigurator collection in the same layout: `gemm/gemm_perf.parquet`,
`attention/*_attention_perf.parquet`, `comm/custom_allreduce_perf.parquet`, and
optionally `moe/`, `nccl/`, `mla/`). The folder is named by the catalog GPU type (its
name or an alias). Its tables answer that GPU type's kernel-composed predictions in
preference to the shipped ones; families it lacks (MoE on a CPU collection) come from
the shipped system the catalog entry names (`kernel_tables:`), if any, else predictions
that need them fall back to the roofline.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from planner.catalog import Catalog, resolve_gpu
from planner.errors import PlannerError, ProfileError
from planner.profiles.kernels.layout import COLLECTED, REQUIRED, LayoutError, compact_table
from planner.profiles.kernels.tables import KernelTables, shipped_systems
from planner.types.names import GpuType

KERNELS_SUBDIR = "kernels"


def read_collected_tables(folder: Path, base: str = "") -> KernelTables:
    """The kernel tables of one collection folder, over `base`'s shipped families.

    Args:
        folder: a `planner profile kernels -o` output folder.
        base: a shipped system whose tables fill the families the folder lacks ("" none).

    Raises:
        ProfileError: the folder lacks a required table, or a table is unreadable or
            malformed (the message names the file and how to re-collect).
    """
    fix = f"re-collect with `planner profile kernels -o {folder}`"
    frames: dict[str, pd.DataFrame] = {}
    for name, (rel, _) in COLLECTED.items():
        path = folder / rel
        if not path.is_file():
            continue
        try:
            raw = pq.read_table(path).to_pandas()
        except (OSError, pa.ArrowException) as exc:
            raise ProfileError(f"{path}: not a readable Parquet table ({exc}); {fix}") from exc
        try:
            frames[name] = compact_table(name, raw)
        except LayoutError as exc:
            raise ProfileError(f"{path}: {exc}; {fix}") from None
        if frames[name].empty:
            raise ProfileError(f"{path}: no measured rows; {fix}")
    lacking = [COLLECTED[name][0] for name in REQUIRED if name not in frames]
    if lacking:
        raise ProfileError(f"{folder}: incomplete kernel tables, no {', '.join(lacking)}; {fix}")
    if base:
        shipped = KernelTables(base)
        for name in COLLECTED:
            if name not in frames and not shipped.frame(name).empty:
                frames[name] = shipped.frame(name)
    return KernelTables(str(folder), frames)


def collected_kernel_tables(profiles_dir: Path, catalog: Catalog) -> dict[GpuType, KernelTables]:
    """Every collection under `profiles_dir/kernels/`, by catalog GPU type (no folder:
    none).

    Raises:
        ProfileError: a folder names no catalog GPU type, two name the same one, or a
            collection is malformed.
    """
    root = profiles_dir / KERNELS_SUBDIR
    if not root.is_dir():
        return {}
    found: dict[GpuType, KernelTables] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            gpu = resolve_gpu(catalog, folder.name)
        except PlannerError as exc:
            raise ProfileError(f"{folder}: kernel tables of an unknown GPU type: {exc}") from None
        if gpu.name in found:
            raise ProfileError(
                f"{folder}: a second kernel-table folder for GPU type {gpu.name} "
                f"(also {found[gpu.name].system}); keep one"
            )
        base = gpu.kernel_tables if gpu.kernel_tables in shipped_systems() else ""
        found[gpu.name] = read_collected_tables(folder, base)
    return found
