"""`planner ingest`: read traces and print the Aggregate LLM Pipeline."""

from __future__ import annotations

from planner.cli import app  # noqa: F401  (commands register on import)
