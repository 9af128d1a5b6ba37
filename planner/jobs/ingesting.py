"""The ingest job: traces -> validated CallTable -> Aggregate LLM Pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from planner.types.apl import AggregatePipeline
from planner.types.calls import CallTable


@dataclass(frozen=True)
class Ingested:
    calls: CallTable
    apl: AggregatePipeline
    apl_json: str  # the public `planner ingest --json` document


def ingest_job(
    path: Path,
    mapping: Path | None = None,
    skip_bad_rows: bool = False,
    output: Path | None = None,
) -> Ingested:
    """Read and validate the traces, aggregate them, and write the APL JSON to `output`
    (atomically) when given.

    Raises:
        InputError, ConfigError: unreadable or invalid traces or mapping.
    """
    from planner.aggregate import aggregate_pipeline
    from planner.io.apl_json import dumps_pipeline
    from planner.io.atomic import write_text_atomic
    from planner.io.traces import load_mapping, read_calls

    table_mapping = load_mapping(mapping) if mapping is not None else None
    calls = read_calls(path, table_mapping, skip_bad_rows=skip_bad_rows)
    apl = aggregate_pipeline(calls)
    text = dumps_pipeline(apl)
    if output is not None:
        write_text_atomic(output, text)
    return Ingested(calls, apl, text)
