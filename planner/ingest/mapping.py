"""The YAML column mapping that adapts a foreign trace table to the canonical schema.

A mapping names, for each canonical column, the source column (or a JSON path such as
`hash_ids[0]` or `timing_events[-1].timestamp` for nested JSONL records), the units of
numeric times, the timestamp format of string times, and fixed values for columns the
table does not have (a serving log of one model has no `model` column). See
traces/README.md for the format and traces/mappings/ for the shipped examples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from planner.errors import did_you_mean

TimeUnit = Literal["s", "ms", "us", "ns"]

# Canonical input columns a mapping may name (DESIGN.md, traces/README.md).
CANONICAL_INPUT_COLUMNS: tuple[str, ...] = (
    "workflow_id",
    "workflow_type",
    "kind",
    "model",
    "agent",
    "call_id",
    "parent_call_id",
    "start_time",
    "end_time",
    "latency_s",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "status",
    "prefix_hash",
    "prefix_hashes",
    "prefix_block_tokens",
)

SECONDS_PER_UNIT: dict[str, float] = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


@dataclass(frozen=True)
class TraceMapping:
    """How to read a table that does not use the canonical column names.

    Attributes:
        columns: canonical column -> source column or JSON path (`a.b`, `a[0]`, `a[-1].b`).
        time_unit: unit of numeric `start_time` / `end_time` values.
        latency_unit: unit of the column mapped to `latency_s`.
        timestamp_format: strptime format of string times (e.g. "%d/%m/%Y %H:%M:%S"),
            or "iso8601"; None parses numbers as numbers and strings as ISO 8601.
        model: a fixed model name for every row (the table has no model column).
        workflow_type: a fixed workflow type for every row.
        serving_level: the table logs single requests, not workflows: each row becomes a
            workflow of one call and end times may be missing.
        prefix_block_tokens: a fixed block size (tokens) for every row's prefix_hashes
            (Mooncake's hash_ids cover 512-token blocks), when no column gives it.
        description: free text (where the trace comes from, its licence).
    """

    columns: dict[str, str] = field(default_factory=dict)
    time_unit: TimeUnit = "s"
    latency_unit: TimeUnit = "s"
    timestamp_format: str | None = None
    model: str | None = None
    workflow_type: str | None = None
    serving_level: bool = False
    prefix_block_tokens: int | None = None
    description: str = ""

    def __post_init__(self) -> None:
        for name in self.columns:
            if name not in CANONICAL_INPUT_COLUMNS:
                raise ValueError(
                    f"key 'columns': unknown canonical column '{name}'"
                    f"{did_you_mean(name, CANONICAL_INPUT_COLUMNS)}; allowed: "
                    + ", ".join(CANONICAL_INPUT_COLUMNS)
                )
        if "end_time" in self.columns and "latency_s" in self.columns:
            raise ValueError("key 'columns': map either end_time or latency_s, not both")
        if self.prefix_block_tokens is not None and self.prefix_block_tokens < 1:
            raise ValueError(
                f"key 'prefix_block_tokens': must be a whole number >= 1, got "
                f"{self.prefix_block_tokens}"
            )

    def source_of(self, canonical: str) -> str:
        """The source column (or path) holding `canonical`; the canonical name by default."""
        return self.columns.get(canonical, canonical)


IDENTITY = TraceMapping()
