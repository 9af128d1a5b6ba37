"""The report page: one self-contained HTML document (pure; `planner.io.report_file` writes it).

    render_report(inputs) -> str

Figures are SVG documents embedded as base64 `data:` images, styles are inline, and there
is no script: the page opens without network access and renders the same everywhere.
The same inputs give the same bytes (no dates, sorted keys, fixed number formats).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from planner import __version__
from planner.place import Placement
from planner.report import plots
from planner.report.views import AllocationCost, ProfileView, allocation_costs
from planner.simulate.curves import LatencyCurve
from planner.study.types import WorkflowStudy, WorkloadStudy
from planner.types.plan import Plan


@dataclass(frozen=True)
class ReportInputs:
    """Everything the page shows.

    Attributes:
        traces, plan_path: what the report was made from (shown, not read).
        curves: the plan first, then the baselines, simulated at `rates_per_s`.
        target_rate_per_s: the plan's summed target rate (where per-type latency is compared).
        evaluation, replay: `planner evaluate --json` documents (replay: measured figures
            in the same shape), when given.
    """

    traces: str
    plan_path: str
    study: WorkloadStudy
    plan: Plan
    placement: Placement
    curves: tuple[LatencyCurve, ...]
    target_rate_per_s: float
    profiles: tuple[ProfileView, ...]
    evaluation: Mapping[str, Any] | None = None
    replay: Mapping[str, Any] | None = None
    prices: Mapping[str, float] | None = None  # $ per GPU-hour per GPU type (the cluster's)
    power_w: Mapping[str, float] | None = None  # board power per GPU per GPU type


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:2px solid #4e79a7;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.5em}table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f6f8}td.l,th.l{text-align:left}img{max-width:100%;display:block;margin:.6em 0}
.note{color:#666;font-size:.9em}nav a{margin-right:1em}code{background:#f4f6f8;padding:0 .2em}
"""


def render_report(inputs: ReportInputs) -> str:
    """The whole page as HTML text."""
    colours = plots.model_colours([a.model for a in inputs.plan.allocations])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>planner report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>planner report</h1>",
        f'<p class="note">Traces: <code>{escape(inputs.traces)}</code> '
        f"({inputs.study.calls} calls). Plan: <code>{escape(inputs.plan_path)}</code>. "
        f"planner {escape(__version__)}.</p>",
        '<nav><a href="#workload">Workload</a><a href="#plan">Plan</a>'
        '<a href="#evidence">Evidence</a><a href="#profiles">Profiles</a></nav>',
        _workload(inputs.study),
        _plan(inputs, colours),
        _evidence(inputs),
        _profiles(inputs.profiles),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _img(svg: str, alt: str) -> str:
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/svg+xml;base64,{data}">'


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> str:
    """A table; the first `left` columns are left-aligned text."""

    def cell(tag: str, i: int, value: Any) -> str:
        cls = ' class="l"' if i < left else ""
        return f"<{tag}{cls}>{escape(_fmt(value))}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "unbounded"
        return f"{value:.4g}"
    return str(value)


def _pct(x: float | None) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.1%}"


# ---- Workload --------------------------------------------------------------------------


