"""Turn one batch of raw trace rows into canonical CallTable rows (pure, vectorised).

The reader (`planner.io.traces`) streams a file in batches and hands each batch here with
its position in the file, so every bad value is reported with file, row and column. The
checks run on whole columns; the first bad row raises `InputError`, or with
`skip_bad_rows` the bad rows are dropped and counted by reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from planner.calls import CALL_COLUMNS, KIND_LLM, KIND_TOOL
from planner.errors import InputError, did_you_mean
from planner.ingest.mapping import SECONDS_PER_UNIT, TraceMapping

STATUSES = ("ok", "error", "retry")
KINDS = (KIND_LLM, KIND_TOOL)
_EPOCH = pd.Timestamp(0, tz="UTC")


@dataclass(frozen=True)
class BatchPosition:
    """Where a batch sits in its file, for messages and serving-level workflow ids.

    Attributes:
        source: the file, as shown to the user.
        first_row: the number of the batch's first row as the user counts it (the line
            number in CSV/JSONL, counting the header; the 1-based row in Parquet).
        row_word: "line", "row" or "span".
        row_numbers: explicit row numbers when rows are not consecutive (JSONL with blank
            or skipped lines); None means first_row, first_row + 1, ...
    """

    source: str
    first_row: int
    row_word: str = "line"
    row_numbers: tuple[int, ...] | None = None

    def row(self, index: int) -> int:
        """The user-visible number of the batch's row `index`."""
        if self.row_numbers is not None:
            return self.row_numbers[index]
        return self.first_row + index


@dataclass(frozen=True)
class _Problem:
    reason: str  # stable key for --skip-bad-rows counts
    column: str  # source column, as the user named it
    mask: np.ndarray
    fix: str


def required_columns(mapping: TraceMapping) -> tuple[str, ...]:
    """Canonical columns a table must provide under `mapping` (time columns apart)."""
    needed = ["input_tokens", "output_tokens", "start_time"]
    if not mapping.serving_level:
        needed.insert(0, "workflow_id")
    if mapping.model is None:
        needed.insert(1, "model")
    return tuple(needed)


def check_columns(columns: Sequence[str], mapping: TraceMapping, source: str) -> None:
    """Raise InputError when a required column is missing, suggesting the close name."""
    present = [str(c) for c in columns]
    for canonical in required_columns(mapping):
        _require(canonical, present, mapping, source)
    if not mapping.serving_level:
        end, latency = mapping.source_of("end_time"), mapping.source_of("latency_s")
        if end not in present and latency not in present:
            hint = did_you_mean(end, present) or did_you_mean(latency, present)
            raise InputError(
                f"{source}: missing column '{end}' (or '{latency}'){hint}; every call needs "
                "an end time or a latency: add the column, or map it with --mapping "
                "(see traces/README.md)"
            )


def _require(canonical: str, present: list[str], mapping: TraceMapping, source: str) -> None:
    name = mapping.source_of(canonical)
    if name in present:
        return
    mapped = f" (mapped from '{canonical}')" if name != canonical else ""
    raise InputError(
        f"{source}: missing required column '{name}'{mapped}{did_you_mean(name, present)}; "
        f"rename the column, or map it with --mapping (see traces/README.md); "
        f"columns found: {', '.join(present[:12])}"
    )


