"""Assemble normalised batches into one CallTable frame and run the whole-table checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.types import union_categoricals

from planner.errors import InputError
from planner.types.calls import CALL_COLUMNS


def concat_calls(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate canonical frames, merging categories instead of expanding to strings.

    Consumes `frames`: each column is dropped from the batches once it is merged, so the
    peak stays near one table plus one column rather than two tables.
    """
    if len(frames) == 1:
        return frames.pop()
    columns: dict[str, Any] = {}
    for name, dtype in CALL_COLUMNS.items():
        if dtype == "category":
            columns[name] = _union([f[name].array for f in frames])
        else:
            columns[name] = np.concatenate([f[name].to_numpy() for f in frames])
        for f in frames:
            del f[name]
    frames.clear()
    return pd.DataFrame(columns, copy=False)


def _union(parts: list[pd.Categorical]) -> pd.Categorical:
    """union_categoricals, with the label hashing done in Arrow (several times faster for
    a million workflow ids); labels keep their first-seen order."""
    if any(p.categories.dtype != "str" for p in parts):
        return union_categoricals(parts)
    labels = [pa.array(p.categories, type=pa.large_string()) for p in parts]
    # One hash pass over all batches' labels: positions of each label in the union.
    encoded = pc.dictionary_encode(pa.concat_arrays(labels))
    unique = encoded.dictionary
    positions = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    codes = []
    offset = 0
    for part, label in zip(parts, labels, strict=True):
        lookup = np.append(positions[offset : offset + len(label)], -1)
        offset += len(label)
        codes.append(lookup[np.asarray(part.codes)])
    categories = pd.Index(pd.array(unique, dtype="str"))
    return pd.Categorical.from_codes(np.concatenate(codes), categories=categories, validate=False)


def check_workflow_types(frame: pd.DataFrame, sources: Sequence[str]) -> None:
    """Every workflow must have one workflow type; rows that disagree are an input error."""
    if frame.empty:
        return
    workflow = frame["workflow_id"].cat.codes.to_numpy()
    # float64: numpy's ufunc.at has a fast path for floats, not for int64.
    wtype = frame["workflow_type"].cat.codes.to_numpy().astype(np.float64)
    n = int(workflow.max()) + 1
    low = np.full(n, np.inf)
    high = np.full(n, -np.inf)
    np.minimum.at(low, workflow, wtype)
    np.maximum.at(high, workflow, wtype)
    mixed = np.flatnonzero((high >= 0) & (low != high))
    if mixed.size:
        w = int(mixed[0])
        low, high = low.astype(np.int64), high.astype(np.int64)
        categories = frame["workflow_type"].cat.categories
        name = frame["workflow_id"].cat.categories[w]
        raise InputError(
            f"{', '.join(sources)}: workflow '{name}', column 'workflow_type': rows disagree "
            f"('{categories[low[w]]}' and '{categories[high[w]]}'); give all rows of one "
            "workflow execution the same workflow_type"
        )