def _workload(study: WorkloadStudy) -> str:
    ws = study.workflows
    out = ['<h2 id="workload">Workload</h2>']
    rows = []
    for w in ws:
        depth = f"{w.depth.p50:g} / {w.depth.max:g} ({w.depth_source})" if w.depth else None
        conc = (
            f"{w.max_concurrency.p50:g} / {w.max_concurrency.max:g}" if w.max_concurrency else None
        )
        latency = f"{w.latency_s.p50:.3g} / {w.latency_s.p90:.3g}" if w.latency_s else None
        rows.append(
            [
                w.workflow_type,
                w.workflow_count,
                f"{w.calls_per_workflow.p50:g} / {w.calls_per_workflow.p90:g}",
                w.tool_calls,
                depth,
                conc,
                latency,
                w.failures.error_calls,
                w.failures.retry_calls,
                _pct(w.prefix_reuse.cached_input_fraction),
                _pct(w.prefix_reuse.repeated_prefix_fraction),
                _pct(w.prefix_reuse.context_carryover_fraction),
            ]
        )
    out.append(
        _table(
            [
                "workflow type",
                "workflows",
                "LLM calls p50 / p90",
                "tool calls",
                "depth p50 / max",
                "in flight p50 / max",
                "latency s p50 / p90",
                "errors",
                "retries",
                "cached input",
                "repeated prefixes",
                "context carry-over",
            ],
            rows,
        )
    )
    out.append(_img(plots.calls_per_workflow(ws), "LLM calls per workflow"))
    out.append("<h3>Graph shapes</h3>")
    out.append(_img(plots.shapes(ws), "graph shape classes"))
    if any(w.time_split is not None for w in ws):
        out.append("<h3>Where the time goes</h3>")
        out.append(_img(plots.time_split(ws), "critical-path time split"))
    out.append("<h3>Token lengths</h3>")
    out.append(_img(plots.token_lengths(ws), "input and output token lengths"))
    if any(w.burstiness for w in ws):
        out.append("<h3>Burstiness of arrivals</h3>")
        out.append(_img(plots.burstiness(ws), "arrival peak-to-mean per window"))
    out.append("<h3>Execution share stability against latency spread</h3>")
    out.append(
        "<p class=\"note\">Each model's share of a workflow's LLM time varies far less than "
        "the workflow's end-to-end latency when the Aggregate LLM Pipeline applies.</p>"
    )
    out.append(_img(plots.stability(ws), "execution share cv and latency cv"))
    if any(w.roles for w in ws):
        out.append("<h3>Agent roles</h3>")
        out.append(_img(plots.roles(ws), "per-role shares"))
        out.append(_roles_table(ws))
    if any(w.patterns for w in ws):
        out.append("<h3>Role paths</h3>")
        rows = [
            [w.workflow_type, p.pattern, p.workflows, _pct(p.coverage)]
            for w in ws
            for p in w.patterns
        ]
        out.append(_table(["workflow type", "pattern", "workflows", "coverage"], rows, left=2))
    for note in study.notes:
        out.append(f'<p class="note">{escape(note)}</p>')
    return "\n".join(out)


def _roles_table(ws: Sequence[WorkflowStudy]) -> str:
    rows = [
        [
            w.workflow_type,
            r.role,
            ", ".join(r.models),
            r.calls_per_workflow,
            _pct(r.call_share),
            _pct(r.output_token_share),
            _pct(r.latency_share),
            f"{r.output_tokens_p10:g}-{r.output_tokens_p90:g}",
        ]
        for w in ws
        for r in w.roles
    ]
    return _table(
        [
            "workflow type", "role", "models", "calls/workflow", "calls", "output tokens",
            "LLM time", "output p10-p90",
        ],
        rows,
        left=3,
    )  # fmt: skip


# ---- Plan ------------------------------------------------------------------------------


def _plan(inputs: ReportInputs, colours: dict[str, str]) -> str:
    plan, placement = inputs.plan, inputs.placement
    out = ['<h2 id="plan">Plan</h2>']
    s = plan.solver
    out.append(
        f"<p>Objective <code>{escape(plan.objective)}</code>: {plan.gpus_used:g} of "
        f"{plan.gpus_total} GPUs used, {plan.gpus_free:g} free; solver {escape(s.status)}, "
        f"objective {_fmt(s.objective)}, bound {_fmt(s.bound)}, gap {_pct(s.gap)}.</p>"
    )
    out.append(_img(plots.cluster_map(placement, colours), "cluster map"))
    f = placement.fragmentation
    out.append(
        f'<p class="note">{f.free_gpus} free GPUs, {f.free_nodes} free nodes, '
        f"{f.partly_used_gpus} partly used GPUs ({f.unused_share_gpus:g} GPUs of unused "
        "shares). Outlined: tensor-parallel groups.</p>"
    )
    out.append("<h3>Allocations</h3>")
    out.append(_allocation_table(plan, allocation_costs(plan, inputs.prices, inputs.power_w)))
    out.append("<h3>Predicted</h3>")
    rows = [
        [w.workflow_type, w.target_rate_per_s, w.throughput_per_s, w.mean_latency_s, w.slo_s]
        for w in plan.workflows
    ]
    out.append(
        _table(["workflow type", "target rate/s", "max rate/s", "mean latency s", "SLO s"], rows)
    )
    headers = ["model", "calls/s", "capacity calls/s", "utilisation", "call latency s"]
    with_prefix = any(m.prefix_hit_rate > 0 or m.routing != "balanced" for m in plan.models)
    if with_prefix:
        headers += ["prefix-cache hit rate", "routing"]
    rows = []
    for m in plan.models:
        row: list[Any] = [
            m.model, m.demand_per_s, m.capacity_per_s, _pct(m.utilisation), m.call_latency_s
        ]  # fmt: skip
        if with_prefix:
            row += [_pct(m.prefix_hit_rate), m.routing]
        rows.append(row)
    out.append(_table(headers, rows))
    if plan.bottleneck_model:
        out.append(f'<p class="note">Bottleneck model: {escape(plan.bottleneck_model)}.</p>')
    for note in plan.notes:
        out.append(f'<p class="note">{escape(note)}</p>')
    return "\n".join(out)