def normalise_batch(
    raw: pd.DataFrame,
    mapping: TraceMapping,
    position: BatchPosition,
    *,
    skip_bad_rows: bool = False,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Validate and convert one batch of raw rows.

    Args:
        raw: the batch with the source's column names (JSON paths already extracted
            into columns named by the path).
        mapping: how source columns map to canonical ones.
        position: the batch's file and first row, for messages.
        skip_bad_rows: drop bad rows and count them instead of raising.

    Returns:
        The canonical rows (CALL_COLUMNS, in order and dtypes) and reason -> skipped count.

    Raises:
        InputError: the first bad row (file, row, column, value and how to fix it).
    """
    n = len(raw)
    col = _Columns(raw, mapping, n)
    problems: list[_Problem] = []

    kind = _categorical(col.get("kind"), n, default=KIND_LLM, lower=True)
    bad_kind = ~np.asarray(kind.isin(list(KINDS)), dtype=bool)
    problems.append(
        _Problem("kind: not llm or tool", col.name("kind"), bad_kind, "use 'llm' or 'tool'")
    )
    is_llm = np.asarray(kind == KIND_LLM) & ~bad_kind

    if mapping.serving_level and col.get("workflow_id") is None:
        rows = pd.Index(
            np.asarray(position.row_numbers)
            if position.row_numbers is not None
            else np.arange(position.first_row, position.first_row + n)
        )
        workflow_id = pd.Categorical(f"{position.source}:" + rows.astype(str))
    else:
        workflow_id = _categorical(col.get("workflow_id"), n)
    problems.append(
        _Problem(
            "workflow_id: missing",
            col.name("workflow_id"),
            _missing(workflow_id),
            "give every row its workflow id",
        )
    )
    if mapping.workflow_type is not None and col.get("workflow_type") is None:
        workflow_type = _categorical(None, n, default=mapping.workflow_type)
    else:
        workflow_type = _categorical(col.get("workflow_type"), n, default="default")
    if mapping.model is not None and col.get("model") is None:
        model = _categorical(None, n, default=mapping.model)
    else:
        model = _categorical(col.get("model"), n)
    model = _only(model, is_llm)  # tool rows have no model
    problems.append(
        _Problem(
            "model: missing",
            col.name("model"),
            is_llm & _missing(model),
            "name the model that served the call",
        )
    )

    input_tokens, bad_in = _tokens(col.get("input_tokens"), is_llm)
    problems.append(_token_problem("input_tokens", col, bad_in))
    output_tokens, bad_out = _tokens(col.get("output_tokens"), is_llm)
    problems.append(_token_problem("output_tokens", col, bad_out))
    cached = _numbers(col.get("cached_input_tokens"), n)
    bad_cached = (cached < 0) | (np.floor(cached) != cached) & ~np.isnan(cached)
    bad_cached |= _unparsed(col.get("cached_input_tokens"), cached)
    problems.append(_token_problem("cached_input_tokens", col, bad_cached, optional=True))
    over = is_llm & ~bad_cached & ~bad_in & (cached > input_tokens)
    problems.append(
        _Problem(
            "cached_input_tokens: more than input_tokens",
            col.name("cached_input_tokens"),
            over,
            "cached tokens are part of the input tokens; check the column mapping",
        )
    )
    cached = np.where(is_llm, cached, np.nan)

    start, bad_start = _times(col.get("start_time"), mapping.time_unit, mapping.timestamp_format, n)
    bad_start |= np.isnan(start) & ~bad_start
    problems.append(
        _Problem(
            "start_time: missing or unreadable",
            col.name("start_time"),
            bad_start,
            _time_fix(mapping),
        )
    )
    end, bad_end = _end_times(col, mapping, start, n)
    time_col = col.name("end_time") if col.get("end_time") is not None else col.name("latency_s")
    if not mapping.serving_level:
        bad_end |= np.isnan(end) & ~bad_end & ~bad_start
    problems.append(
        _Problem("end_time: missing or unreadable", time_col, bad_end, _time_fix(mapping))
    )
    backwards = ~bad_start & ~bad_end & (end < start)
    problems.append(
        _Problem(
            "end_time: before start_time",
            time_col,
            backwards,
            "check that start and end are not swapped and use the same clock and unit",
        )
    )

    status = _categorical(col.get("status"), n, default="ok", lower=True)
    bad_status = ~np.asarray(status.isin(list(STATUSES)), dtype=bool)
    problems.append(
        _Problem(
            "status: not ok, error or retry",
            col.name("status"),
            bad_status,
            "use ok, error or retry",
        )
    )

    bad = np.zeros(n, dtype=bool)
    for p in problems:
        bad |= p.mask
    skipped: dict[str, int] = {}
    if bad.any():
        if not skip_bad_rows:
            raise _first_error(problems, raw, col, position)
        skipped = _count_first_reasons(problems)

    frame = pd.DataFrame(
        {
            "workflow_id": workflow_id,
            "workflow_type": workflow_type,
            "kind": kind,
            "model": model,
            "agent": _categorical(col.get("agent"), n),
            "call_id": _categorical(col.get("call_id"), n),
            "parent_call_id": _categorical(col.get("parent_call_id"), n),
            "start_s": start,
            "end_s": end,
            "input_tokens": np.where(is_llm & ~bad, input_tokens, 0).astype("int64"),
            "output_tokens": np.where(is_llm & ~bad, output_tokens, 0).astype("int64"),
            "cached_input_tokens": cached,
            "status": status,
            "prefix_hash": _categorical(col.get("prefix_hash"), n),
        },
        copy=False,  # one block per column: the reader frees columns one at a time
    )
    if bad.any():
        frame = pd.DataFrame({name: frame[name].array[~bad] for name in CALL_COLUMNS}, copy=False)
    return frame, skipped


class _Columns:
    """Source columns by canonical name, following the mapping."""

    def __init__(self, raw: pd.DataFrame, mapping: TraceMapping, n: int) -> None:
        self.raw, self.mapping, self.n = raw, mapping, n

    def name(self, canonical: str) -> str:
        return self.mapping.source_of(canonical)

    def get(self, canonical: str) -> pd.Series | None:
        name = self.name(canonical)
        return self.raw[name] if name in self.raw.columns else None


def _categorical(
    values: pd.Series | None, n: int, *, default: str | None = None, lower: bool = False
) -> pd.Categorical:
    """Compact string column: numbers become strings, blanks become missing (or default)."""
    if values is None:
        if default is None:
            return pd.Categorical.from_codes(np.full(n, -1, dtype=np.int8), categories=_names([]))
        return pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=_names([default]))
    cat = values.array if isinstance(values.dtype, pd.CategoricalDtype) else pd.Categorical(values)
    if not lower and _clean_strings(cat, default):
        return cat  # already compact, stripped and without blanks: nothing to remap
    categories = pd.Index(cat.categories)
    if pd.api.types.is_float_dtype(categories.dtype) and (categories == categories.round()).all():
        categories = categories.astype("int64")  # integer ids read as floats next to blanks
    names = categories.astype(str).str.strip()
    if lower:
        names = names.str.lower()
    # Vectorised over categories, not rows: merge duplicates that stripping created, drop
    # blanks, then push the remapping through the row codes.
    remap, unique = pd.factorize(names)
    keep = np.asarray(unique != "")
    renumber = np.where(keep, np.cumsum(keep) - 1, -1)
    remap = renumber[remap] if len(remap) else remap.astype(np.int64)
    unique = unique[keep]
    fill = -1
    if default is not None:
        if default not in unique:
            unique = unique.append(pd.Index([default]))
        fill = int(unique.get_loc(default))
    remap = np.append(np.where(remap < 0, fill, remap), fill).astype(np.int64)
    codes = remap[np.asarray(cat.codes, dtype=np.int64)]  # code -1 reads the last entry
    return pd.Categorical.from_codes(codes, categories=_names(unique), validate=False)


def _clean_strings(cat: pd.Categorical, default: str | None) -> bool:
    """True when the categories are strings needing no stripping, with no blank, and no
    missing row needs the default (checked in Arrow, without Python string objects)."""
    if cat.categories.dtype != "str":
        return False
    labels = pa.array(cat.categories)
    if not pa.types.is_string(labels.type) and not pa.types.is_large_string(labels.type):
        return False
    trimmed = pc.utf8_trim_whitespace(labels)
    if not pc.all(pc.equal(trimmed, labels)).as_py() or pc.any(pc.equal(labels, "")).as_py():
        return False
    return default is None or not bool((np.asarray(cat.codes) < 0).any())


def _names(values: pd.Index | list[str]) -> pd.Index:
    """Category labels as one string dtype, so batches and files concatenate."""
    if isinstance(values, pd.Index):
        return values if values.dtype == "str" else values.astype("str")
    return pd.Index(values, dtype="str")


def _only(cat: pd.Categorical, keep: np.ndarray) -> pd.Categorical:
    codes = np.where(keep, np.asarray(cat.codes), -1)
    return pd.Categorical.from_codes(codes, dtype=cat.dtype, validate=False)


def _missing(cat: pd.Categorical) -> np.ndarray:
    return np.asarray(cat.isna())


def _numbers(values: pd.Series | None, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    if pd.api.types.is_bool_dtype(values.dtype):
        return np.full(n, np.nan)
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.to_numpy(dtype="float64", na_value=np.nan)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _unparsed(values: pd.Series | None, parsed: np.ndarray) -> np.ndarray:
    """Rows that hold something (not blank) that did not parse."""
    if values is None:
        return np.zeros(len(parsed), dtype=bool)
    present = values.notna().to_numpy(dtype=bool, copy=True)
    if not pd.api.types.is_numeric_dtype(values.dtype):
        present &= values.astype(str).str.strip().ne("").to_numpy(dtype=bool)
    return np.asarray(present & np.isnan(parsed), dtype=bool)


def _tokens(values: pd.Series | None, is_llm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    numbers = _numbers(values, len(is_llm))
    bad = is_llm & (np.isnan(numbers) | (numbers < 0) | (np.floor(numbers) != numbers))
    return np.where(bad | ~is_llm, 0, np.nan_to_num(numbers)).astype("int64"), bad


def _token_problem(
    name: str, col: _Columns, mask: np.ndarray, *, optional: bool = False
) -> _Problem:
    what = "not a non-negative whole number"
    fix = "token counts are whole numbers >= 0" + ("; leave blank when unknown" if optional else "")
    return _Problem(f"{name}: {what}", col.name(name), mask, fix)


def _times(
    values: pd.Series | None, unit: str, fmt: str | None, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seconds (float) and a mask of present-but-unreadable values."""
    if values is None:
        return np.full(n, np.nan), np.zeros(n, dtype=bool)
    if (
        fmt is None
        and pd.api.types.is_numeric_dtype(values.dtype)
        and not pd.api.types.is_bool_dtype(values.dtype)
    ):
        return values.to_numpy(dtype="float64", na_value=np.nan) * SECONDS_PER_UNIT[unit], np.zeros(
            n, dtype=bool
        )
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        stamps = pd.Series(values)
        if stamps.dt.tz is None:
            stamps = stamps.dt.tz_localize("UTC")
        seconds = ((stamps - _EPOCH) / pd.Timedelta(1, "s")).to_numpy(
            dtype="float64", na_value=np.nan
        )
        return seconds, np.zeros(n, dtype=bool)
    if fmt is None:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        if not np.isnan(numbers).all() or values.isna().all():
            return numbers * SECONDS_PER_UNIT[unit], _unparsed(values, numbers)
    pandas_format = "ISO8601" if fmt is None or fmt.lower() == "iso8601" else fmt
    stamps = pd.to_datetime(values, format=pandas_format, utc=True, errors="coerce")
    seconds = ((stamps - _EPOCH) / pd.Timedelta(1, "s")).to_numpy(dtype="float64", na_value=np.nan)
    return seconds, _unparsed(values, seconds)


