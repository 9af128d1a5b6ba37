"""Read trace files (Parquet, CSV, JSONL, OTLP/JSON; optionally gzipped) into a CallTable.

Files are streamed in batches; each batch is validated and normalised by the pure
`planner.ingest` functions and kept in compact form (categorical strings), so memory
grows with the calls kept, not with the file's text. A directory is read recursively in
sorted order; documentation, code and config files beside the traces are skipped.
"""

from __future__ import annotations

import csv
import gzip
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml

from planner.config import parse_config
from planner.errors import ConfigError, InputError
from planner.ingest.mapping import CANONICAL_INPUT_COLUMNS, IDENTITY, TraceMapping
from planner.ingest.normalise import BatchPosition, check_columns, normalise_batch
from planner.ingest.plausibility import (
    TimeStats,
    check_time_units,
    duplicates_error,
    find_duplicates,
    time_stats,
)
from planner.ingest.table import check_workflow_types, concat_calls
from planner.io.memory import release_freed_memory
from planner.io.trace_common import (
    READ_ERRORS,
    Batch,
    empty_batch,
    open_text,
    trace_suffix,
    unreadable,
)
from planner.io.trace_json import is_otlp_file, read_json, read_otlp
from planner.types.calls import KIND_LLM, CallTable

_LOG = logging.getLogger(__name__)

TRACE_SUFFIXES = (".parquet", ".csv", ".jsonl", ".json")
# Files that live beside traces (traces/README.md, generate.py, mappings/) and are skipped.
IGNORED_SUFFIXES = (".md", ".py", ".yaml", ".yml", ".txt")
BATCH_ROWS = 1 << 20


