"""The report's files: evaluation/replay documents read, the HTML page written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from planner.errors import InputError
from planner.io.atomic import write_text_atomic

REPORT_FILE = "index.html"


# `criterion` of a `planner replay --json` document (planner.replay.report.CRITERION);
# evaluate's are the simulator's sustainability criteria.
MEASURED = "measured"


def read_evaluation_document(path: Path, flag: str, measured: bool = False) -> dict[str, Any]:
    """A `planner evaluate --json` document, or with `measured` a `planner replay --json`
    one (the same shape, `criterion: measured`).

    Raises:
        InputError: the file is missing, not JSON, not such a document, or the other kind.
    """
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{flag} {path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{flag} {path}: not JSON ({exc}); write it with planner evaluate --json"
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("plan"), dict):
        raise InputError(
            f"{flag} {path}: expected an evaluation document with a 'plan' object "
            "(the output of planner evaluate --json or planner replay --json)"
        )
    if doc.get("schema_version") != 1:
        raise InputError(
            f"{flag} {path}: schema_version must be 1, got {doc.get('schema_version')!r}"
        )
    made_by = "planner replay --json" if measured else "planner evaluate --json"
    if measured and doc.get("criterion") != MEASURED:
        raise InputError(
            f"{flag} {path}: not a replay (criterion {doc.get('criterion')!r}, not "
            f"{MEASURED!r}); write it with {made_by}, or pass a simulated one to --evaluation"
        )
    if not measured and doc.get("criterion") == MEASURED:
        raise InputError(
            f"{flag} {path}: a measured replay, not an evaluation; pass it to --replay"
        )
    return doc


def write_report(directory: Path, html: str) -> Path:
    """Write the page as `directory/index.html` (atomically: a reader sees the old page
    or the new one, never half of it); returns its path.

    Raises:
        OutputError: `directory` is a file, or cannot be written.
    """
    from planner.io.outputs import OutputError

    if directory.exists() and not directory.is_dir():
        raise OutputError(f"{directory}: is a file; -o/--output takes a folder for index.html")
    path = directory / REPORT_FILE
    try:
        write_text_atomic(path, html)
    except OSError as exc:
        raise OutputError(
            f"{directory}: cannot write {REPORT_FILE} ({exc.strerror}); pass another -o/--output"
        ) from None
    return path
