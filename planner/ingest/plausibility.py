"""Whole-trace plausibility: time units, duplicated calls, requests over the context limit.

Row checks (`normalise`) see one value at a time; these see magnitudes and repeats:

- Time units. A trace in milliseconds read as seconds parses cleanly and yields arrival
  rates 1000x too low and hour-long calls. Each file's magnitudes are checked (epoch
  range of start times, seconds per generated token of LLM calls, span of the trace);
  a file whose times only make sense in another unit is an error naming the file and
  the likely unit, and so is a directory mixing units.
- Duplicates. Exact duplicate rows and repeated (workflow_id, call_id) pairs double
  calls per workflow. They are an error naming the first repeat, or under
  --skip-bad-rows dropped and counted.
- Context limits. Requests longer than the deployment's `max_model_len` are counted per
  model, with the fixes, in one note.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from planner.errors import InputError
from planner.ingest.mapping import SECONDS_PER_UNIT
from planner.types.calls import CALL_COLUMNS, KIND_LLM

# Start times past 1e8 are read as Unix epoch times; in seconds they fall between 2001
# and 2100. The same instants in ms, us or ns are 10^3, 10^6, 10^9 times larger.
EPOCH_S = (1.0e9, 4.1e9)
EPOCH_LIKE_S = 1.0e5  # smaller start times are relative to the trace's start
# Seconds an LLM call spends per generated token (prefill included): from ~0.1 ms (a tiny
# model, short prompt, fast GPU) to ~3 s (a long prompt and few output tokens on a slow
# CPU engine). Outside this band by 10^3 or more, the unit is wrong.
S_PER_TOKEN = (1.0e-5, 3.0)
MAX_SPAN_S = 366 * 24 * 3600.0  # a trace of relative times covering more than a year
UNITS = ("s", "ms", "us", "ns")
UNIT_WORDS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}


@dataclass(frozen=True)
class TimeStats:
    """Magnitudes of one file's times, in seconds under the unit they were read with."""

    calls: int
    first_start_s: float
    last_start_s: float
    s_per_output_token: float  # median over LLM calls with an end time; NaN if none
    median_call_s: float  # median LLM call duration; NaN if none


SAMPLE_PER_BATCH = 20_000  # per-token times kept per batch for the median (memory-flat)


