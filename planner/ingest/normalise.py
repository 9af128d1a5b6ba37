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

from planner.errors import InputError, did_you_mean
from planner.ingest.columns import (
    MAX_TOKENS_PER_REQUEST,
    missing_mask,
    only_where,
    to_categorical,
    to_hash_lists,
    to_numbers,
    to_seconds,
    to_tokens,
    unparsed_mask,
)
from planner.ingest.mapping import SECONDS_PER_UNIT, TraceMapping
from planner.types.calls import CALL_COLUMNS, KIND_LLM, KIND_TOOL

STATUSES = ("ok", "error", "retry")
KINDS = (KIND_LLM, KIND_TOOL)


@dataclass(frozen=True)
class BatchPosition:
    """Where a batch sits in its file, for messages and serving-level workflow ids.

    Attributes:
        source: the file, as shown to the user.
        first_row: the number of the batch's first row as the user counts it (the line
            number in CSV/JSONL, counting the header; the 1-based row in Parquet).
        row_word: "line", "row" or "span".
        row_labels: names of rows that have no number (OTLP span ids), for messages.
        row_numbers: explicit row numbers when rows are not consecutive (JSONL with blank
            or skipped lines); None means first_row, first_row + 1, ...
    """

    source: str
    first_row: int
    row_word: str = "line"
    row_numbers: tuple[int, ...] | None = None
    row_labels: tuple[str, ...] | None = None

    def describe(self, index: int) -> str:
        """How a message names the batch's row `index` ("line 7", "span 5f2a... (trace ...)")."""
        if self.row_labels is not None:
            return f"{self.row_word} {self.row_labels[index]}"
        return f"{self.row_word} {self.row(index)}"

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
    cached_within_input: bool = True,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Validate and convert one batch of raw rows.

    Args:
        raw: the batch with the source's column names (JSON paths already extracted
            into columns named by the path).
        mapping: how source columns map to canonical ones.
        position: the batch's file and first row, for messages.
        skip_bad_rows: drop bad rows and count them instead of raising.
        cached_within_input: reject cached_input_tokens > input_tokens (a mapping
            mistake in tables; OTLP instrumentations disagree on whether input tokens
            include cache reads, so spans are not checked).

    Returns:
        The canonical rows (CALL_COLUMNS, in order and dtypes) and reason -> skipped count.

    Raises:
        InputError: the first bad row (file, row, column, value and how to fix it).
    """
    n = len(raw)
    col = _Columns(raw, mapping, n)
    problems: list[_Problem] = []

    kind = to_categorical(col.get("kind"), n, default=KIND_LLM, lower=True)
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
        workflow_id = to_categorical(col.get("workflow_id"), n)
    problems.append(
        _Problem(
            "workflow_id: missing",
            col.name("workflow_id"),
            missing_mask(workflow_id),
            "give every row its workflow id",
        )
    )
    if mapping.workflow_type is not None and col.get("workflow_type") is None:
        workflow_type = to_categorical(None, n, default=mapping.workflow_type)
    else:
        workflow_type = to_categorical(col.get("workflow_type"), n, default="default")
    if mapping.model is not None and col.get("model") is None:
        model = to_categorical(None, n, default=mapping.model)
    else:
        model = to_categorical(col.get("model"), n)
    model = only_where(model, is_llm)  # tool rows have no model
    problems.append(
        _Problem(
            "model: missing",
            col.name("model"),
            is_llm & missing_mask(model),
            "name the model that served the call",
        )
    )

    input_tokens, bad_in, huge_in = to_tokens(col.get("input_tokens"), is_llm)
    problems.append(_token_problem("input_tokens", col, bad_in))
    problems.append(_huge_problem("input_tokens", col, huge_in))
    output_tokens, bad_out, huge_out = to_tokens(col.get("output_tokens"), is_llm)
    problems.append(_token_problem("output_tokens", col, bad_out))
    problems.append(_huge_problem("output_tokens", col, huge_out))
    cached = to_numbers(col.get("cached_input_tokens"), n)
    bad_cached = (
        (cached < 0) | np.isinf(cached) | ((np.floor(cached) != cached) & ~np.isnan(cached))
    )
    bad_cached |= unparsed_mask(col.get("cached_input_tokens"), cached)
    problems.append(_token_problem("cached_input_tokens", col, bad_cached, optional=True))
    huge_cached = ~bad_cached & (cached > MAX_TOKENS_PER_REQUEST)
    problems.append(_huge_problem("cached_input_tokens", col, huge_cached))
    bad_in = bad_in | huge_in  # a new array: the problem above keeps its own mask
    over = (
        is_llm
        & ~bad_cached
        & ~huge_cached
        & ~bad_in
        & (cached > input_tokens)
        & cached_within_input
    )
    problems.append(
        _Problem(
            "cached_input_tokens: more than input_tokens",
            col.name("cached_input_tokens"),
            over,
            "cached tokens are part of the input tokens; check the column mapping",
        )
    )
    cached = np.where(is_llm, cached, np.nan)

    start, bad_start = to_seconds(
        col.get("start_time"), mapping.time_unit, mapping.timestamp_format, n
    )
    bad_start |= ~np.isfinite(start)  # missing, or an infinite number
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
    bad_end |= np.isinf(end)
    if not mapping.serving_level:  # serving-level traces may lack end times
        bad_end |= np.isnan(end) & ~bad_start
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

    hashes, bad_hashes = to_hash_lists(col.get("prefix_hashes"), n)
    problems.append(
        _Problem(
            "prefix_hashes: not a list of integer block hashes",
            col.name("prefix_hashes"),
            bad_hashes,
            'write the prompt\'s block hashes as a list of integers ([17, 18, 42] or "17 18 42")',
        )
    )
    block_tokens = _block_tokens(col, mapping, n)
    bad_block = (
        (block_tokens < 1) | (np.floor(block_tokens) != block_tokens) | np.isinf(block_tokens)
    )
    bad_block |= unparsed_mask(col.get("prefix_block_tokens"), block_tokens)
    has_hashes = np.asarray([h is not None for h in hashes], dtype=bool)
    problems.append(
        _Problem(
            "prefix_block_tokens: not a whole number >= 1",
            col.name("prefix_block_tokens"),
            bad_block & ~np.isnan(block_tokens),
            "give the tokens per hashed block (vLLM's default is 16, Mooncake's 512)",
        )
    )
    problems.append(
        _Problem(
            "prefix_block_tokens: missing for a row with prefix_hashes",
            col.name("prefix_block_tokens"),
            has_hashes & np.isnan(block_tokens) & is_llm,
            "add a prefix_block_tokens column, or set prefix_block_tokens in the --mapping file",
        )
    )
    has_hashes &= is_llm
    hashes[~has_hashes] = None
    block_tokens = np.where(has_hashes, block_tokens, np.nan)

    status = to_categorical(col.get("status"), n, default="ok", lower=True)
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
            "agent": to_categorical(col.get("agent"), n),
            "call_id": to_categorical(col.get("call_id"), n),
            "parent_call_id": to_categorical(col.get("parent_call_id"), n),
            "start_s": start,
            "end_s": end,
            "input_tokens": np.where(is_llm & ~bad, input_tokens, 0).astype("int64"),
            "output_tokens": np.where(is_llm & ~bad, output_tokens, 0).astype("int64"),
            "cached_input_tokens": cached,
            "status": status,
            "prefix_hash": to_categorical(col.get("prefix_hash"), n),
            "prefix_hashes": hashes,
            "prefix_block_tokens": block_tokens,
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


def _token_problem(
    name: str, col: _Columns, mask: np.ndarray, *, optional: bool = False
) -> _Problem:
    what = "not a non-negative whole number"
    fix = "token counts are whole numbers >= 0" + ("; leave blank when unknown" if optional else "")
    return _Problem(f"{name}: {what}", col.name(name), mask, fix)


def _huge_problem(name: str, col: _Columns, mask: np.ndarray) -> _Problem:
    return _Problem(
        f"{name}: implausibly large",
        col.name(name),
        mask,
        f"no request carries more than {MAX_TOKENS_PER_REQUEST:,} tokens; check the value "
        "and the column mapping",
    )


def _end_times(
    col: _Columns, mapping: TraceMapping, start: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    if col.get("end_time") is not None:
        return to_seconds(col.get("end_time"), mapping.time_unit, mapping.timestamp_format, n)
    latency_values = col.get("latency_s")
    latency = to_numbers(latency_values, n) * SECONDS_PER_UNIT[mapping.latency_unit]
    bad = unparsed_mask(latency_values, latency) | (latency < 0)
    return start + latency, bad


def _block_tokens(col: _Columns, mapping: TraceMapping, n: int) -> np.ndarray:
    """Tokens per hashed block: the column, else the mapping's fixed value, else NaN."""
    values = col.get("prefix_block_tokens")
    if values is not None:
        return to_numbers(values, n)
    fixed = mapping.prefix_block_tokens
    return np.full(n, np.nan if fixed is None else float(fixed))


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
        f"{position.source}, {position.describe(row)}, column "
        f"'{problem.column}': {what}{shown}; {problem.fix}; or pass --skip-bad-rows to drop "
        "such rows"
    )


def _show(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "an empty value"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