def load_mapping(path: Path) -> TraceMapping:
    """Read a YAML column mapping (see traces/README.md).

    Raises:
        ConfigError: missing file, bad YAML, unknown keys or values.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: mapping file not found; check the --mapping path") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"{path}: not valid YAML ({detail}); fix the syntax") from None
    return parse_config(data, TraceMapping, str(path))


def read_calls(
    path: Path, mapping: TraceMapping | None = None, *, skip_bad_rows: bool = False
) -> CallTable:
    """Read every trace file under `path` into one validated CallTable.

    Args:
        path: a trace file or a directory of them (read recursively, sorted).
        mapping: column mapping for tables that do not use canonical names (not applied
            to OTLP files, which have their own names).
        skip_bad_rows: drop invalid rows and count them by reason instead of failing.

    Raises:
        InputError: a missing path, unknown extension, empty or corrupt file, or bad row.
    """
    skipped_paths: list[str] = []
    files = trace_files(path, skipped=skipped_paths if skip_bad_rows else None)
    mapping = mapping or IDENTITY
    frames: list[pd.DataFrame] = []
    frame_files: list[int] = []  # index into `files` of each frame, for messages
    skipped: dict[str, int] = {}
    stats: dict[str, TimeStats] = {}
    otlp_files = [f for f in files if is_otlp_file(f)]
    if otlp_files:
        frame, counts = read_otlp(otlp_files, path, skip_bad_rows)
        frames.append(frame)
        frame_files.append(files.index(otlp_files[0]))
        skipped.update(counts)
        stats[str(otlp_files[0])] = time_stats([frame])
    for index, file in enumerate(files):
        if file in otlp_files:
            continue
        rows_in_file = 0
        file_frames = []
        for frame, counts in _read_file(file, mapping, skip_bad_rows):
            rows_in_file += len(frame) + sum(counts.values())
            for reason, count in counts.items():
                skipped[reason] = skipped.get(reason, 0) + count
            if len(frame):
                frames.append(frame)
                frame_files.append(index)
                file_frames.append(frame)
            release_freed_memory()
        _LOG.info("%s: %d rows", file, rows_in_file)
        if rows_in_file == 0:
            raise InputError(f"{file}: empty file (no calls); remove it or export the trace again")
        stats[str(file)] = time_stats(file_frames)
    check_time_units(stats, mapping.time_unit)
    sources = tuple(str(f) for f in files)
    kept = [(f, i) for f, i in zip(frames, frame_files, strict=True) if len(f)]
    frames = [f for f, _ in kept]
    if not frames:
        raise InputError(
            f"{path}: every row was skipped as bad ({_describe(skipped)}); fix the file or "
            "its --mapping"
        )
    file_of_row = np.repeat([i for _, i in kept], [len(f) for f in frames])
    table = concat_calls(frames)
    release_freed_memory()
    table = _without_duplicates(table, sources, file_of_row, skip_bad_rows, skipped)
    check_workflow_types(table, sources)
    llm = np.asarray(table["kind"].array == KIND_LLM)  # on codes, no string objects
    has_end_times = not bool(table["end_s"].isna().to_numpy()[llm].any())
    notes = []
    if mapping.serving_level:
        notes.append("serving-level trace: each request is treated as a workflow of one call")
    if not has_end_times:
        notes.append("some calls have no end time: latency statistics are not available")
    notes += [f"skipped {p}" for p in skipped_paths]
    return CallTable(
        frame=table,
        sources=sources,
        has_end_times=has_end_times,
        skipped_rows=dict(sorted(skipped.items())),
        notes=tuple(notes),
    )


def _without_duplicates(
    table: pd.DataFrame,
    sources: tuple[str, ...],
    file_of_row: np.ndarray,
    skip: bool,
    skipped: dict[str, int],
) -> pd.DataFrame:
    """The table without repeated calls (skip), or InputError naming the first repeat."""
    found = find_duplicates(table, sources, file_of_row)
    if not found.any:
        return table
    if not skip:
        raise duplicates_error(found)
    for reason, count in found.counts().items():
        skipped[reason] = skipped.get(reason, 0) + count
    keep = ~(found.exact | found.call_id)
    return pd.DataFrame({name: table[name].array[keep] for name in table.columns}, copy=False)


def trace_files(path: Path, *, skipped: list[str] | None = None) -> list[Path]:
    """The trace files at `path`: the file itself, or the directory's, recursively sorted.

    Args:
        path: a trace file or a directory.
        skipped: when given, unreadable subdirectories and files reached twice (through
            a symbolic link) are described here and left out instead of raising.

    Raises:
        InputError: no such path, an unknown extension, no trace files, a directory or
            file that cannot be read (permission), or one file reached twice.
    """
    if not path.exists():
        raise InputError(f"{path}: no such file or directory; check the trace path")
    if path.is_file():
        if trace_suffix(path) not in TRACE_SUFFIXES:
            raise _unknown_extension(path)
        _check_readable(path)
        return [path]
    problems: list[str] = []
    found: list[Path] = []

    def unreadable_dir(exc: OSError) -> None:
        reason = "permission denied" if isinstance(exc, PermissionError) else exc.strerror
        problems.append(f"directory {exc.filename} ({reason})")

    # Linked subdirectories are followed (a trace folder linked in must not be skipped
    # unnoticed); each real directory is read once, so link loops end.
    visited = {os.path.realpath(path)}
    for root, dirs, names in os.walk(path, onerror=unreadable_dir, followlinks=True):
        kept = []
        for d in sorted(d for d in dirs if not d.startswith(".")):
            real = os.path.realpath(os.path.join(root, d))
            if real in visited:
                problems.append(f"directory {Path(root) / d} (already read, through a link)")
                continue
            visited.add(real)
            kept.append(d)
        dirs[:] = kept
        found += [Path(root) / n for n in names if not n.startswith(".")]
    files: list[Path] = []
    seen: dict[str, Path] = {}
    # Real files before links, so a link to a file already read is the one left out.
    for file in sorted(found, key=lambda f: (f.is_symlink(), f)):
        if not file.is_file():
            continue
        suffix = trace_suffix(file)
        if suffix not in TRACE_SUFFIXES:
            if suffix not in IGNORED_SUFFIXES and not suffix.endswith(IGNORED_SUFFIXES):
                raise _unknown_extension(file)
            continue
        real = os.path.realpath(file)
        if real in seen:
            problems.append(f"file {file} (the same file as {seen[real]}, through a link)")
            continue
        seen[real] = file
        if not os.access(file, os.R_OK):
            problems.append(f"file {file} (permission denied)")
            continue
        files.append(file)
    files.sort()
    if problems and skipped is None:
        raise InputError(
            f"{path}: cannot use {problems[0]}"
            + (f" and {len(problems) - 1} more" if len(problems) > 1 else "")
            + "; fix the permissions or remove the duplicate, or pass --skip-bad-rows to "
            "leave them out"
        )
    if skipped is not None:
        skipped += problems
    if not files:
        raise InputError(
            f"{path}: no trace files (.parquet, .csv, .jsonl, .json, optionally .gz) found"
        )
    return files


def _check_readable(file: Path) -> None:
    if not os.access(file, os.R_OK):
        raise InputError(
            f"{file}: permission denied; make the file readable (chmod +r) or run as its owner"
        )


def _unknown_extension(path: Path) -> InputError:
    return InputError(
        f"{path}: unknown trace file extension '{''.join(path.suffixes) or '(none)'}'; "
        "use .parquet, .csv, .jsonl or .json (OTLP), optionally with .gz"
    )


def _describe(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items())) or "no rows"


def _read_file(file: Path, mapping: TraceMapping, skip: bool) -> Iterator[Batch]:
    suffix = trace_suffix(file)
    try:
        if suffix == ".parquet":
            yield from _read_parquet(file, mapping, skip)
        elif suffix == ".csv":
            yield from _read_csv(file, mapping, skip)
        else:
            yield from read_json(file, mapping, skip)
    except READ_ERRORS as exc:
        raise unreadable(file, exc) from None


def _read_parquet(file: Path, mapping: TraceMapping, skip: bool) -> Iterator[Batch]:
    source: Any = file
    if file.name.lower().endswith(".gz"):
        # Parquet needs random access: a gzipped Parquet file is inflated in memory.
        with gzip.open(file, "rb") as handle:
            source = pa.BufferReader(handle.read())
    schema = pq.read_schema(source)
    # Strings come back dictionary-encoded (pandas categoricals) instead of one Python
    # object per value: 3-4x faster and far smaller for repeated workflow ids and models.
    strings = [
        f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    ]
    # No pre-buffering: Arrow then holds a few MB instead of whole row groups.
    parquet = pq.ParquetFile(source, read_dictionary=strings, pre_buffer=False, buffer_size=1 << 22)
    names = parquet.schema_arrow.names
    check_columns(names, mapping, str(file))
    wanted = _wanted_columns(names, mapping)
    first = 1
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=wanted):
        raw = batch.to_pandas()
        position = BatchPosition(str(file), first, "row")
        yield normalise_batch(raw, mapping, position, skip_bad_rows=skip)
        first += batch.num_rows


def _read_csv(file: Path, mapping: TraceMapping, skip: bool) -> Iterator[Batch]:
    with open_text(file) as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise InputError(f"{file}: empty file (no header row); remove it or export it again")
    check_columns(header, mapping, str(file))
    invalid: list[Any] = []

    def on_invalid(row: Any) -> str:
        invalid.append(row)
        return "skip" if skip else "error"

    wanted = set(_wanted_columns(header, mapping))
    try:
        reader = pacsv.open_csv(
            pa.input_stream(str(file), compression="detect"),
            read_options=pacsv.ReadOptions(block_size=16 << 20, use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                include_columns=[name for name in header if name in wanted],
                strings_can_be_null=True,
            ),
        )
        line = 2  # line 1 is the header
        for batch in reader:
            raw = batch.to_pandas()
            position = BatchPosition(str(file), line, "line")
            frame, counts = normalise_batch(raw, mapping, position, skip_bad_rows=skip)
            if invalid and skip:
                counts = {**counts, "csv: wrong number of fields": len(invalid)}
                invalid.clear()
            yield frame, counts
            line += batch.num_rows
    except pa.ArrowInvalid:
        if not invalid:
            raise
        row = invalid[0]
        where = f"line {row.number}" if row.number is not None else "a row"
        raise InputError(
            f"{file}, {where}: {row.actual_columns} fields where the header has "
            f"{row.expected_columns}; quote values containing commas, or pass "
            "--skip-bad-rows to drop such rows"
        ) from None
    if invalid and skip:
        yield empty_batch(mapping, file), {"csv: wrong number of fields": len(invalid)}


def _wanted_columns(names: list[str], mapping: TraceMapping) -> list[str]:
    sources = {mapping.source_of(c) for c in CANONICAL_INPUT_COLUMNS}
    return [n for n in names if n in sources]