def time_stats(frames: Sequence[pd.DataFrame]) -> TimeStats:
    """The magnitudes of one file's normalised batches.

    Works batch by batch and keeps at most SAMPLE_PER_BATCH per-token times of each (an
    even stride through the batch), so a 10-million-row file adds kilobytes, not the
    size of its time columns.
    """
    calls, first, last = 0, math.inf, -math.inf
    per_token: list[np.ndarray] = []
    durations: list[np.ndarray] = []
    for f in frames:
        if not len(f):
            continue
        calls += len(f)
        start = f["start_s"].to_numpy(dtype=float)
        first = min(first, float(np.nanmin(start)))
        last = max(last, float(np.nanmax(start)))
        end = f["end_s"].to_numpy(dtype=float)
        out = f["output_tokens"].to_numpy()
        timed = np.flatnonzero(
            np.asarray(f["kind"].array == KIND_LLM) & np.isfinite(end) & (end >= start) & (out > 0)
        )
        step = max(1, len(timed) // SAMPLE_PER_BATCH)
        rows = timed[::step]
        duration = end[rows] - start[rows]
        durations.append(duration)
        per_token.append(duration / out[rows])
    if not calls:
        nan = math.nan
        return TimeStats(0, nan, nan, nan, nan)
    sample = np.concatenate(per_token)
    spans = np.concatenate(durations)
    return TimeStats(
        calls=calls,
        first_start_s=first,
        last_start_s=last,
        s_per_output_token=float(np.median(sample)) if sample.size else math.nan,
        median_call_s=float(np.median(spans)) if spans.size else math.nan,
    )


def likely_unit(stats: TimeStats, read_as: str) -> tuple[str, str] | None:
    """The unit the file's times are in when it is not `read_as`, with the evidence."""
    for unit in UNITS:
        if unit == read_as:
            continue
        factor = SECONDS_PER_UNIT[unit] / SECONDS_PER_UNIT[read_as]
        evidence = _evidence(stats, factor)
        if evidence:
            return unit, evidence
    return None


def _evidence(stats: TimeStats, factor: float) -> str:
    """Why the times fit `factor` x their value and not their value, or ''."""
    start = stats.first_start_s
    if start >= EPOCH_LIKE_S or start * factor >= EPOCH_LIKE_S:
        if not _within(start, EPOCH_S) and _within(start * factor, EPOCH_S):
            return f"first start time {start:.6g} is a Unix time only in that unit"
        if _within(start, EPOCH_S):
            return ""  # epoch seconds: the unit is right whatever the durations say
    per_token = stats.s_per_output_token
    if not math.isnan(per_token) and per_token > 0:
        if not _within(per_token, S_PER_TOKEN) and _within(per_token * factor, S_PER_TOKEN):
            return (
                f"LLM calls would take {per_token:.3g} s per generated token (median call "
                f"{stats.median_call_s:.4g} s)"
            )
        return ""
    span = stats.last_start_s - stats.first_start_s
    if start < EPOCH_LIKE_S and span > MAX_SPAN_S and span * factor <= MAX_SPAN_S:
        return f"the trace would span {span / 86400:.4g} days"
    return ""


def _within(value: float, band: tuple[float, float]) -> bool:
    return band[0] <= value <= band[1]


def check_time_units(stats: Mapping[str, TimeStats], read_as: str) -> None:
    """Raise InputError when a file's times are in another unit than `read_as`.

    Args:
        stats: per trace file, its time magnitudes.
        read_as: the unit numeric times were read in (the mapping's `time_unit`).

    Raises:
        InputError: names the file, the likely unit and the fix; when other files look
            right, says the directory mixes units.
    """
    wrong = {f: u for f, s in stats.items() if (u := likely_unit(s, read_as)) is not None}
    if not wrong:
        return
    file, (unit, evidence) = next(iter(sorted(wrong.items())))
    right = sorted(set(stats) - set(wrong))
    fix = (
        f"set time_unit: {unit} (and latency_unit if latencies are numbers) in a --mapping "
        "file (see traces/README.md)"
    )
    if right:
        raise InputError(
            f"{file}: times look like {UNIT_WORDS[unit]} while {right[0]} reads as "
            f"{UNIT_WORDS[read_as]} ({evidence}); a directory must use one time unit: "
            f"convert one file, or plan them separately"
        )
    raise InputError(
        f"{file}: times look like {UNIT_WORDS[unit]}, not {UNIT_WORDS[read_as]} ({evidence}); {fix}"
    )


@dataclass(frozen=True)
class Duplicates:
    """Rows that repeat an earlier row: exactly, or only its (workflow_id, call_id)."""

    exact: np.ndarray  # bool mask of rows equal to an earlier row
    call_id: np.ndarray  # bool mask of other rows whose call id appeared before
    example: str  # the first repeat, for messages ("" when none)

    @property
    def any(self) -> bool:
        return bool(self.exact.any() or self.call_id.any())

    def counts(self) -> dict[str, int]:
        counts = {
            "duplicate: exact repeat of an earlier row": int(self.exact.sum()),
            "duplicate: call_id repeated within a workflow": int(self.call_id.sum()),
        }
        return {k: n for k, n in counts.items() if n}


def find_duplicates(
    frame: pd.DataFrame, sources: Sequence[str], file_of_row: np.ndarray
) -> Duplicates:
    """Exact duplicate LLM rows and repeated (workflow_id, call_id) pairs, later ones marked.

    Tool rows are not checked for exact repeats: two tool calls of one workflow may well
    look alike (parallel calls logged without ids at coarse times), while an LLM call equal
    in model, times and token counts is one call logged twice.
    """
    n = len(frame)
    exact = np.zeros(n, dtype=bool)
    call_id = np.zeros(n, dtype=bool)
    if n == 0:
        return Duplicates(exact, call_id, "")
    llm = np.flatnonzero(np.asarray(frame["kind"].array == KIND_LLM))
    hashes = row_hashes(frame)
    exact[llm] = pd.Series(hashes[llm]).duplicated().to_numpy()
    codes = frame["call_id"].cat.codes.to_numpy()
    with_id = np.flatnonzero(codes >= 0)
    key = np.zeros(0, dtype=np.int64)
    if with_id.size:
        width = len(frame["call_id"].cat.categories) + 1
        workflow = frame["workflow_id"].cat.codes.to_numpy()[with_id].astype(np.int64)
        key = workflow * width + codes[with_id]
        call_id[with_id] = pd.Series(key).duplicated().to_numpy()
        call_id &= ~exact
    example = ""
    if exact.any():
        row = int(np.argmax(exact))
        first = int(np.argmax(hashes == hashes[row]))
        example = _example(
            frame, row, first, "an exact repeat of an earlier row", sources, file_of_row
        )
    elif call_id.any():
        row = int(np.argmax(call_id))
        at = int(np.searchsorted(with_id, row))
        first = int(with_id[np.argmax(key == key[at])])
        example = _example(frame, row, first, "a repeated call_id", sources, file_of_row)
    return Duplicates(exact, call_id, example)


def _example(
    frame: pd.DataFrame,
    row: int,
    first: int,
    what: str,
    sources: Sequence[str],
    file_of_row: np.ndarray,
) -> str:
    wid = frame["workflow_id"].iloc[row]
    cid = frame["call_id"].iloc[row]
    files = " and ".join(sorted({sources[file_of_row[first]], sources[file_of_row[row]]}))
    call = f", call '{cid}'" if not pd.isna(cid) else ""
    return f"workflow '{wid}'{call} ({what}) in {files}"


_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio: spreads the bits


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of every row over the scalar CALL_COLUMNS, computed in place.

    Categorical columns hash their codes (one table's codes name one string each), floats
    their bits (every NaN alike), integers their values. One uint64 array and one
    temporary column at a time: pandas' hash_pandas_object needs several.
    """
    h = np.zeros(len(frame), dtype=np.uint64)
    for name, dtype in CALL_COLUMNS.items():
        if dtype == "object":
            # List columns (prefix_hashes): a row equal in every other column (workflow,
            # model, times, tokens) is one call logged twice whatever its block hashes.
            continue
        column = frame[name]
        if dtype == "category":
            values = column.cat.codes.to_numpy().astype(np.int64).view(np.uint64)
        elif dtype == "float64":
            floats = column.to_numpy(dtype=np.float64)
            values = np.where(np.isnan(floats), np.nan, floats).view(np.uint64)
        else:
            values = column.to_numpy().astype(np.int64).view(np.uint64)
        np.bitwise_xor(h, values, out=h)
        np.multiply(h, _MULTIPLIER, out=h)
        np.bitwise_xor(h, h >> np.uint64(31), out=h)
    return h


def duplicates_error(found: Duplicates) -> InputError:
    total = int(found.exact.sum() + found.call_id.sum())
    detail = ", ".join(f"{n} {reason.split(': ', 1)[1]}" for reason, n in found.counts().items())
    return InputError(
        f"{total} duplicated call(s) ({detail}); first: {found.example}; a call counted twice "
        "doubles its model's load: remove the repeats (the same file twice? a symlink?), or "
        "pass --skip-bad-rows to keep only the first of each"
    )


def context_overflow_notes(
    frame: pd.DataFrame, max_model_len: Mapping[str, int]
) -> tuple[str, ...]:
    """One note per model whose requests (input + output tokens) exceed its max_model_len.

    Args:
        frame: the calls (CALL_COLUMNS).
        max_model_len: trace model name -> the context length its deployment accepts.
    """
    llm = np.asarray(frame["kind"].array == KIND_LLM)
    if not llm.any():
        return ()
    tokens = frame["input_tokens"].to_numpy() + frame["output_tokens"].to_numpy()
    codes = frame["model"].cat.codes.to_numpy()
    names = frame["model"].cat.categories
    notes = []
    for code, name in enumerate(names):
        limit = max_model_len.get(str(name))
        if limit is None:
            continue
        mine = llm & (codes == code)
        over = int((mine & (tokens > limit)).sum())
        if over:
            total = int(mine.sum())
            notes.append(
                f"{name}: {over:,} of {total:,} requests ({over / total:.1%}) exceed "
                f"max_model_len {limit:,} (input + output tokens) and would be rejected by "
                "vLLM; route them to a longer-context model, raise max_model_len in the "
                "model's configs/models file, or drop them from the traces"
            )
    return tuple(notes)
