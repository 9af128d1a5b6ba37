"""An Evaluation as plain data: the `planner evaluate --json` document.

Keys: `plan`, `baselines` (uniform, independent, greedy, and `user` for an allocation
file), `prediction_error`; each with `max_rate_per_s` and `mean_latency_s`, and
`per_workflow_type` latency at the target rate. Unknown
figures (NaN, unbounded) are null.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from planner.simulate.evaluate import CandidateResult, Evaluation
from planner.simulate.prefix_hits import PrefixHitCheck

SCHEMA_VERSION = 1


def _num(x: float | None) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.6g}")


def per_workflow_type(c: CandidateResult) -> dict[str, Any]:
    """Per workflow type: predicted (APL) and simulated mean and p95 latency at the
    target, and the relative errors of the prediction."""
    out: dict[str, Any] = {}
    simulated = dict(c.at_target.latency_by_type_s) if c.at_target else {}
    for w in c.predicted_workflows:
        sim = simulated.get(w.workflow_type)
        mean = sim.mean if sim else math.nan
        p95 = sim.p95 if sim else math.nan
        predicted_p95 = w.p95_latency_s if w.p95_latency_s is not None else math.nan
        out[w.workflow_type] = {
            "predicted_mean_latency_s": _num(w.mean_latency_s),
            "simulated_mean_latency_s": _num(mean),
            "mean_latency_error": _num(_error(w.mean_latency_s, mean)),
            "predicted_p95_latency_s": _num(predicted_p95),
            "simulated_p95_latency_s": _num(p95),
            "p95_latency_error": _num(_error(predicted_p95, p95)),
        }
    return out


def _error(predicted: float, simulated: float) -> float:
    if not simulated > 0 or not math.isfinite(predicted):
        return math.nan
    return (predicted - simulated) / simulated


def candidate_document(c: CandidateResult, plan: CandidateResult | None = None) -> dict[str, Any]:
    """One candidate; with `plan`, also the plan's throughput and latency ratios over it."""
    at = c.at_target
    doc: dict[str, Any] = {
        "max_rate_per_s": _num(c.max_rate_per_s),
        "mean_latency_s": _num(at.latency_s.mean if at else math.nan),
        "p50_latency_s": _num(at.latency_s.p50 if at else math.nan),
        "p95_latency_s": _num(at.latency_s.p95 if at else math.nan),
        "throughput_at_target_per_s": _num(at.throughput_per_s if at else math.nan),
        "sustainable_at_target": bool(at.sustainable) if at else False,
        "backlog_growth_at_target": _num(at.backlog_growth if at else math.nan),
        "queue_growth_at_target": _num(at.queue_growth if at else math.nan),
        "per_workflow_type": {
            name: {
                "mean_latency_s": _num(stats.mean),
                "p50_latency_s": _num(stats.p50),
                "p95_latency_s": _num(stats.p95),
            }
            for name, stats in (at.latency_by_type_s if at else ())
        },
        "gpus": _num(c.gpus),
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
            for a in c.allocations
        ],
        "models": [
            {
                "model": m.model,
                "replicas": m.replicas,
                "utilisation": _num(m.utilisation),
                "busy_fraction": _num(m.busy_fraction),
                "mean_concurrency": _num(m.mean_concurrency),
                "mean_call_latency_s": _num(m.mean_call_latency_s),
                "mean_queue_wait_s": _num(m.mean_queue_wait_s),
            }
            for m in (at.models if at else ())
        ],
        "predicted": {
            "max_rate_per_s": _num(c.predicted_max_rate_per_s),
            "mean_latency_s": _num(c.predicted_mean_latency_s),
        },
        "prediction_error": {
            "max_rate_per_s": _num(c.throughput_error),
            "mean_latency_s": _num(c.latency_error),
        },
        "prediction_by_workflow_type": per_workflow_type(c),
        "capacity_bound_per_s": _num(c.search.bound_rate_per_s if c.search else math.nan),
        "at_max_rate": _at_max(c),
        "rate_probes": [
            {"rate_per_s": _num(r), "sustainable": ok, "throughput_per_s": _num(t)}
            for r, ok, t in (c.search.probes if c.search else ())
        ],
        "problem": c.problem,
    }
    if plan is not None:
        doc["plan_throughput_ratio"] = _num(_ratio(plan.max_rate_per_s, c.max_rate_per_s))
        mean_c = at.latency_s.mean if at else math.nan
        mean_p = plan.at_target.latency_s.mean if plan.at_target else math.nan
        doc["plan_latency_ratio"] = _num(_ratio(mean_c, mean_p))
    return doc


def prefix_hit_document(checks: Sequence[PrefixHitCheck]) -> dict[str, Any]:
    """Per model: the plan's predicted hit rate and the block-level LRU replay's."""
    return {
        c.model: {
            "predicted": _num(c.predicted),
            "simulated": _num(c.simulated),
            "error_pp": _num(c.error_pp),
            "routing": c.routing,
            "replicas": c.replicas,
            "evidence": c.source,
        }
        for c in checks
    }


def evaluation_document(ev: Evaluation) -> dict[str, Any]:
    """The whole evaluation; the first candidate is the plan. `prefix_hit_rate` holds
    each model's predicted and replayed prefix-cache hit rate (planner.simulate.prefix_hits)."""
    plan, *others = ev.candidates
    s = ev.settings
    return {
        "schema_version": SCHEMA_VERSION,
        "target_rate_per_s": _num(ev.target_rate_per_s),
        "criterion": ev.criterion,
        "simulation": {
            "arrivals": s.pattern,
            "seed": s.seed,
            "workflows_per_simulation": s.workflows,
            "calls_per_simulation": s.calls,
            "warmup_fraction": s.warmup_fraction,
            "mix": dict(s.mix),
        },
        "plan": candidate_document(plan),
        "baselines": {c.name: candidate_document(c, plan) for c in others},
        **({"notes": list(ev.notes)} if ev.notes else {}),
        "prediction_error": {
            "max_rate_per_s": _num(plan.throughput_error),
            "mean_latency_s": _num(plan.latency_error),
            "predicted": {
                "max_rate_per_s": _num(plan.predicted_max_rate_per_s),
                "mean_latency_s": _num(plan.predicted_mean_latency_s),
            },
            "simulated": {
                "max_rate_per_s": _num(plan.max_rate_per_s),
                "mean_latency_s": _num(
                    plan.at_target.latency_s.mean if plan.at_target else math.nan
                ),
            },
            "definition": "(APL prediction - simulation) / simulation; max rate: the APL's "
            "saturation rate sum_w R_w min_m C_m/D_m; latency: at the target rate",
        },
        "prefix_hit_rate": prefix_hit_document(ev.prefix_hits),
    }


def _at_max(c: CandidateResult) -> dict[str, Any] | None:
    res = c.search.at_max if c.search else None
    if res is None:
        return None
    return {
        "mean_latency_s": _num(res.latency_s.mean),
        "p95_latency_s": _num(res.latency_s.p95),
        "throughput_per_s": _num(res.throughput_per_s),
        "backlog_growth": _num(res.backlog_growth),
        "queue_growth": _num(res.queue_growth),
    }


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 and math.isfinite(a) and math.isfinite(b) else math.nan
