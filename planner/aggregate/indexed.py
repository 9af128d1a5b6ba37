"""The CallTable as dense integer-indexed numpy arrays, the form every statistic uses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from planner.types.calls import KIND_LLM, KIND_TOOL, CallTable


@dataclass(frozen=True)
class Indexed:
    """Rows of a CallTable with compact, name-sorted integer ids.

    Kept small on purpose (10 million calls): per-row arrays are int32 or bool, and
    times are kept for LLM rows only.

    Attributes:
        wf: workflow index per row (0..n_workflows-1), int32.
        wf_type: workflow type index per workflow (types sorted by name).
        is_llm: LLM rows; llm_rows their row numbers.
        llm_wf, llm_model: workflow and model index (models sorted by name) per LLM call.
        llm_start, llm_end: LLM call times relative to the workflow's first start
            (seconds; llm_end NaN when end times are missing).
        tool_wf, tool_duration_s: workflow and duration of each tool row.
        wf_start, wf_wall: workflow start (absolute) and wall time (NaN without end times).
        timed: durations are known for every row.
    """

    wf: np.ndarray
    wf_type: np.ndarray
    type_names: tuple[str, ...]
    model_names: tuple[str, ...]
    is_llm: np.ndarray
    llm_rows: np.ndarray
    llm_wf: np.ndarray
    llm_model: np.ndarray
    llm_start: np.ndarray
    llm_end: np.ndarray
    tool_wf: np.ndarray
    tool_duration_s: np.ndarray
    wf_start: np.ndarray
    wf_wall: np.ndarray
    timed: bool

    @property
    def n_workflows(self) -> int:
        return len(self.wf_type)

    @property
    def n_models(self) -> int:
        return len(self.model_names)


def index_calls(calls: CallTable) -> Indexed:
    frame = calls.frame
    kinds = frame["kind"].array
    is_llm = np.asarray(kinds == KIND_LLM)
    is_tool = np.asarray(kinds == KIND_TOOL)
    wf = _dense_codes(frame["workflow_id"].array)
    n_wf = int(wf.max()) + 1 if len(wf) else 0
    row_type, type_names = _dense(frame["workflow_type"].array)
    wf_type = np.zeros(n_wf, dtype=np.int64)
    wf_type[wf] = row_type
    del row_type

    start = frame["start_s"].to_numpy(dtype="float64")
    end = frame["end_s"].to_numpy(dtype="float64")
    timed = not bool(np.isnan(end).any())
    wf_start = np.full(n_wf, np.inf)
    np.minimum.at(wf_start, wf, start)
    wf_end = np.full(n_wf, -np.inf)
    np.fmax.at(wf_end, wf, end if timed else start)
    wall = wf_end - wf_start if timed else np.full(n_wf, np.nan)

    all_llm = bool(is_llm.all())
    index = np.int32 if len(frame) < 2**31 else np.int64
    llm_rows = (np.arange(len(frame)) if all_llm else np.flatnonzero(is_llm)).astype(index)
    llm_wf = wf if all_llm else wf[llm_rows]
    llm_start = start[llm_rows] - wf_start[llm_wf]
    llm_end = end[llm_rows] - wf_start[llm_wf] if timed else np.full(len(llm_rows), np.nan)
    model, model_names = _dense(frame["model"].array, rows=llm_rows)
    return Indexed(
        wf=wf,
        wf_type=wf_type,
        type_names=type_names,
        model_names=model_names,
        is_llm=is_llm,
        llm_rows=llm_rows,
        llm_wf=llm_wf,
        llm_model=model,
        llm_start=llm_start,
        llm_end=llm_end,
        tool_wf=wf[is_tool],
        tool_duration_s=(end - start)[is_tool],
        wf_start=wf_start,
        wf_wall=wall,
        timed=timed,
    )


def _dense_codes(values: pd.Categorical) -> np.ndarray:
    """Row ids (int32) over the categories actually used, in first-category order."""
    codes = np.asarray(values.codes)
    used = np.bincount(codes[codes >= 0], minlength=len(values.categories)) > 0
    lookup = np.append(np.cumsum(used) - 1, -1).astype(np.int32)
    return lookup[codes]


def _dense(
    values: pd.Categorical, rows: np.ndarray | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Ids (int32) over the categories actually used, sorted by name (-1 stays -1)."""
    codes = np.asarray(values.codes)
    if rows is not None and len(rows) != len(codes):
        codes = codes[rows]
    categories = np.asarray(values.categories, dtype=object)
    used = np.bincount(codes[codes >= 0], minlength=len(categories)) > 0
    names = categories[used].astype(str)
    rank = np.argsort(names, kind="stable")
    position = np.empty(len(names), dtype=np.int32)
    position[rank] = np.arange(len(names), dtype=np.int32)
    lookup = np.full(len(categories) + 1, -1, dtype=np.int32)
    lookup[np.flatnonzero(used)] = position
    return lookup[codes], tuple(str(n) for n in names[rank])