def _end_times(
    col: _Columns, mapping: TraceMapping, start: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    if col.get("end_time") is not None:
        return _times(col.get("end_time"), mapping.time_unit, mapping.timestamp_format, n)
    latency_values = col.get("latency_s")
    latency = _numbers(latency_values, n) * SECONDS_PER_UNIT[mapping.latency_unit]
    bad = _unparsed(latency_values, latency) | (latency < 0)
    return start + latency, bad


def _time_fix(mapping: TraceMapping) -> str:
    return (
        "times are numbers (seconds, or the mapping's time_unit) or ISO 8601 timestamps; "
        "set time_unit or timestamp_format in a --mapping file for other forms"
    )


def _count_first_reasons(problems: list[_Problem]) -> dict[str, int]:
    """Count each bad row once, under the first problem found in it."""
    counted = np.zeros(len(problems[0].mask), dtype=bool)
    counts: dict[str, int] = {}
    for p in problems:
        new = p.mask & ~counted
        if new.any():
            counts[p.reason] = counts.get(p.reason, 0) + int(new.sum())
            counted |= new
    return counts


def _first_error(
    problems: list[_Problem], raw: pd.DataFrame, col: _Columns, position: BatchPosition
) -> InputError:
    first = min((int(np.argmax(p.mask)), i) for i, p in enumerate(problems) if p.mask.any())
    row, index = first
    problem = problems[index]
    value = raw[problem.column].iloc[row] if problem.column in raw.columns else None
    what = problem.reason.split(": ", 1)[1]
    shown = "" if value is None else f" (got {_show(value)})"
    return InputError(
        f"{position.source}, {position.row_word} {position.row(row)}, column "
        f"'{problem.column}': {what}{shown}; {problem.fix}; or pass --skip-bad-rows to drop "
        "such rows"
    )


def _show(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "an empty value"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