def _allocation_table(plan: Plan, costs: Sequence[AllocationCost] | None) -> str:
    """The allocations; with $/hour, $ per 1,000 workflows and kW columns and a total row
    when the plan has prices (power alone when only power is known)."""
    headers = ["model", "GPU type", "TP", "GPU share", "replicas", "GPUs"]
    with_cost = costs is not None and plan.cost_per_hour is not None
    with_power = costs is not None and plan.power_kw is not None
    if with_cost:
        headers += ["$/hour", "$ per 1,000 workflows"]
    if with_power:
        headers += ["power kW"]
    rows: list[list[Any]] = []
    for i, a in enumerate(plan.allocations):
        tp = a.tp if a.dp == 1 else f"{a.tp} x DP {a.dp}"  # data-parallel attention ranks
        row: list[Any] = [a.model, a.gpu_type, tp, f"{a.share_eighths}/8", a.replicas, a.gpus]
        if with_cost and costs is not None:
            row += [costs[i].cost_per_hour, costs[i].cost_per_1000_workflows]
        if with_power and costs is not None:
            row += [costs[i].power_kw]
        rows.append(row)
    if with_cost or with_power:
        total: list[Any] = ["total", "", "", "", sum(a.replicas for a in plan.allocations)]
        total.append(plan.gpus_used)
        if with_cost:
            total += [plan.cost_per_hour, plan.cost_per_1000_workflows]
        if with_power:
            total += [plan.power_kw]
        rows.append(total)
    table = _table(headers, rows, left=2)
    if with_cost or with_power:
        what = "Cost and power" if with_cost and with_power else "Cost" if with_cost else "Power"
        per_1k = "; $ per 1,000 workflows at the plan's target rates" if with_cost else ""
        table += (
            f'<p class="note">{what} of the GPUs each allocation uses (its share of each '
            f"GPU){per_1k}.</p>"
        )
    return table


# ---- Evidence --------------------------------------------------------------------------


def _evidence(inputs: ReportInputs) -> str:
    out = ['<h2 id="evidence">Evidence</h2>']
    curves = inputs.curves
    out.append(
        "<p>Each allocation replays the traced workflows in the simulator at the same rates "
        "and seed; hollow markers: the rate is not sustainable. Dashed: the plan's target "
        f"rate ({inputs.target_rate_per_s:.4g} workflows/s).</p>"
    )
    out.append(_img(plots.latency_vs_rate(curves, inputs.target_rate_per_s), "latency vs rate"))
    rows = []
    for c in curves:
        if c.problem:
            rows.append([c.name, c.gpus, None, None, c.problem])
            continue
        at = _closest(c, inputs.target_rate_per_s)
        rows.append(
            [
                c.name,
                c.gpus,
                at.latency_s.mean if at else None,
                at.latency_s.p95 if at else None,
                "sustainable" if at and at.sustainable else "overloaded",
            ]
        )
    out.append(_table(["allocation", "GPUs", "mean latency s", "p95 latency s", "at target"], rows))
    out.append(_per_type(inputs))
    if inputs.evaluation is not None:
        out.append("<h3>Evaluation</h3>")
        out.append(_mismatch(inputs.plan, inputs.evaluation, "--evaluation"))
        out.append(_evaluation_table(inputs.evaluation))
        out.append(_prefix_hits(inputs.evaluation))
    if inputs.replay is not None:
        out.append("<h3>Replay</h3>")
        out.append(_mismatch(inputs.plan, inputs.replay, "--replay"))
        out.append(_replay_table(inputs.replay))
        out.append(_replay_hits(inputs.plan, inputs.replay))
    return "\n".join(out)


