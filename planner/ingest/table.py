"""Assemble normalised batches into one CallTable frame and run the whole-table checks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from planner.calls import CALL_COLUMNS
from planner.errors import InputError


def concat_calls(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate canonical frames, merging categories instead of expanding to strings."""
    if len(frames) == 1:
        return frames[0]
    columns: dict[str, object] = {}
    for name, dtype in CALL_COLUMNS.items():
        if dtype == "category":
            columns[name] = union_categoricals([f[name].array for f in frames])
        else:
            columns[name] = np.concatenate([f[name].to_numpy() for f in frames])
    return pd.DataFrame(columns).astype(CALL_COLUMNS)


def check_workflow_types(frame: pd.DataFrame, sources: Sequence[str]) -> None:
    """Every workflow must have one workflow type; rows that disagree are an input error."""
    if frame.empty:
        return
    workflow = frame["workflow_id"].cat.codes.to_numpy()
    wtype = frame["workflow_type"].cat.codes.to_numpy()
    n = int(workflow.max()) + 1
    low = np.full(n, np.iinfo(np.int64).max)
    high = np.full(n, -1)
    np.minimum.at(low, workflow, wtype)
    np.maximum.at(high, workflow, wtype)
    mixed = np.flatnonzero((high >= 0) & (low != high))
    if mixed.size:
        w = int(mixed[0])
        categories = frame["workflow_type"].cat.categories
        name = frame["workflow_id"].cat.categories[w]
        raise InputError(
            f"{', '.join(sources)}: workflow '{name}', column 'workflow_type': rows disagree "
            f"('{categories[low[w]]}' and '{categories[high[w]]}'); give all rows of one "
            "workflow execution the same workflow_type"
        )
