"""Human and JSON summaries of plans, placements and evaluations: pure formatting.

The CLI prints these; notebooks and tests call them too. Nothing here reads or writes
files or runs a stage.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.types.plan import Plan

if TYPE_CHECKING:
    from collections.abc import Sequence

    from planner.place import Placement
    from planner.replay.measure import ReplayMeasure
    from planner.replay.metrics import ServerMeasure
    from planner.replay.report import ComparisonRow
    from planner.simulate.evaluate import Evaluation
    from planner.study.types import WorkloadStudy


def _finite(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else x


def plan_json(plan: Plan, path: Path | None = None) -> dict[str, Any]:
    """The `--json` document: plan.yaml's content plus per-type shortcuts and wall time."""
    from planner.io.plan_file import plan_document

    doc = plan_document(plan, with_wall=True)
    total_rate = sum(w.target_rate_per_s for w in plan.workflows)
    mean = (
        sum(w.target_rate_per_s * w.mean_latency_s for w in plan.workflows) / total_rate
        if total_rate > 0
        else math.nan
    )
    predicted = doc["predicted"]
    predicted["throughput_per_s"] = _finite(sum(w.throughput_per_s for w in plan.workflows))
    predicted["mean_latency_s"] = _finite(mean)
    predicted["per_workflow_type"] = {
        w.workflow_type: {
            "throughput_per_s": _finite(w.throughput_per_s),
            "mean_latency_s": _finite(w.mean_latency_s),
            "target_rate_per_s": w.target_rate_per_s,
        }
        for w in plan.workflows
    }
    if path is not None:
        doc["plan_file"] = str(path)
    safe: dict[str, Any] = _json_safe(doc)
    return safe


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def plan_summary(plan: Plan, path: Path) -> str:
    """The human summary: allocations, predictions, bottleneck, utilisation, solver."""
    lines = [f"Plan ({plan.objective}) written to {path}", "", "Allocation:"]
    # TP, and the data-parallel attention ranks where a replica has them (tp x dp).
    tps = [str(a.tp) if a.dp == 1 else f"{a.tp} x dp{a.dp}" for a in plan.allocations]
    tp_width = max([3, *map(len, tps)])
    lines.append(
        f"  {'model':<40} {'gpu':<16} {'tp':>{tp_width}} {'share':>6} {'replicas':>8} {'gpus':>6}"
    )
    for a, tp in zip(plan.allocations, tps, strict=True):
        lines.append(
            f"  {a.model:<40} {a.gpu_type:<16} {tp:>{tp_width}} {a.gpu_fraction:>6g} "
            f"{a.replicas:>8} {a.gpus:>6g}"
        )
    lines += ["", "Predicted per workflow type:"]
    lines.append(f"  {'type':<20} {'target/s':>9} {'max/s':>9} {'latency s':>10} {'SLO s':>7}")
    for w in plan.workflows:
        slo = f"{w.slo_s:g}" if w.slo_s is not None else "-"
        lines.append(
            f"  {w.workflow_type:<20} {w.target_rate_per_s:>9.3g} {w.throughput_per_s:>9.3g} "
            f"{w.mean_latency_s:>10.3f} {slo:>7}"
        )
    lines += ["", "Models:"]
    for m in plan.models:
        lines.append(
            f"  {m.model:<40} demand {m.demand_per_s:8.3g}/s  capacity {m.capacity_per_s:8.3g}/s"
            f"  utilisation {m.utilisation:5.1%}  call latency {m.call_latency_s:.3f} s"
            + (
                f"  prefix hits {m.prefix_hit_rate:5.1%} ({m.routing} routing)"
                if m.prefix_hit_rate > 0 or m.routing != "balanced"
                else ""
            )
        )
    s = plan.solver
    lines += [
        "",
        f"Bottleneck model: {plan.bottleneck_model}",
        f"GPUs: {plan.gpus_used:g} of {plan.gpus_total} used "
        f"({plan.gpus_used / max(1, plan.gpus_total):.0%}), {plan.gpus_free:g} left free",
    ]
    if plan.cost_per_hour is not None:
        per_1000 = plan.cost_per_1000_workflows
        lines.append(
            f"Cost: ${plan.cost_per_hour:,.2f}/hour"
            + (f", ${per_1000:,.4g} per 1,000 workflows" if per_1000 is not None else "")
        )
    if plan.power_kw is not None:
        lines.append(f"Power: {plan.power_kw:.3g} kW (board power of the GPUs used)")
    lines.append(
        f"Solver: {s.status}, objective {s.objective:.6g}, bound {s.bound:.6g}, "
        f"gap {s.gap:.2%}, {s.wall_s:.2f} s"
    )
    for st in s.stages:
        lines.append(
            f"  stage {st.stage}: {st.status}, {st.objective:.6g} (bound {st.bound:.6g}, "
            f"gap {st.gap:.2%}), {st.wall_s:.2f} s"
        )
    lines += [f"Note: {n}" for n in plan.notes]
    return "\n".join(lines)


