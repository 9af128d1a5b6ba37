"""Identifier aliases used across the stages (no heavy imports: the CLI loads these)."""

from __future__ import annotations

ModelName = str  # catalog name of a served model
WorkflowType = str  # a workflow type of the traces (rag, coding, ...)
GpuType = str  # catalog name of a GPU type
