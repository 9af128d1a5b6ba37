"""The specification of a valid plan, and the objective evaluators, without a solver.

`check_plan` re-derives every hard constraint from the problem's data (not from the CP-SAT
model or the option lists): shapes exist and are structurally valid, a model has at most
one share of a GPU (placement never puts two shares of one model on a GPU), memory fits, each
model's demand is served below the utilisation cap, SLOs hold, and the replicas of each
GPU type are actually placed by first-fit decreasing on the cluster's nodes and NVLink
domains. It runs after every solve and in every test; the evaluators are the oracles
the brute-force tests compare the solver against.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from planner.search.packing import first_fit_decreasing
from planner.search.predict import (
    find_shape,
    mean_workflow_latency_s,
    predict_models,
    predict_workflows,
    throughput_scale,
)
from planner.search.problem import SearchProblem
from planner.types.plan import Allocation, Plan

_GRID = (1.0, 0.5, 0.25, 0.125)
_REL = 1e-6  # float tolerance on utilisation and SLO comparisons


def check_plan(problem: SearchProblem, plan: Plan) -> tuple[str, ...]:
    """Every violated constraint of `plan`, as sentences; empty when the plan is valid."""
    return check_allocations(problem, plan.allocations)


def check_allocations(problem: SearchProblem, allocations: Iterable[Allocation]) -> tuple[str, ...]:
    allocs = tuple(allocations)
    errors: list[str] = []
    errors += _shapes(problem, allocs)
    errors += _service(problem, allocs)
    errors += _packing(problem, allocs)
    if not errors:
        errors += _slos(problem, allocs)
    return tuple(errors)


def _shapes(problem: SearchProblem, allocs: tuple[Allocation, ...]) -> list[str]:
    errors = []
    names = {m.model for m in problem.models}
    for a in allocs:
        where = f"{a.model} on {a.gpu_type} tp={a.tp} fraction={a.gpu_fraction}"
        if a.model not in names:
            errors.append(f"{where}: model not in the problem")
            continue
        if a.replicas < 1:
            errors.append(f"{where}: {a.replicas} replicas")
        tp = a.tp
        heads = problem.model(a.model).attention_heads
        if tp < 1 or tp & (tp - 1) or heads % tp:
            errors.append(f"{where}: TP {tp} is not a power of two dividing {heads} heads")
        if a.gpu_fraction not in _GRID or (tp > 1 and a.gpu_fraction != 1.0):
            errors.append(f"{where}: fraction must be 1, 1/2, 1/4 or 1/8, and 1 when TP > 1")
        pools = [p for p in problem.cluster.pools if p.gpu_type == a.gpu_type]
        if not any(tp <= min(p.nvlink_domain_size, p.gpus_per_node) for p in pools):
            errors.append(f"{where}: no pool of {a.gpu_type} has an NVLink domain of {tp} GPUs")
        if a.gpu_fraction < 1 and a.replicas > 1:
            errors.append(f"{where}: {a.replicas} shares of one model (one share per model)")
        shape = find_shape(problem, a)
        if shape is None:
            errors.append(f"{where}: shape has no profile in the problem")
        elif not shape.fits_memory:
            errors.append(
                f"{where}: weights {shape.weights_gib:.1f} GiB + KV cache do not fit "
                f"the {shape.share_gib:.1f} GiB share"
            )
    shares: dict[str, int] = {}
    for a in allocs:
        if a.gpu_fraction < 1:
            shares[a.model] = shares.get(a.model, 0) + a.replicas
    for model, n in sorted(shares.items()):
        if n > 1 and sum(1 for a in allocs if a.model == model and a.gpu_fraction < 1) > 1:
            errors.append(f"{model}: {n} shares of a GPU in several shapes (one share per model)")
    return errors


def _service(problem: SearchProblem, allocs: tuple[Allocation, ...]) -> list[str]:
    errors = []
    for m in predict_models(problem, allocs):
        if m.demand_per_s > 0 and m.capacity_per_s <= 0:
            errors.append(f"{m.model}: demand {m.demand_per_s:.3g} calls/s but no replicas")
        elif m.utilisation > problem.utilisation_cap * (1 + _REL):
            errors.append(
                f"{m.model}: utilisation {m.utilisation:.3f} above the cap "
                f"{problem.utilisation_cap} (demand {m.demand_per_s:.3g}/s, "
                f"capacity {m.capacity_per_s:.3g}/s)"
            )
        elif not any(a.model == m.model for a in allocs):
            errors.append(f"{m.model}: no replicas")
    return errors


def _packing(problem: SearchProblem, allocs: tuple[Allocation, ...]) -> list[str]:
    errors = []
    types = {p.gpu_type for p in problem.cluster.pools}
    for a in allocs:
        if a.gpu_type not in types:
            errors.append(f"{a.model}: GPU type {a.gpu_type} is not in the cluster")
    for gpu_type in sorted(types):
        counts: dict[int, int] = {}
        for a in allocs:
            if a.gpu_type == gpu_type:
                size = a.shape.units
                counts[size] = counts.get(size, 0) + a.replicas
        left = first_fit_decreasing(counts, problem.cluster, gpu_type)
        if left:
            errors.append(f"{gpu_type}: {left} replicas cannot be placed on the cluster's GPUs")
    return errors


def _slos(problem: SearchProblem, allocs: tuple[Allocation, ...]) -> list[str]:
    errors = []
    flows = predict_workflows(problem, predict_models(problem, allocs))
    for w, f in zip(problem.workflows, flows, strict=True):
        if w.slo_s is None:
            continue
        factor = w.p95_over_mean if w.slo_kind == "p95" else 1.0
        predicted = factor * f.mean_latency_s
        if not predicted <= w.slo_s * (1 + _REL):
            errors.append(
                f"{w.workflow_type}: predicted {w.slo_kind} latency {predicted:.3f} s "
                f"above the SLO {w.slo_s} s"
            )
    return errors


def mean_latency_s(problem: SearchProblem, allocations: Iterable[Allocation]) -> float:
    """Objective of min-latency: rate-weighted mean predicted workflow latency."""
    models = predict_models(problem, allocations)
    return mean_workflow_latency_s(problem, predict_workflows(problem, models))


def max_scale(problem: SearchProblem, allocations: Iterable[Allocation]) -> float:
    """Objective of max-throughput: the common factor on all rates under the cap."""
    return throughput_scale(problem, predict_models(problem, allocations))


def gpus_used(allocations: Iterable[Allocation]) -> float:
    """Objective of min-gpus."""
    return math.fsum(a.gpus for a in allocations)
