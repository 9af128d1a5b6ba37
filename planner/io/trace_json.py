"""JSON trace files: canonical rows as JSON Lines, and OpenTelemetry GenAI OTLP/JSON.

JSONL rows are parsed line by line, 65,536 at a time; mapping paths such as
`timing_events[-1].timestamp` are extracted per record. OTLP exports of all files are
resolved together (a span's agent and workflow come from ancestors that another export
batch may hold), then normalised as one batch whose rows are named by span id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from planner.errors import InputError
from planner.ingest.mapping import TraceMapping
from planner.ingest.normalise import BatchPosition, check_columns, normalise_batch
from planner.ingest.otlp import OTLP_MAPPING, is_otlp_export, spans_to_rows
from planner.io.trace_common import (
    READ_ERRORS,
    Batch,
    empty_batch,
    open_text,
    trace_suffix,
    unreadable,
)

JSON_BATCH_ROWS = 1 << 16


def read_json(file: Path, mapping: TraceMapping, skip: bool) -> Iterator[Batch]:
    documents = _json_documents(file, skip)
    first = next(documents, None)
    if first is None:
        return
    paths = _json_paths(mapping)
    checked = False
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    bad_json = 0
    for line, document in _chain(first, documents):
        if document is None:
            bad_json += 1
            continue
        if not isinstance(document, dict):
            raise InputError(
                f"{file}, line {line}: expected one JSON object per line, got "
                f'{type(document).__name__}; write each call as {{"column": value, ...}}'
            )
        if not checked:
            check_columns([*document, *paths], mapping, str(file))
            checked = True
        for path in paths:
            document[path] = _extract(document, path)
        records.append(document)
        lines.append(line)
        if len(records) >= JSON_BATCH_ROWS:
            yield _json_batch(records, lines, mapping, file, skip)
            records, lines = [], []
    if records:
        yield _json_batch(records, lines, mapping, file, skip)
    if bad_json:
        yield empty_batch(mapping, file), {"jsonl: not valid JSON": bad_json}


def is_otlp_file(file: Path) -> bool:
    """`.json` files are OTLP exports; a `.jsonl` file is when its first document is one."""
    if trace_suffix(file) == ".json":
        return True
    if trace_suffix(file) != ".jsonl":
        return False
    try:
        first = next(_json_documents(file, skip=True), None)
    except READ_ERRORS:
        return False  # reported with its file when read as a table
    return first is not None and is_otlp_export(first[1])


def read_otlp(files: list[Path], path: Path, skip: bool) -> Batch:
    """All OTLP files at once: a trace's spans may be spread over several exports."""

    def documents() -> Iterator[tuple[str, int, Any]]:
        for file in files:
            try:
                found = False
                for line, document in _json_documents(file, skip):
                    found = True
                    yield str(file), line, document
            except READ_ERRORS as exc:
                raise unreadable(file, exc) from None
            if not found:
                raise InputError(f"{file}: empty file (no spans); remove it or export it again")

    bad_json = 0

    def parsed() -> Iterator[tuple[str, int, Any]]:
        nonlocal bad_json
        for document in documents():
            if document[2] is None:
                bad_json += 1  # only under --skip-bad-rows
            else:
                yield document

    rows = spans_to_rows(parsed())
    in_file = set(rows["source"])
    for file in files:
        if str(file) not in in_file:
            raise InputError(
                f"{file}: no LLM or tool spans (no gen_ai.operation.name chat, "
                "text_completion, generate_content, embeddings or execute_tool); is it a "
                "GenAI trace?"
            )
    single = len(files) == 1
    labels = tuple(
        f"{span} (trace {trace})" if single else f"{span} (trace {trace}, {source})"
        for span, trace, source in zip(rows["spanId"], rows["traceId"], rows["source"], strict=True)
    )
    position = BatchPosition(str(files[0] if single else path), 1, "span", row_labels=labels)
    frame, counts = normalise_batch(rows, OTLP_MAPPING, position, skip_bad_rows=skip)
    if bad_json:
        counts = {**counts, "jsonl: not valid JSON": bad_json}
    return frame, counts


def _json_batch(
    records: list[dict[str, Any]], lines: list[int], mapping: TraceMapping, file: Path, skip: bool
) -> Batch:
    position = BatchPosition(str(file), lines[0], "line", tuple(lines))
    return normalise_batch(
        pd.DataFrame.from_records(records), mapping, position, skip_bad_rows=skip
    )


def _chain(first: tuple[int, Any], rest: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    yield first
    yield from rest


def _json_documents(file: Path, skip: bool) -> Iterator[tuple[int, Any]]:
    """(line, parsed object) per non-blank line; a whole-file document when it spans lines."""
    with open_text(file) as handle:
        first_line = handle.readline()
        handle.seek(0)
        if first_line.strip() and not _parses(first_line):
            # Not JSON Lines: a pretty-printed single document (one OTLP export per file).
            # Only then is the whole file parsed at once; JSONL streams line by line.
            try:
                single = json.loads(handle.read())
            except json.JSONDecodeError:
                handle.seek(0)
            else:
                yield 1, single
                return
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                if skip:
                    yield number, None
                    continue
                raise InputError(
                    f"{file}, line {number}: not valid JSON ({exc.msg} at column {exc.colno}); "
                    "fix the line (a truncated file ends mid-object), or pass --skip-bad-rows"
                ) from None


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]")


def _json_paths(mapping: TraceMapping) -> list[str]:
    return [p for p in mapping.columns.values() if "[" in p or "." in p]


def _extract(document: dict[str, Any], path: str) -> Any:
    """Value at a path such as `timing_events[-1].timestamp`; None when absent."""
    if path in document:
        return document[path]
    value: Any = document
    for key, index in _PATH_PART.findall(path):
        if key:
            value = value.get(key) if isinstance(value, dict) else None
        else:
            i = int(index)
            value = value[i] if isinstance(value, list) and -len(value) <= i < len(value) else None
        if value is None:
            return None
    return value