def _prefix_hits(doc: Mapping[str, Any]) -> str:
    """Predicted vs simulated prefix-cache hit rate per model (evaluate's `prefix_hit_rate`)."""
    hits = doc.get("prefix_hit_rate")
    if not isinstance(hits, dict) or not hits:
        return ""
    rows = []
    for model, h in sorted(hits.items()):
        h = h if isinstance(h, dict) else {}
        error = _float(h.get("error_pp"))
        rows.append(
            [
                model,
                str(h.get("routing", "n/a")),
                _float(h.get("replicas")),
                _pct(_float(h.get("predicted"))),
                _pct(_float(h.get("simulated"))),
                "n/a" if error is None else f"{round(error, 1) + 0.0:+.1f} pp",
                str(h.get("evidence", "")),
            ]
        )
    return "<h4>Prefix-cache hit rate, predicted against simulated</h4>" + _table(
        ["model", "routing", "replicas", "predicted", "simulated", "error", "evidence"], rows
    )


def _replay_table(doc: Mapping[str, Any]) -> str:
    """A `planner replay --json` document: measured figures, and the plan's prediction
    when the replay was run with --compare (its top-level `prediction_error`)."""
    measured = doc.get("plan") or {}
    error = doc.get("prediction_error") or {}
    predicted = error.get("predicted") or {}
    workflows = measured.get("workflows") or {}
    rows = [
        [
            _float(doc.get("target_rate_per_s")),
            _float(measured.get("throughput_at_target_per_s")),
            measured.get("sustainable_at_target"),
            f"{workflows.get('completed', 'n/a')}/{workflows.get('offered', 'n/a')}",
            _float(measured.get("max_rate_per_s")),
            _float(measured.get("mean_latency_s")),
            _float(measured.get("p95_latency_s")),
            _float(predicted.get("max_rate_per_s")),
            _float(predicted.get("mean_latency_s")),
            _pct(_float(error.get("max_rate_per_s"))),
            _pct(_float(error.get("mean_latency_s"))),
        ]
    ]
    table = _table(
        [
            "offered rate/s", "throughput/s", "sustained", "completed", "max rate/s",
            "mean latency s", "p95 latency s", "predicted max rate/s", "predicted latency s",
            "rate error", "latency error",
        ],
        rows, left=0,
    )  # fmt: skip
    return table


def _replay_hits(plan: Plan, doc: Mapping[str, Any]) -> str:
    """Per model: the plan's predicted prefix-cache hit rate beside the hit rate the
    replayed vLLM servers counted (summed over their endpoints)."""
    servers = doc.get("plan", {}).get("servers")
    if not isinstance(servers, list) or not servers:
        return ""
    hits: dict[str, float] = {}
    queries: dict[str, float] = {}
    for s in servers:
        if not isinstance(s, dict):
            continue
        q, h = _float(s.get("prefix_cache_queries")), _float(s.get("prefix_cache_hits"))
        if q is None or h is None:
            continue
        model = str(s.get("model"))
        queries[model] = queries.get(model, 0.0) + q
        hits[model] = hits.get(model, 0.0) + h
    if not queries:
        return ""
    predicted = {m.model: m.prefix_hit_rate for m in plan.models}
    rows = []
    for model in sorted(queries):
        measured = hits[model] / queries[model] if queries[model] > 0 else None
        pred = predicted.get(model)
        diff = None if pred is None or measured is None else (pred - measured) * 100
        rows.append(
            [
                model,
                _pct(pred),
                _pct(measured),
                "n/a" if diff is None else f"{round(diff, 1) + 0.0:+.1f} pp",
            ]
        )
    return "<h4>Prefix-cache hit rate, predicted against replayed servers</h4>" + _table(
        ["model", "predicted", "measured (vLLM counters)", "error"], rows
    )


def _closest(curve: LatencyCurve, rate: float) -> Any:
    if not curve.points:
        return None
    return min(curve.points, key=lambda p: abs(p.offered_rate_per_s - rate))


def _per_type(inputs: ReportInputs) -> str:
    plan_curve = inputs.curves[0] if inputs.curves else None
    at = _closest(plan_curve, inputs.target_rate_per_s) if plan_curve else None
    types = [w.workflow_type for w in inputs.plan.workflows]
    predicted: list[float | None] = [w.mean_latency_s for w in inputs.plan.workflows]
    simulated_by = dict(at.latency_by_type_s) if at else {}
    simulated: list[float | None] = [
        simulated_by[t].mean if t in simulated_by else None for t in types
    ]
    series: list[tuple[str, Sequence[float | None]]] = [
        ("predicted (APL)", predicted),
        ("simulated", simulated),
    ]
    headers = ["workflow type", "predicted s", "simulated s", "error"]
    replayed: list[float | None] = []
    if inputs.replay is not None:
        per = inputs.replay.get("plan", {}).get("per_workflow_type", {}) or {}
        replayed = [_float(per.get(t, {}).get("mean_latency_s")) for t in types]
        series.append(("replayed", replayed))
        headers += ["replayed s", "error vs replay"]
    rows = []
    for i, t in enumerate(types):
        row: list[Any] = [t, predicted[i], simulated[i], _pct(_err(predicted[i], simulated[i]))]
        if replayed:
            row += [replayed[i], _pct(_err(predicted[i], replayed[i]))]
        rows.append(row)
    return "\n".join(
        [
            "<h3>Predicted against simulated, per workflow type</h3>",
            _img(plots.predicted_vs_measured(types, series), "predicted vs simulated"),
            _table(headers, rows),
            '<p class="note">error = (predicted - measured) / measured, at the target rate.</p>',
        ]
    )