def placement_summary(
    placement: Placement, manifests: Path, objects: int, replans: bool = True
) -> str:
    """Where the replicas went, what is left free, and what was written (and, when no
    traces source was given, that no re-planning CronJob was)."""
    f = placement.fragmentation
    nodes = sorted({n for r in placement.replicas for n in r.nodes})
    text = (
        f"placed {len(placement.replicas)} replicas on {len(nodes)} node(s); "
        f"free: {f.free_nodes} whole node(s), {f.free_gpus} whole GPU(s); "
        f"{f.partly_used_gpus} partly used GPU(s) leave {f.unused_share_gpus:g} GPU idle\n"
        f"wrote {objects} objects to {manifests} (kubectl apply -k {manifests})"
    )
    if not replans:
        text += "\nno re-planning CronJob: give --replan-traces-claim PVC or --replan-traces URL"
    return text


def evaluation_summary(ev: Evaluation) -> str:
    """The human summary of an evaluation: each candidate's rate and latency, the plan's
    per-model utilisation and the APL's prediction error."""
    lines = [f"target rate {ev.target_rate_per_s:.4g} workflows/s; sustainable = {ev.criterion}"]
    lines.append(
        f"{'allocation':<12} {'GPUs':>6} {'max rate/s':>11} {'mean s':>9} {'p50 s':>9} "
        f"{'p95 s':>9}  vs plan"
    )
    plan = ev.candidates[0]
    for c in ev.candidates:
        at = c.at_target
        nan = float("nan")
        mean, p50, p95 = (
            (at.latency_s.mean, at.latency_s.p50, at.latency_s.p95) if at else (nan,) * 3
        )
        versus = ""
        if c is not plan and c.max_rate_per_s > 0:
            versus = f"plan x{plan.max_rate_per_s / c.max_rate_per_s:.2f} throughput"
        elif c is not plan:
            versus = c.problem or "serves nothing"
        flag = "" if at is None or at.sustainable else " (overloaded at target)"
        lines.append(
            f"{c.name:<12} {c.gpus:>6.3g} {c.max_rate_per_s:>11.4g} "
            f"{mean:>9.4g} {p50:>9.4g} {p95:>9.4g}  {versus}{flag}"
        )
    if plan.at_target:
        lines.append("per-model utilisation of the plan at the target rate:")
        for m in plan.at_target.models:
            lines.append(
                f"  {m.model:<40} {m.replicas:>3} replicas  utilisation {m.utilisation:6.1%}  "
                f"call latency {m.mean_call_latency_s:.3g} s (queue {m.mean_queue_wait_s:.3g} s)"
            )
    from planner.simulate.report import per_workflow_type

    rows = per_workflow_type(plan)
    if rows:
        lines.append("per workflow type at the target rate (predicted / simulated):")
    for name, r in rows.items():
        lines.append(
            f"  {name:<20} mean {_s(r['predicted_mean_latency_s'])} / "
            f"{_s(r['simulated_mean_latency_s'])} s ({_pct(r['mean_latency_error'])}), "
            f"p95 {_s(r['predicted_p95_latency_s'])} / {_s(r['simulated_p95_latency_s'])} s "
            f"({_pct(r['p95_latency_error'])})"
        )
    lines.append(
        f"APL prediction error: max rate {plan.throughput_error:+.1%} "
        f"(predicted {plan.predicted_max_rate_per_s:.4g}/s), mean latency "
        f"{plan.latency_error:+.1%} (predicted {plan.predicted_mean_latency_s:.4g} s)"
    )
    lines += [f"Note: {n}" for n in ev.notes]
    return "\n".join(lines)


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:+.1%}"


