"""The CallTable: one row per LLM call (or tool call) of a workflow execution.

This is the contract between `ingest` (which produces it, having validated every row)
and `aggregate` / `simulate` (which trust it). Times are seconds on one clock per table
(epoch seconds, or seconds from the trace's start); tokens are counts.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

KIND_LLM = "llm"
KIND_TOOL = "tool"

# Column -> pandas dtype. String columns are categorical to keep memory per call small.
CALL_COLUMNS: dict[str, str] = {
    "workflow_id": "category",
    "workflow_type": "category",
    "kind": "category",  # "llm" or "tool"
    "model": "category",  # NaN on tool rows
    "agent": "category",  # NaN when unknown
    "call_id": "category",  # NaN when unknown
    "parent_call_id": "category",  # NaN when unknown or a root call
    "start_s": "float64",
    "end_s": "float64",  # NaN when the source has no end time (serving-level traces)
    "input_tokens": "int64",
    "output_tokens": "int64",
    "cached_input_tokens": "float64",  # NaN when the source does not report it
    "status": "category",  # "ok", "error" or "retry"
    "prefix_hash": "category",  # optional repeated-prefix key (e.g. first hash block); NaN if none
    # Chained KV-block hashes of the prompt (block i's hash names the whole prefix up to
    # and including block i), an int64 numpy array per row; None when the source has none.
    "prefix_hashes": "object",
    "prefix_block_tokens": "float64",  # tokens per hashed block; NaN without prefix_hashes
}


@dataclass(frozen=True)
class CallTable:
    """Validated calls of one or more trace files.

    Attributes:
        frame: the calls, with exactly the columns and dtypes of CALL_COLUMNS.
        sources: the files the calls came from, in reading order.
        has_end_times: False when some LLM calls have no end time (serving-level traces
            that only log arrivals); latency statistics are then unavailable.
        skipped_rows: reason -> count of rows dropped under --skip-bad-rows.
        notes: facts about the input the output should mention (serving-level trace,
            missing end times); carried into AggregatePipeline.notes.
    """

    frame: pd.DataFrame
    sources: tuple[str, ...] = ()
    has_end_times: bool = True
    skipped_rows: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.frame)

    def of_workflow_types(self, kept: Collection[str]) -> CallTable:
        """The calls of the workflow types `kept` only."""
        keep = self.frame["workflow_type"].isin(list(kept))
        return replace(self, frame=self.frame.loc[keep].reset_index(drop=True))