def _err(predicted: float | None, measured: float | None) -> float | None:
    if predicted is None or measured is None or not measured > 0:
        return None
    return (predicted - measured) / measured


def _float(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def _mismatch(plan: Plan, doc: Mapping[str, Any], flag: str) -> str:
    """A warning when the document's plan allocations are not this plan's."""
    given = doc.get("plan", {}).get("allocations")
    if not isinstance(given, list):
        return ""
    if not given:
        return (
            f'<p class="note">{escape(flag)} records no allocations (a replay run without '
            "--compare): it is shown as measured, not checked against this plan.</p>"
        )
    try:
        theirs = sorted(
            (str(a["model"]), str(a["gpu_type"]), int(a["tensor_parallel"]),
             float(a["gpu_fraction"]), int(a["replicas"]))
            for a in given
        )  # fmt: skip
    except (KeyError, TypeError, ValueError):
        return f'<p class="note">{escape(flag)}: its plan allocations could not be read.</p>'
    ours = sorted((a.model, a.gpu_type, a.tp, a.gpu_fraction, a.replicas) for a in plan.allocations)
    if theirs == ours:
        return ""
    return (
        f'<p class="note"><b>{escape(flag)} was made for other allocations than this plan'
        "'s</b>; its figures describe that allocation.</p>"
    )


def _evaluation_table(doc: Mapping[str, Any]) -> str:
    """The plan (and baselines) of an evaluate-shaped document."""
    entries = [("plan", doc.get("plan", {}))]
    entries += sorted((doc.get("baselines") or {}).items())
    rows = []
    for name, c in entries:
        predicted = c.get("predicted") or {}
        error = c.get("prediction_error") or {}
        rows.append(
            [
                name,
                _float(c.get("gpus")),
                _float(c.get("max_rate_per_s")),
                _float(c.get("mean_latency_s")),
                _float(c.get("p95_latency_s")),
                _float(predicted.get("max_rate_per_s")),
                _float(predicted.get("mean_latency_s")),
                _pct(_float(error.get("max_rate_per_s"))),
                _pct(_float(error.get("mean_latency_s"))),
            ]
        )
    target = _float(doc.get("target_rate_per_s"))
    head = f"<p>Target rate {_fmt(target)} workflows/s.</p>" if target is not None else ""
    return head + _table(
        [
            "allocation", "GPUs", "max rate/s", "mean latency s", "p95 latency s",
            "predicted max rate/s", "predicted latency s", "rate error", "latency error",
        ],
        rows,
    )  # fmt: skip


# ---- Profiles --------------------------------------------------------------------------


def _profiles(views: Sequence[ProfileView]) -> str:
    out = ['<h2 id="profiles">Profiles</h2>']
    out.append(
        "<p>Mean call latency against request rate per replica, for every shape (TP degree, "
        "GPU share) that holds the model, at the model's mean token shape in the traces. "
        "Stars: where the plan runs each shape it uses.</p>"
    )
    if views:
        out.append(_img(plots.profiles(views), "profiles"))
    rows = [
        [v.model, v.gpu_type, v.input_tokens, v.output_tokens, s.label, ", ".join(s.sources),
         s.capacity_per_s, s.used_point[0] if s.used_point else None,
         s.used_point[1] if s.used_point else None]
        for v in views
        for s in v.series
    ]  # fmt: skip
    out.append(
        _table(
            [
                "model",
                "GPU type",
                "input tokens",
                "output tokens",
                "shape",
                "source",
                "capacity/s",
                "plan load/s",
                "plan latency s",
            ],
            rows,
            left=2,
        )
    )
    return "\n".join(out)
