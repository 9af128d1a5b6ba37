"""Helpers shared by the trace readers: file kinds, text opening, read errors."""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import pandas as pd
import pyarrow as pa

from planner.errors import InputError
from planner.ingest.mapping import TraceMapping
from planner.ingest.normalise import BatchPosition, normalise_batch

# What a truncated or corrupt file raises while being decoded.
READ_ERRORS = (pa.ArrowException, OSError, EOFError, zlib.error, UnicodeDecodeError)

Batch = tuple[pd.DataFrame, dict[str, int]]


def trace_suffix(path: Path) -> str:
    """The extension that decides the format: ".csv" for calls.csv.gz."""
    name = path.name.lower()
    base = name[:-3] if name.endswith(".gz") else name
    return Path(base).suffix


def empty_batch(mapping: TraceMapping, file: Path) -> pd.DataFrame:
    frame, _ = normalise_batch(pd.DataFrame(), mapping, BatchPosition(str(file), 1))
    return frame


def unreadable(file: Path, exc: BaseException) -> InputError:
    detail = " ".join(str(exc).split())[:200]
    if isinstance(exc, PermissionError) or "permission denied" in detail.lower():
        return InputError(
            f"{file}: permission denied; make the file readable (chmod +r) or run as its owner"
        )
    if isinstance(exc, IsADirectoryError):
        return InputError(f"{file}: is a directory, not a trace file")
    return InputError(
        f"{file}: cannot read the file ({detail}); it is truncated or corrupt: "
        "export or download it again"
    )


def open_text(file: Path, encoding: str = "utf-8-sig") -> io.TextIOWrapper:
    """Text of a file, gunzipped if named .gz; utf-8-sig tolerates a byte-order mark."""
    if file.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(file, "rb"), encoding=encoding)
    return open(file, encoding=encoding)
