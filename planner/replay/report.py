"""The `planner replay --json` document and the comparison with a plan's prediction.

The document has the shape of `planner evaluate --json` (`schema_version`,
`target_rate_per_s`, `criterion`, `plan`, `baselines`, `prediction_error`) with
`criterion: "measured"`: under `plan` stand the measured figures (`mean_latency_s`,
`p50_latency_s`, `p95_latency_s`, `throughput_at_target_per_s`, `sustainable_at_target`,
`max_rate_per_s` when the offered rate saturated the endpoints, else null, `models`)
plus what only a replay has (`workflow_types`, `servers`, `calls`). `baselines` is
empty; `prediction_error` compares with the plan given to `--compare`.

Each model's `server_view` sets the servers' own timings (vLLM's latency histograms,
`planner.replay.metrics`) beside the client's means over the same calls (every call
of the replay, warm-up and drain included, not only the window's).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from planner.replay.measure import ModelMeasure, ReplayMeasure, WorkflowMeasure
from planner.replay.metrics import ServerMeasure, ServerTimings, server_timings
from planner.simulate.evaluate import predicted_max_rate_per_s, predicted_mean_latency_s
from planner.types.apl import Stats
from planner.types.plan import Plan

SCHEMA_VERSION = 1
CRITERION = "measured"
# The plan's latency prediction is for its target rate; a replay at another rate is
# compared only when the rates agree this closely.
RATE_TOLERANCE = 0.05


@dataclass(frozen=True)
class ComparisonRow:
    """One predicted figure beside its measurement.

    Attributes:
        error: (predicted - measured) / measured; NaN when not comparable.
        note: why the figures are not comparable, or what the measurement means.
    """

    quantity: str
    predicted: float
    measured: float
    error: float
    note: str = ""


def compare_with_plan(measure: ReplayMeasure, plan: Plan) -> tuple[ComparisonRow, ...]:
    """Plan predictions beside the replay's measurements: the workflow rate the plan
    sustains, mean workflow latency (overall and per type), per-model call latency."""
    rows: list[ComparisonRow] = []
    target = sum(w.target_rate_per_s for w in plan.workflows)
    same_rate = target > 0 and abs(measure.offered_rate_per_s - target) <= RATE_TOLERANCE * target
    rate_note = (
        ""
        if same_rate
        else f"replayed at {measure.offered_rate_per_s:.4g}/s, predicted at the plan's "
        f"target {target:.4g}/s"
    )
    predicted_max = predicted_max_rate_per_s(plan)
    t = measure.total
    if measure.sustainable:
        rows.append(
            ComparisonRow(
                "max workflow rate /s", predicted_max, t.throughput_per_s, math.nan,
                f"the endpoints kept up with {measure.offered_rate_per_s:.4g}/s: the maximum is "
                "at least the measured rate; replay above the predicted maximum to measure it",
            )
        )  # fmt: skip
    else:
        rows.append(
            ComparisonRow(
                "max workflow rate /s", predicted_max, measure.max_rate_per_s,
                _error(predicted_max, measure.max_rate_per_s),
                f"saturated: {measure.bottleneck_model}'s measured calls/s over its calls per "
                "workflow",
            )
        )  # fmt: skip
    latency_note = rate_note or ("" if measure.sustainable else "measured while overloaded")
    comparable = same_rate and measure.sustainable
    predicted_latency = predicted_mean_latency_s(plan)
    rows.append(
        ComparisonRow(
            "mean workflow latency s", predicted_latency, t.latency_s.mean,
            _error(predicted_latency, t.latency_s.mean) if comparable else math.nan,
            latency_note,
        )
    )  # fmt: skip
    by_type = {w.workflow_type: w for w in measure.workflows}
    for w in plan.workflows:
        got = by_type.get(w.workflow_type)
        measured = got.latency_s.mean if got else math.nan
        rows.append(
            ComparisonRow(
                f"latency s [{w.workflow_type}]", w.mean_latency_s, measured,
                _error(w.mean_latency_s, measured) if comparable else math.nan,
                "" if got else "not replayed",
            )
        )  # fmt: skip
    by_model = {m.model: m for m in measure.models}
    for m in plan.models:
        got_m = by_model.get(m.model)
        measured = got_m.timings.e2e_ms.mean / 1000 if got_m else math.nan
        rows.append(
            ComparisonRow(
                f"call latency s [{m.model}]", m.call_latency_s, measured,
                _error(m.call_latency_s, measured) if comparable else math.nan,
                "" if got_m else "not replayed",
            )
        )  # fmt: skip
    return tuple(rows)


def _error(predicted: float, measured: float) -> float:
    if not (measured > 0 and math.isfinite(predicted) and math.isfinite(measured)):
        return math.nan
    return (predicted - measured) / measured


def _num(x: float | None) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.6g}")


def _stats(s: Stats) -> dict[str, float | None]:
    return {"mean": _num(s.mean), "p50": _num(s.p50), "p95": _num(s.p95)}


def _server_view(m: ModelMeasure, servers: Sequence[ServerMeasure]) -> dict[str, Any]:
    seen = server_timings([s for s in servers if s.model == m.model])
    client = m.run_timings
    return {
        "requests": _num(seen.requests),
        "ttft_ms": _num(seen.ttft_ms),
        "tpot_ms": _num(seen.tpot_ms),
        "inter_token_ms": _num(seen.itl_ms),
        "e2e_ms": _num(seen.e2e_ms),
        "queue_ms": _num(seen.queue_ms),
        "client": {
            "calls": m.run_ok,
            "ttft_ms": _num(client.ttft_ms.mean) if client else None,
            "tpot_ms": _num(client.tpot_ms.mean) if client else None,
            "e2e_ms": _num(client.e2e_ms.mean) if client else None,
        },
    }


def _model_doc(m: ModelMeasure, servers: Sequence[ServerMeasure] = ()) -> dict[str, Any]:
    return {
        "model": m.model,
        "replicas": m.endpoints,
        "calls": m.calls,
        "ok": m.ok,
        "errors": m.errors,
        "timeouts": m.timeouts,
        "call_rate_per_s": _num(m.call_rate_per_s),
        "mean_concurrency": _num(m.mean_concurrency),
        "mean_call_latency_s": _num(m.timings.e2e_ms.mean / 1000),
        "mean_input_tokens": _num(m.mean_input_tokens),
        "mean_output_tokens": _num(m.mean_output_tokens),
        "ttft_ms": _stats(m.timings.ttft_ms),
        "tpot_ms": _stats(m.timings.tpot_ms),
        "e2e_ms": _stats(m.timings.e2e_ms),
        "first_error": m.first_error,
        "server_view": _server_view(m, servers),
    }


def _workflow_doc(w: WorkflowMeasure) -> dict[str, Any]:
    return {
        "workflow_type": w.workflow_type,
        "offered": w.offered,
        "completed": w.completed,
        "failed": w.failed,
        "incomplete": w.incomplete,
        "offered_rate_per_s": _num(w.offered_rate_per_s),
        "throughput_per_s": _num(w.throughput_per_s),
        "latency_s": _stats(w.latency_s),
        "backlog_growth": _num(w.backlog_growth),
    }


def _server_doc(s: ServerMeasure) -> dict[str, Any]:
    return {
        "model": s.model,
        "endpoint": s.endpoint,
        "scrapes": s.scrapes,
        "prompt_tokens": _num(s.prompt_tokens),
        "generation_tokens": _num(s.generation_tokens),
        "preemptions": _num(s.preemptions),
        "prefix_cache_queries": _num(s.prefix_cache_queries),
        "prefix_cache_hits": _num(s.prefix_cache_hits),
        "prefix_cache_hit_rate": _num(s.prefix_cache_hit_rate),
        "running": {"mean": _num(s.mean_running), "max": _num(s.max_running)},
        "waiting": {"mean": _num(s.mean_waiting), "max": _num(s.max_waiting)},
        "kv_cache_usage": {"mean": _num(s.mean_kv_usage), "max": _num(s.max_kv_usage)},
    }


def replay_document(
    measure: ReplayMeasure,
    servers: Sequence[ServerMeasure],
    replay: dict[str, Any],
    plan: Plan | None = None,
) -> dict[str, Any]:
    """The whole `planner replay --json` document.

    Args:
        replay: how it ran (settings, endpoints, traces), stored under `replay`.
        plan: the plan of `--compare`: its allocations are recorded (so `profile import`
            can file the measurements under their shapes) and its prediction compared.
    """
    t = measure.total
    measured = {
        "max_rate_per_s": _num(measure.max_rate_per_s),
        "bottleneck_model": measure.bottleneck_model,
        "bottleneck_rate_per_s": _num(measure.bottleneck_rate_per_s),
        "mean_latency_s": _num(t.latency_s.mean),
        "p50_latency_s": _num(t.latency_s.p50),
        "p95_latency_s": _num(t.latency_s.p95),
        "throughput_at_target_per_s": _num(t.throughput_per_s),
        "sustainable_at_target": measure.sustainable,
        "backlog_growth_at_target": _num(t.backlog_growth),
        "offered_rate_per_s": _num(t.offered_rate_per_s),
        "workflows": {
            "offered": t.offered,
            "completed": t.completed,
            "failed": t.failed,
            "incomplete": t.incomplete,
        },
        "allocations": [
            {
                "model": a.model,
                "gpu_type": a.gpu_type,
                "tensor_parallel": a.tp,
                # Data-parallel attention ranks, only when > 1 (as in plan.yaml).
                **({"data_parallel": a.dp} if a.dp > 1 else {}),
                "gpu_fraction": a.gpu_fraction,
                "replicas": a.replicas,
            }
            for a in (plan.allocations if plan else ())
        ],
        "models": [_model_doc(m, servers) for m in measure.models],
        # As `planner evaluate --json` keys it (`planner report --replay` reads it).
        "per_workflow_type": {
            w.workflow_type: {
                "mean_latency_s": _num(w.latency_s.mean),
                "p50_latency_s": _num(w.latency_s.p50),
                "p95_latency_s": _num(w.latency_s.p95),
            }
            for w in measure.workflows
        },
        "workflow_types": [_workflow_doc(w) for w in measure.workflows],
        "servers": [_server_doc(s) for s in servers],
    }
    rows = compare_with_plan(measure, plan) if plan else ()
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "target_rate_per_s": _num(measure.offered_rate_per_s),
        "criterion": CRITERION,
        "replay": {
            **replay,
            "window_s": _num(measure.window_s),
            "elapsed_s": _num(measure.elapsed_s),
            "interrupted": measure.interrupted,
            "stop_reason": measure.stop_reason,
            "notes": list(measure.notes),
        },
        "plan": measured,
        "baselines": {},
        "prediction_error": _prediction_error(rows),
        "comparison": [
            {
                "quantity": r.quantity,
                "predicted": _num(r.predicted),
                "measured": _num(r.measured),
                "error": _num(r.error),
                "note": r.note,
            }
            for r in rows
        ],
    }
    return doc


def _prediction_error(rows: Sequence[ComparisonRow]) -> dict[str, Any]:
    by = {r.quantity: r for r in rows}
    rate = by.get("max workflow rate /s")
    latency = by.get("mean workflow latency s")
    return {
        "max_rate_per_s": _num(rate.error) if rate else None,
        "mean_latency_s": _num(latency.error) if latency else None,
        "predicted": {
            "max_rate_per_s": _num(rate.predicted) if rate else None,
            "mean_latency_s": _num(latency.predicted) if latency else None,
        },
        "measured": {
            "max_rate_per_s": _num(rate.measured) if rate and not math.isnan(rate.error) else None,
            "mean_latency_s": _num(latency.measured) if latency else None,
        },
        "definition": "(plan prediction - replay measurement) / measurement; max rate only "
        "when the replay saturated the endpoints, latency only at the plan's target rate",
    }


def comparison_lines(rows: Sequence[ComparisonRow]) -> list[str]:
    """The side-by-side table `planner replay --compare` prints."""
    lines = [f"{'quantity':<44} {'predicted':>11} {'measured':>11} {'error':>8}  note"]
    for r in rows:
        err = f"{r.error:+.1%}" if math.isfinite(r.error) else "-"
        lines.append(
            f"{r.quantity:<44} {r.predicted:>11.4g} {r.measured:>11.4g} {err:>8}  {r.note}"
        )
    return lines


def replay_summary(
    m: ReplayMeasure,
    rows: Sequence[ComparisonRow] = (),
    servers: Sequence[ServerMeasure] = (),
) -> str:
    """What `planner replay` prints: workflows per type, calls per model, the servers'
    own timings beside the client's (when they export histograms), the comparison."""
    t = m.total
    state = "sustained" if m.sustainable else "NOT sustained"
    lines = [
        f"offered {m.offered_rate_per_s:.4g} workflows/s for a {m.window_s:.4g} s window: "
        f"{t.completed}/{t.offered} completed ({t.failed} failed, {t.incomplete} incomplete), "
        f"throughput {t.throughput_per_s:.4g}/s ({state})"
    ]
    if m.stop_reason:
        lines.append(f"stopped early: {m.stop_reason}")
    lines.append(
        f"{'workflow type':<20} {'done':>6} {'rate/s':>8} {'mean s':>9} {'p50 s':>9} {'p95 s':>9}"
    )
    for w in (*m.workflows, t):
        s = w.latency_s
        lines.append(
            f"{w.workflow_type:<20} {w.completed:>6} {w.throughput_per_s:>8.4g} "
            f"{s.mean:>9.4g} {s.p50:>9.4g} {s.p95:>9.4g}"
        )
    lines.append(
        f"{'model':<28} {'calls':>6} {'err':>4} {'t/o':>4} {'calls/s':>8} "
        f"{'TTFT ms':>9} {'TPOT ms':>9} {'e2e ms':>9} {'p95 e2e':>9}"
    )
    for mm in m.models:
        tm = mm.timings
        lines.append(
            f"{mm.model:<28} {mm.calls:>6} {mm.errors:>4} {mm.timeouts:>4} "
            f"{mm.call_rate_per_s:>8.4g} {tm.ttft_ms.mean:>9.4g} {tm.tpot_ms.mean:>9.4g} "
            f"{tm.e2e_ms.mean:>9.4g} {tm.e2e_ms.p95:>9.4g}"
        )
    views = [(mm, server_timings([s for s in servers if s.model == mm.model])) for mm in m.models]
    views = [(mm, v) for mm, v in views if v.requests > 0]
    if views:
        lines.append("server (vLLM's histograms) / client, every call of the replay:")
        lines.append(
            f"{'model':<28} {'requests':>13} {'TTFT ms':>15} {'TPOT ms':>15} {'e2e ms':>15}"
        )
        lines += [_view_line(mm, v) for mm, v in views]
    lines += [f"note: {note}" for note in m.notes]
    if rows:
        lines.append("predicted (plan) vs measured (replay):")
        lines += [f"  {line}" for line in comparison_lines(rows)]
    return "\n".join(lines)


def _view_line(m: ModelMeasure, v: ServerTimings) -> str:
    c = m.run_timings

    def pair(server: float, client: float | None) -> str:
        return f"{server:.4g}/{client:.4g}" if client is not None else f"{server:.4g}/-"

    return (
        f"{m.model:<28} {pair(v.requests, m.run_ok):>13} "
        f"{pair(v.ttft_ms, c.ttft_ms.mean if c else None):>15} "
        f"{pair(v.tpot_ms, c.tpot_ms.mean if c else None):>15} "
        f"{pair(v.e2e_ms, c.e2e_ms.mean if c else None):>15}"
    )
