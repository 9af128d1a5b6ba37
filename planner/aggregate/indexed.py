"""The CallTable as dense integer-indexed numpy arrays, the form every statistic uses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from planner.calls import KIND_LLM, KIND_TOOL, CallTable


@dataclass(frozen=True)
class Indexed:
    """Rows of a CallTable with compact, name-sorted integer ids.

    Attributes:
        wf: workflow index per row (0..n_workflows-1).
        wf_type: workflow type index per workflow (types sorted by name).
        model: model index per row (models sorted by name), -1 on tool rows.
        is_llm, is_tool: row kinds.
        rel_start, rel_end: row times relative to its workflow's first start (seconds;
            rel_end NaN when end times are missing).
        wf_start, wf_wall: workflow start (absolute) and wall time (NaN without end times).
        timed: durations are known for every row.
    """

    wf: np.ndarray
    wf_type: np.ndarray
    type_names: tuple[str, ...]
    model: np.ndarray
    model_names: tuple[str, ...]
    is_llm: np.ndarray
    is_tool: np.ndarray
    rel_start: np.ndarray
    rel_end: np.ndarray
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
    row_type, type_names = _dense(frame["workflow_type"].array, sort=True)
    wf_type = np.zeros(n_wf, dtype=np.int64)
    wf_type[wf] = row_type
    model, model_names = _dense(frame["model"].array, sort=True)

    start = frame["start_s"].to_numpy(dtype="float64")
    end = frame["end_s"].to_numpy(dtype="float64")
    timed = not bool(np.isnan(end).any())
    wf_start = np.full(n_wf, np.inf)
    np.minimum.at(wf_start, wf, start)
    wf_end = np.full(n_wf, -np.inf)
    np.fmax.at(wf_end, wf, end if timed else start)
    wall = wf_end - wf_start if timed else np.full(n_wf, np.nan)
    rel_start = start - wf_start[wf]
    rel_end = end - wf_start[wf] if timed else np.full(len(end), np.nan)
    return Indexed(
        wf=wf,
        wf_type=wf_type,
        type_names=type_names,
        model=model,
        model_names=model_names,
        is_llm=is_llm,
        is_tool=is_tool,
        rel_start=rel_start,
        rel_end=rel_end,
        wf_start=wf_start,
        wf_wall=wall,
        timed=timed,
    )


def _dense_codes(values: pd.Categorical) -> np.ndarray:
    """Row ids over the categories actually used, in first-category order."""
    codes = np.asarray(values.codes, dtype=np.int64)
    used = np.bincount(codes[codes >= 0], minlength=len(values.categories)) > 0
    lookup = np.append(np.cumsum(used) - 1, -1)
    return lookup[codes]


def _dense(values: pd.Categorical, *, sort: bool) -> tuple[np.ndarray, tuple[str, ...]]:
    """Row ids over the categories actually used (-1 stays -1), sorted by name."""
    codes = np.asarray(values.codes, dtype=np.int64)
    categories = np.asarray(values.categories, dtype=object)
    used = np.bincount(codes[codes >= 0], minlength=len(categories)) > 0
    names = categories[used].astype(str)
    rank = np.argsort(names, kind="stable") if sort else np.arange(len(names))
    position = np.empty(len(names), dtype=np.int64)
    position[rank] = np.arange(len(names))
    lookup = np.full(len(categories) + 1, -1, dtype=np.int64)
    lookup[np.flatnonzero(used)] = position
    return lookup[codes], tuple(str(n) for n in names[rank])