def replay_summary(
    measure: ReplayMeasure,
    rows: Sequence[ComparisonRow] = (),
    servers: Sequence[ServerMeasure] = (),
) -> str:
    """`planner replay`'s printout (see `planner.replay.report.replay_summary`)."""
    from planner.replay.report import replay_summary as summary

    return summary(measure, rows, servers)


def study_summary(study: WorkloadStudy) -> str:
    """`planner characterise` without --json: a few lines per workflow type."""
    lines: list[str] = []

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.0%}"

    lines.append(f"{study.calls} calls from {len(study.sources)} file(s)")
    for w in study.workflows:
        c = w.calls_per_workflow
        lines.append(
            f"\n{w.workflow_type}: {w.workflow_count} workflows, LLM calls/workflow "
            f"p50 {c.p50:g} (p10-p90 {c.p10:g}-{c.p90:g}), {w.tool_calls} tool calls"
        )
        shapes = ", ".join(f"{s} {n}" for s, n in w.shapes) or "n/a"
        lines.append(f"  shapes: {shapes}")
        if w.depth is not None:
            fan = (
                f", LLM calls in flight max {w.max_concurrency.max:g}" if w.max_concurrency else ""
            )
            lines.append(f"  depth p50 {w.depth.p50:g} max {w.depth.max:g} ({w.depth_source}){fan}")
        if w.time_split is not None:
            s = w.time_split
            lines.append(
                f"  time: LLM {pct(s.llm_fraction)}, tools {pct(s.tool_fraction)}, "
                f"orchestration {pct(s.orchestration_fraction)}"
            )
        f = w.failures
        lines.append(
            f"  errors {f.error_calls}, retries {f.retry_calls} "
            f"({pct(f.workflows_with_failures_fraction)} of workflows)"
        )
        r = w.prefix_reuse
        lines.append(
            f"  prefix reuse: cached {pct(r.cached_input_fraction)}, repeated prefixes "
            f"{pct(r.repeated_prefix_fraction)}, context carry-over "
            f"{pct(r.context_carryover_fraction)}"
        )
        lines.append(
            f"  tokens: input p50 {w.input_tokens.p50:g} p90 {w.input_tokens.p90:g}, "
            f"output p50 {w.output_tokens.p50:g} p90 {w.output_tokens.p90:g}"
        )
        bursts = ", ".join(f"{b.window_s:g}s x{b.peak_to_mean:.2f}" for b in w.burstiness)
        lines.append(f"  arrivals peak/mean: {bursts or 'n/a'}")
        cv = "n/a" if w.latency_cv is None else f"{w.latency_cv:.2f}"
        shares = ", ".join(
            f"{m.model} {m.execution_share:.0%} (cv {m.execution_share_cv:.2f})"
            for m in w.stability
        )
        lines.append(f"  latency cv {cv}; execution shares: {shares}")
        for role in w.roles:
            latency = pct(role.latency_share)
            lines.append(
                f"  role {role.role}: {role.calls_per_workflow:.3g} calls/wf, "
                f"{pct(role.output_token_share)} of output tokens, {latency} of LLM time, "
                f"output p10-p90 {role.output_tokens_p10:g}-{role.output_tokens_p90:g}"
            )
        for p in w.patterns:
            lines.append(f"  path ({p.coverage:.0%}): {p.pattern}")
    for note in study.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines) + "\n"
