"""The characterise job: traces -> validated CallTable -> the workload study (+ its JSON)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from planner.study.types import WorkloadStudy


@dataclass(frozen=True)
class Characterised:
    study: WorkloadStudy
    study_json: str  # the public `planner characterise --json` document


def characterise_job(
    path: Path, mapping: Path | None = None, output: Path | None = None
) -> Characterised:
    """Read and validate the traces, study them, and write the study's JSON to `output`
    (atomically) when given.

    Raises:
        InputError, ConfigError: unreadable or invalid traces or mapping.
    """
    from planner.io.atomic import write_text_atomic
    from planner.io.study_json import dumps_study
    from planner.io.traces import load_mapping, read_calls
    from planner.study import characterise_workload

    calls = read_calls(path, load_mapping(mapping) if mapping is not None else None)
    study = characterise_workload(calls)
    text = dumps_study(study)
    if output is not None:
        write_text_atomic(output, text)
    return Characterised(study, text)
