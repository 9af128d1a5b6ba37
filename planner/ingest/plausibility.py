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


def time_stats(frames: Sequence[pd.DataFrame]) -> TimeStats:
    """The magnitudes of one file's normalised batches."""
    frames = [f for f in frames if len(f)]
    if not frames:
        nan = math.nan
        return TimeStats(0, nan, nan, nan, nan)
    start = np.concatenate([f["start_s"].to_numpy(dtype=float) for f in frames])
    end = np.concatenate([f["end_s"].to_numpy(dtype=float) for f in frames])
    out = np.concatenate([f["output_tokens"].to_numpy(dtype=float) for f in frames])
    llm = np.concatenate([np.asarray(f["kind"].array == KIND_LLM) for f in frames])
    timed = llm & np.isfinite(end) & (end >= start) & (out > 0)
    duration = end[timed] - start[timed]
    per_token = duration / out[timed]
    return TimeStats(
        calls=len(start),
        first_start_s=float(np.nanmin(start)),
        last_start_s=float(np.nanmax(start)),
        s_per_output_token=float(np.median(per_token)) if per_token.size else math.nan,
        median_call_s=float(np.median(duration)) if duration.size else math.nan,
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
    """Exact duplicate LLM rows and repeated (workflow_id, call_id) pairs, later ones marked."""
    n = len(frame)
    if n == 0:
        empty = np.zeros(0, dtype=bool)
        return Duplicates(empty, empty, "")
    hashes = pd.util.hash_pandas_object(frame[list(CALL_COLUMNS)], index=False).to_numpy()
    # LLM calls only: two tool calls of one workflow may well look alike (parallel calls
    # logged without ids at coarse times); an LLM call equal in model, times and token
    # counts is one call logged twice.
    llm = np.asarray(frame["kind"].array == KIND_LLM)
    exact = pd.Series(np.where(llm, hashes, np.arange(n, dtype=np.uint64))).duplicated()
    exact = exact.to_numpy() & llm
    workflow = frame["workflow_id"].cat.codes.to_numpy().astype(np.int64)
    call = frame["call_id"].cat.codes.to_numpy().astype(np.int64)
    has_id = call >= 0
    key = workflow * (len(frame["call_id"].cat.categories) + 1) + call
    repeated = pd.Series(np.where(has_id, key, -1 - np.arange(n))).duplicated().to_numpy()
    call_id = repeated & ~exact
    example = ""
    for mask, what in (
        (exact, "an exact repeat of an earlier row"),
        (call_id, "a repeated call_id"),
    ):
        if mask.any():
            row = int(np.argmax(mask))
            first = int(
                np.argmax(
                    (hashes == hashes[row]) if what.startswith("an exact") else (key == key[row])
                )
            )
            wid = frame["workflow_id"].iloc[row]
            cid = frame["call_id"].iloc[row]
            files = sorted({sources[file_of_row[first]], sources[file_of_row[row]]})
            example = (
                f"workflow '{wid}', call '{cid}' ({what}) in {' and '.join(files)}"
                if not pd.isna(cid)
                else f"workflow '{wid}' ({what}) in {' and '.join(files)}"
            )
            break
    return Duplicates(exact, call_id, example)


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
