"""OpenTelemetry GenAI spans (OTLP/JSON) -> raw call rows in canonical column names.

Rules (REFERENCE.md section 4; traces/README.md documents them for users):
- An LLM call is a span whose `gen_ai.operation.name` is chat, text_completion,
  generate_content or embeddings (or, for older instrumentations without an operation
  name, a span that carries `gen_ai.request.model` / `gen_ai.system`).
- `execute_tool` spans are tool rows (tool time); `invoke_agent`, `invoke_workflow`,
  `create_agent` and any other span are structure, not calls.
- Workflow id: `gen_ai.conversation.id` on the span or its nearest ancestor, else the
  trace id. Workflow type: `gen_ai.workflow.name` on the span or an ancestor, else
  "default". Agent: `gen_ai.agent.name` (or `gen_ai.agent.id`) on the span or the
  nearest ancestor (normally the enclosing `invoke_agent` span).
- Model: `gen_ai.request.model`, else `gen_ai.response.model` (the name the workflow
  asked for is what a deployment serves). Tokens: `gen_ai.usage.input_tokens` /
  `output_tokens`, else the older `prompt_tokens` / `completion_tokens`; cached input:
  `gen_ai.usage.cache_read.input_tokens`.
- call_id is the span id. parent_call_id (the call this one waited for) is the first span
  link to an LLM or tool span of the same trace, else the parent span when it is an LLM or
  tool call itself, otherwise empty. Agent spans are structure, never parents.
- Tool rows take their agent from `gen_ai.tool.name` (the canonical schema names the tool
  in `agent`).
- status: span status code ERROR -> "error", else "ok"; a `gen_ai.request.retry` or
  `retry` attribute that is true (or a count > 0) marks a retry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

import pandas as pd

from planner.errors import InputError
from planner.ingest.mapping import TraceMapping

LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
TOOL_OPERATIONS = frozenset({"execute_tool"})

INPUT_ATTR = "gen_ai.usage.input_tokens"
OUTPUT_ATTR = "gen_ai.usage.output_tokens"
_INPUT_NAMES = (INPUT_ATTR, "gen_ai.usage.prompt_tokens")
_OUTPUT_NAMES = (OUTPUT_ATTR, "gen_ai.usage.completion_tokens")
_CACHED_NAMES = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens")
_MODEL_NAMES = ("gen_ai.request.model", "gen_ai.response.model")

# Raw columns produced here carry the OTLP attribute names, so a bad span is reported
# by the attribute the user has to fix.
OTLP_MAPPING = TraceMapping(
    columns={
        "model": "gen_ai.request.model",
        "input_tokens": INPUT_ATTR,
        "output_tokens": OUTPUT_ATTR,
        "cached_input_tokens": "gen_ai.usage.cache_read.input_tokens",
        "start_time": "startTimeUnixNano",
        "end_time": "endTimeUnixNano",
        "workflow_id": "traceId",
        "call_id": "spanId",
        "agent": "gen_ai.agent.name",
        "workflow_type": "gen_ai.workflow.name",
    },
    time_unit="ns",
)


def is_otlp_export(document: object) -> bool:
    """True for an OTLP/JSON trace export object (`{"resourceSpans": [...]}`)."""
    return isinstance(document, Mapping) and "resourceSpans" in document


def spans_to_rows(exports: Iterable[tuple[str, int, object]]) -> pd.DataFrame:
    """Flatten OTLP exports into one raw row per LLM or tool span.

    Spans are resolved together across all exports given (a trace may be split over
    several export batches or files), so ancestors are found wherever they were written.

    Args:
        exports: (file, line number, parsed JSON document) of every OTLP export.

    Returns:
        Raw rows whose columns are named as in OTLP_MAPPING, plus `kind`, `status`,
        `parent_call_id` and `source` (the file), ordered by start time then span id.

    Raises:
        InputError: a document that is not an OTLP export, or a span without times.
    """
    spans: dict[tuple[str, str], dict[str, Any]] = {}
    for source, line, document in exports:
        if not is_otlp_export(document):
            raise InputError(
                f"{source}, line {line}: not an OTLP/JSON trace export (no 'resourceSpans' "
                "key); export spans with the OTLP file exporter, or give canonical call rows "
                "a .jsonl/.csv/.parquet name (see traces/README.md)"
            )
        for span in _iter_spans(cast(Mapping[str, Any], document), source, line):
            spans[(span["traceId"], span["spanId"])] = span
    rows = [_row(span, spans) for span in spans.values() if span["kind"] is not None]
    columns = [*OTLP_MAPPING.columns.values(), "kind", "status", "parent_call_id", "source"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["startTimeUnixNano", "spanId"], kind="stable").reset_index(drop=True)


def _iter_spans(document: Mapping[str, Any], source: str, line: int) -> Iterable[dict[str, Any]]:
    for resource in _list(document.get("resourceSpans")):
        if not isinstance(resource, Mapping):
            continue
        described = resource.get("resource")
        resource_attrs = _attributes(
            described.get("attributes") if isinstance(described, Mapping) else None
        )
        scopes = _list(resource.get("scopeSpans")) + _list(
            resource.get("instrumentationLibrarySpans")  # OTLP before 0.15
        )
        for scope in scopes:
            if not isinstance(scope, Mapping):
                continue
            for span in _list(scope.get("spans")):
                if not isinstance(span, Mapping):
                    continue
                attrs = _attributes(span.get("attributes"))
                trace_id, span_id = str(span.get("traceId", "")), str(span.get("spanId", ""))
                if not trace_id or not span_id:
                    raise InputError(
                        f"{source}, line {line}: a span without traceId/spanId "
                        f"(name {span.get('name')!r}); every OTLP span needs both"
                    )
                yield {
                    "traceId": trace_id,
                    "spanId": span_id,
                    "parent": str(span.get("parentSpanId") or ""),
                    "links": [
                        (str(link.get("traceId") or trace_id), str(link.get("spanId", "")))
                        for link in _list(span.get("links"))
                        if isinstance(link, Mapping)
                    ],
                    "start": span.get("startTimeUnixNano"),
                    "end": span.get("endTimeUnixNano"),
                    "attrs": attrs,
                    "kind": _kind(str(span.get("name", "")), attrs),
                    "error": _is_error(span.get("status")),
                    "resource": resource_attrs,
                    "source": source,
                }


def _row(span: dict[str, Any], spans: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    attrs = span["attrs"]
    trace = span["traceId"]
    candidates = [*span["links"], (trace, span["parent"])]
    parent = next(
        (
            spans[key]
            for key in candidates
            if key[0] == trace and key in spans and spans[key]["kind"] is not None
        ),
        None,
    )
    retry = attrs.get("gen_ai.request.retry", attrs.get("retry"))
    status = "error" if span["error"] else ("retry" if _truthy(retry) else "ok")
    is_llm = span["kind"] == "llm"
    return {
        "gen_ai.request.model": _first(attrs, _MODEL_NAMES) if is_llm else None,
        INPUT_ATTR: _first(attrs, _INPUT_NAMES) if is_llm else 0,
        OUTPUT_ATTR: _first(attrs, _OUTPUT_NAMES) if is_llm else 0,
        "gen_ai.usage.cache_read.input_tokens": _first(attrs, _CACHED_NAMES) if is_llm else None,
        "startTimeUnixNano": _nanos(span["start"]),
        "endTimeUnixNano": _nanos(span["end"]),
        "traceId": _inherited(span, spans, ("gen_ai.conversation.id",)) or trace,
        "spanId": span["spanId"],
        "gen_ai.agent.name": _inherited(span, spans, ("gen_ai.agent.name", "gen_ai.agent.id"))
        if is_llm
        else span["attrs"].get("gen_ai.tool.name"),
        "gen_ai.workflow.name": _inherited(span, spans, ("gen_ai.workflow.name",)),
        "kind": span["kind"],
        "status": status,
        "parent_call_id": parent["spanId"] if parent is not None else None,
        "source": span["source"],
    }


def _kind(name: str, attrs: Mapping[str, Any]) -> str | None:
    operation = attrs.get("gen_ai.operation.name")
    if operation is None and name:
        operation = name.split(" ", 1)[0]  # span name is "{operation} {model}"
    if operation in LLM_OPERATIONS:
        return "llm"
    if operation in TOOL_OPERATIONS:
        return "tool"
    if attrs.get("gen_ai.operation.name") is None and (
        "gen_ai.request.model" in attrs or "gen_ai.system" in attrs
    ):
        return "llm"  # older instrumentations: no operation name on completion spans
    return None


def _inherited(
    span: dict[str, Any], spans: dict[tuple[str, str], dict[str, Any]], names: tuple[str, ...]
) -> Any:
    """The first of `names` on the span or its nearest ancestor that has one, else on the
    span's resource (an exporter may put the workflow name there)."""
    seen = 0
    current: dict[str, Any] | None = span
    while current is not None and seen < 10_000:  # guards against parent cycles
        value = _first(current["attrs"], names)
        if value not in (None, ""):
            return value
        parent_id = current["parent"]
        current = spans.get((current["traceId"], parent_id)) if parent_id else None
        seen += 1
    value = _first(span["resource"], names)
    return None if value == "" else value


def _attributes(raw: object) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for item in _list(raw):
        if isinstance(item, Mapping) and "key" in item:
            attrs[str(item["key"])] = _value(item.get("value"))
    return attrs


def _value(value: object) -> Any:
    if not isinstance(value, Mapping):
        return value
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    if "intValue" in value:  # int64 is a JSON string in OTLP/JSON
        try:
            return int(value["intValue"])
        except (TypeError, ValueError):
            return value["intValue"]
    if "arrayValue" in value:
        return [_value(v) for v in _list(value["arrayValue"].get("values"))]
    return None


def _first(attrs: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if attrs.get(name) is not None:
            return attrs[name]
    return None


def _nanos(value: object) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(int(str(value)))
    except ValueError:
        return float("nan")


def _is_error(status: object) -> bool:
    if not isinstance(status, Mapping):
        return False
    code = status.get("code")
    return code in (2, "2", "STATUS_CODE_ERROR", "ERROR")


def _truthy(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value > 0
    return isinstance(value, str) and value.lower() in ("true", "1", "yes")


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list) else []
