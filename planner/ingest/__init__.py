"""Ingest: validate and normalise raw trace rows into the canonical CallTable (pure).

File reading and streaming live in `planner.io.traces`; this package holds the pure parts
(column mapping, batch normalisation, OTLP span conversion) so they can be tested on
in-memory data.
"""

from planner.ingest.mapping import TraceMapping
from planner.ingest.normalise import BatchPosition, check_columns, normalise_batch

__all__ = ["BatchPosition", "TraceMapping", "check_columns", "normalise_batch"]
