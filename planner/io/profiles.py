"""Stored profile points on disk: Parquet files under `profiles/`, and bench JSON imports.

One file per (source, model, GPU type): `profiles/<source>--<model>--<gpu>.parquet`
(names sanitised). Writes are atomic and deterministic: rows sorted by key, fixed
Parquet settings (no pandas index, no creation metadata), so the same points give the
same bytes.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from planner.catalog import Catalog
from planner.errors import InputError
from planner.io.atomic import write_bytes_atomic
from planner.profiles import ProfileTable
from planner.profiles.imported import ImportOverrides, bench_result_to_point
from planner.profiles.points import (
    KEY_COLUMNS,
    POINT_COLUMNS,
    empty_points,
    merge_points,
    normalise_points,
    points_frame,
)
from planner.profiles.replayed import ShapeOverride, is_replay_result, replay_result_to_points

PROFILES_DIR = Path(__file__).resolve().parents[2] / "profiles"

_ARROW_TYPES = {"object": pa.string(), "int64": pa.int64(), "float64": pa.float64()}
SCHEMA = pa.schema([pa.field(c, _ARROW_TYPES[t]) for c, t in POINT_COLUMNS.items()])


def profile_file_name(source: str, model: str, gpu_type: str) -> str:
    """`<source>--<model>--<gpu>.parquet` with anything but [A-Za-z0-9._-] replaced by `_`."""

    def clean(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "_"

    return f"{clean(source)}--{clean(model)}--{clean(gpu_type)}.parquet"


def points_to_parquet_bytes(points: pd.DataFrame) -> bytes:
    """Serialise a normalised points table with fixed settings (byte-stable)."""
    table = pa.Table.from_pandas(normalise_points(points), schema=SCHEMA, preserve_index=False)
    table = table.replace_schema_metadata(None)  # pandas metadata would carry nothing we need
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        compression_level=3,
        use_dictionary=True,
        write_statistics=True,
        version="2.6",
        data_page_version="1.0",
        store_schema=False,
    )
    return sink.getvalue()


def read_points_file(path: Path) -> pd.DataFrame:
    """One stored Parquet file as a normalised points table.

    Raises:
        InputError: the file is unreadable or misses a column of the schema.
    """
    try:
        frame = pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{path}: not a readable Parquet profile file ({exc})") from exc
    return normalise_points(frame, str(path))


def read_points(profiles_dir: Path) -> pd.DataFrame:
    """Every `*.parquet` file under `profiles_dir` (missing directory: no points)."""
    if not profiles_dir.is_dir():
        return empty_points()
    frames = [read_points_file(p) for p in sorted(profiles_dir.glob("*.parquet"))]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return empty_points()
    return normalise_points(pd.concat(frames, ignore_index=True))


def write_points(
    points: pd.DataFrame, profiles_dir: Path, replace_on: Sequence[str] = KEY_COLUMNS
) -> list[Path]:
    """Merge `points` into the stored files (rows agreeing on `replace_on` are replaced).

    Returns:
        The files written, sorted.
    """
    written: list[Path] = []
    if points.empty:
        return written
    for (source, model, gpu), group in points.groupby(["source", "model", "gpu_type"], sort=True):
        path = profiles_dir / profile_file_name(str(source), str(model), str(gpu))
        old = read_points_file(path) if path.exists() else empty_points()
        merged = merge_points(old, normalise_points(group), replace_on)
        write_bytes_atomic(path, points_to_parquet_bytes(merged))
        written.append(path)
    return written


def read_bench_results(
    paths: Sequence[Path],
    overrides: ImportOverrides,
    resolve_model: Callable[[str], str] | None = None,
    resolve_gpu: Callable[[str], str] | None = None,
) -> pd.DataFrame:
    """Parse `vllm bench serve --save-result` JSON files into imported points.

    All files are checked before anything is returned, so a bad file writes nothing.

    Raises:
        InputError: naming the file and the missing or malformed key.
    """
    return read_results(paths, overrides, resolve_model, resolve_gpu).bench_points


@dataclass(frozen=True)
class ImportedResults:
    """What `planner profile import` read.

    Attributes:
        bench_points: points of `vllm bench serve --save-result` files (source imported).
        replay_points: points of `planner replay --json` results (source measured).
        notes: replayed models that could not be filed, and why.
    """

    bench_points: pd.DataFrame
    replay_points: pd.DataFrame
    notes: tuple[str, ...]


def read_results(
    paths: Sequence[Path],
    overrides: ImportOverrides,
    resolve_model: Callable[[str], str] | None = None,
    resolve_gpu: Callable[[str], str] | None = None,
) -> ImportedResults:
    """Parse benchmark and replay result files (told apart by content).

    A replay result is filed under the shapes of the plan it was compared with, or under
    the overrides' GPU type, TP and fraction when it compared none. All files are checked
    before anything is returned, so a bad file writes nothing.

    Raises:
        InputError: naming the file and the missing or malformed key.
    """
    bench: list[dict[str, Any]] = []
    replayed: list[dict[str, Any]] = []
    notes: list[str] = []
    shape = (
        ShapeOverride(overrides.gpu_type, overrides.tp, overrides.gpu_fraction or 1.0)
        if overrides.gpu_type and overrides.tp
        else None
    )
    for path in paths:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise InputError(f"{path}: file not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: not valid JSON ({exc})") from exc
        if is_replay_result(data):
            rows, why = replay_result_to_points(
                data, str(path), resolve_model or (lambda n: n), shape
            )
            replayed += rows
            notes += [f"{path}: {n}" for n in why]
            continue
        bench.append(
            bench_result_to_point(
                data, str(path), overrides, "imported", resolve_model, resolve_gpu
            )
        )
    return ImportedResults(
        points_frame(bench, "imported files"),
        points_frame(replayed, "replay results"),
        tuple(notes),
    )


def load_profiles(
    profiles_dir: Path | None,
    catalog: Catalog,
    gpu_memory_utilization: float | None = None,
) -> ProfileTable:
    """The ProfileTable the planner uses: stored points (measured beats imported) over
    kernel-composed steps (GPU types with kernel tables: collected ones under
    `profiles_dir/kernels/<gpu type>/`, else shipped) over the roofline.

    Args:
        profiles_dir: folder of stored points and collected kernel tables (default: the
            repository's `profiles/`); an empty or missing folder leaves the shipped
            kernel tables and the roofline.
        catalog: models and GPUs.
        gpu_memory_utilization: vLLM's `--gpu-memory-utilization` of a whole GPU
            (default: planner's).
    """
    from planner.defaults import GPU_MEMORY_UTILIZATION
    from planner.io.kernel_tables import collected_kernel_tables
    from planner.profiles.kernels import KernelProfiles
    from planner.profiles.table import StoredProfiles

    folder = PROFILES_DIR if profiles_dir is None else profiles_dir
    util = GPU_MEMORY_UTILIZATION if gpu_memory_utilization is None else gpu_memory_utilization
    composed = KernelProfiles(catalog, util, tables=collected_kernel_tables(folder, catalog))
    points = read_points(folder)
    if points.empty:
        return composed
    return StoredProfiles(points, composed)
