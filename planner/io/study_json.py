"""The workload study as JSON: the public contract of `planner characterise --json`.

Keys follow the dataclasses of `planner.study.types` in field order (docs/characterise.md
documents each); `shapes` becomes an object {shape: workflows}. Floats keep full
precision; NaN, infinities and unknown values are null. The same study always gives the
same bytes. Keys may be added in a schema version; never removed or renamed.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from planner.study.types import WorkflowStudy, WorkloadStudy

SCHEMA_VERSION = 1


def study_to_dict(study: WorkloadStudy) -> dict[str, Any]:
    """A JSON-ready dict in contract key order."""
    return {
        "schema_version": SCHEMA_VERSION,
        "calls": study.calls,
        "workflows": [_workflow(w) for w in study.workflows],
        "notes": list(study.notes),
        "sources": list(study.sources),
    }


def dumps_study(study: WorkloadStudy) -> str:
    """Deterministic JSON text (2-space indent, trailing newline)."""
    return json.dumps(study_to_dict(study), indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def _workflow(w: WorkflowStudy) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for f in dataclasses.fields(w):
        value = getattr(w, f.name)
        doc[f.name] = (
            {shape: count for shape, count in value} if f.name == "shapes" else _plain(value)
        )
    return doc


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value
