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
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Literal

from planner.catalog import Catalog, resolve_model
from planner.defaults import SHARE_EIGHTHS, UNITS_PER_GPU
from planner.errors import ConfigError, ProfileError, did_you_mean
from planner.search.packing import first_fit_decreasing
from planner.search.predict import (
    find_shape,
    mean_workflow_latency_s,
    predict_models,
    predict_workflows,
    throughput_scale,
)
from planner.search.problem import SearchProblem
from planner.types.cluster import Cluster
from planner.types.names import ModelName
from planner.types.plan import Allocation, Plan, SolverFacts

_REL = 1e-6  # float tolerance on utilisation and SLO comparisons (predicted floats)

Constraint = Literal[
    "model",  # the model is not in the problem
    "replicas",  # fewer than one replica
    "tp",  # TP not a power of two dividing the attention heads
    "share",  # share not on the k/8 grid, or below a whole GPU with TP > 1
    "nvlink",  # TP (x DP) larger than every NVLink domain of the GPU type
    "data-parallel",  # DP attention without EP, on shares, with pipeline stages or across nodes
    "one-share",  # more than one share of a GPU for one model
    "profile",  # the shape has no profile
    "memory",  # weights + minimum KV cache do not fit the share
    "service",  # demand with no capacity, or above the utilisation cap
    "gpu-type",  # a GPU type the cluster does not have
    "packing",  # replicas that do not fit the cluster's GPUs and NVLink domains
    "slo",  # predicted latency above the SLO
]
#: Violations that mean "this allocation needs other GPUs than the cluster has".
CAPACITY: frozenset[Constraint] = frozenset({"gpu-type", "packing", "nvlink"})


@dataclass(frozen=True)
class Violation:
    """One violated constraint of a plan: which family, and the sentence saying where."""

    constraint: Constraint
    message: str

    def __str__(self) -> str:
        return self.message


def check_plan(problem: SearchProblem, plan: Plan) -> tuple[Violation, ...]:
    """Every violated constraint of `plan`; empty when the plan is valid."""
    return check_allocations(problem, plan.allocations)


def check_allocations(
    problem: SearchProblem, allocations: Iterable[Allocation]
) -> tuple[Violation, ...]:
    allocs = tuple(allocations)
    errors: list[Violation] = []
    errors += _shapes(problem, allocs)
    errors += _service(problem, allocs)
    errors += _packing(problem, allocs)
    if not errors:
        errors += _slos(problem, allocs)
    return tuple(errors)


def _shapes(problem: SearchProblem, allocs: tuple[Allocation, ...]) -> list[Violation]:
    errors = []
    names = {m.model for m in problem.models}
    for a in allocs:
        where = _where(a)
        if a.model not in names:
            errors.append(Violation("model", f"{where}: model not in the problem"))
            continue
        heads = problem.model(a.model).attention_heads
        errors += structural_violations(a, heads, problem.cluster)
        if a.share_eighths < UNITS_PER_GPU and a.replicas > 1:
            errors.append(
                Violation(
                    "one-share", f"{where}: {a.replicas} shares of one model (one share per model)"
                )
            )
        shape = find_shape(problem, a)
        if shape is None:
            errors.append(Violation("profile", f"{where}: shape has no profile in the problem"))
        elif not shape.fits_memory:
            errors.append(
                Violation(
                    "memory",
                    f"{where}: weights {shape.weights_gib:.1f} GiB + KV cache do not fit "
                    f"the {shape.share_gib:.1f} GiB share",
                )
            )
    shares: dict[str, int] = {}
    for a in allocs:
        if a.share_eighths < UNITS_PER_GPU:
            shares[a.model] = shares.get(a.model, 0) + a.replicas
    for model, n in sorted(shares.items()):
        shapes = sum(1 for a in allocs if a.model == model and a.share_eighths < UNITS_PER_GPU)
        if n > 1 and shapes > 1:
            errors.append(
                Violation(
                    "one-share",
                    f"{model}: {n} shares of a GPU in several shapes (one share per model)",
                )
            )
    return errors


def _where(a: Allocation) -> str:
    dp = f" dp={a.dp}" if a.dp > 1 else ""
    return f"{a.model} on {a.gpu_type} tp={a.tp}{dp} fraction={a.gpu_fraction:g}"


def structural_violations(
    a: Allocation, heads: int | None, cluster: Cluster | None, min_replicas: int = 1
) -> list[Violation]:
    """Replicas, TP degree, GPU share and NVLink domain of one allocation.

    The rules any plan keeps whatever its traces: `check_plan` applies them after every
    solve and `validate_plan` to every plan read from a file.
    """
    errors = []
    where = _where(a)
    if a.replicas < min_replicas:
        errors.append(
            Violation("replicas", f"{where}: {a.replicas} replicas (at least {min_replicas})")
        )
    tp = a.tp
    if tp < 1 or tp & (tp - 1) or (heads is not None and heads % tp):
        of = f" dividing {heads} heads" if heads is not None else ""
        errors.append(Violation("tp", f"{where}: TP {tp} is not a power of two{of}"))
    whole = a.share_eighths == UNITS_PER_GPU
    if a.share_eighths not in SHARE_EIGHTHS or (tp > 1 and not whole):
        errors.append(
            Violation("share", f"{where}: share must be k/8 of a GPU (k = 1..8), and 1 when TP > 1")
        )
    if a.dp < 1 or (a.dp > 1 and (not a.expert_parallel or a.pp > 1 or not whole)):
        errors.append(
            Violation(
                "data-parallel",
                f"{where}: data_parallel {a.dp} must be >= 1; above 1 (data-parallel "
                "attention) it needs expert_parallel: true, whole GPUs and no pipeline stages",
            )
        )
    pools = [p for p in cluster.pools if p.gpu_type == a.gpu_type] if cluster else []
    # A GPU type the cluster lacks is a "gpu-type" violation of its own (see _packing).
    group = a.group_gpus
    if pools and not any(group <= p.tp_limit for p in pools):
        errors.append(
            Violation(
                "nvlink", f"{where}: no pool of {a.gpu_type} has an NVLink domain of {group} GPUs"
            )
        )
    elif pools and a.dp > 1 and not any(group <= p.gpus_per_node for p in pools):
        errors.append(
            Violation(
                "data-parallel",
                f"{where}: the {group} GPUs of a data-parallel replica must be on one node; "
                f"no {a.gpu_type} node has {group}",
            )
        )
    return errors


class PlanInvalid(ConfigError):
    """A plan read from a file breaks a rule every plan keeps (exit 2)."""


def check_plan_structure(
    plan: Plan,
    heads: Mapping[ModelName, int],
    cluster: Cluster | None,
    known: Sequence[ModelName] = (),
    min_replicas: int = 1,
) -> tuple[Violation, ...]:
    """The rules every plan keeps, whatever the traces: for a plan read from a file.

    Whether the replicas fit the cluster is placement's question (exit 3 when not).

    Args:
        plan: the plan as read (`render`, `evaluate` and `replan` read plan.yaml).
        heads: attention heads of the plan's models that the catalog knows; a model not
            in it is a violation.
        cluster: where the plan is to run; None checks the plan alone.
        known: the catalog's model names, for "did you mean".
        min_replicas: 0 for a running plan (`replan`), where a model may be scaled to 0.
    """
    errors: list[Violation] = []
    if not plan.allocations:
        errors.append(Violation("replicas", "no allocations: the plan serves no model"))
    if plan.gpus_total < 1:
        errors.append(
            Violation("packing", f"gpus_total is {plan.gpus_total}; a plan has at least one GPU")
        )
    for a in plan.allocations:
        if a.model not in heads:
            hint = did_you_mean(a.model, known or heads)
            message = f"{_where(a)}: model '{a.model}' is not in the catalog{hint}"
            errors.append(Violation("model", message))
        errors += structural_violations(a, heads.get(a.model), cluster, min_replicas)
    used = sum(a.units for a in plan.allocations if a.replicas > 0)
    if cluster is None and plan.gpus_total >= 1 and used > plan.gpus_total * UNITS_PER_GPU:
        message = f"allocations use more than the plan's {plan.gpus_total} GPUs"
        errors.append(Violation("packing", message))
    for value, name in _predictions(plan):
        if value < 0:  # NaN (unknown) compares False and passes
            errors.append(Violation("service", f"{name} is {value:g}; never negative"))
    return tuple(errors)


def validate_plan(
    plan: Plan, catalog: Catalog, cluster: Cluster | None, where: str, min_replicas: int = 1
) -> Plan:
    """`plan` when `check_plan_structure` finds nothing, else PlanInvalid naming the rule.

    Every plan read from disk (`render`, `evaluate`, `replan`) goes through this, as every
    fresh solve goes through `check_plan`; both apply `structural_violations`.

    Raises:
        PlanInvalid: the first violated rules, with `where` (the file) and the fix.
    """
    heads: dict[ModelName, int] = {}
    dense: set[ModelName] = set()
    for a in plan.allocations:  # plans name models as the traces did (any alias)
        with suppress(ProfileError):
            spec = resolve_model(catalog, a.model)
            heads[a.model] = spec.heads
            if not spec.is_moe:
                dense.add(a.model)
    errors = check_plan_structure(plan, heads, cluster, tuple(catalog.models), min_replicas)
    errors += tuple(
        Violation(
            "data-parallel",
            f"{_where(a)}: {a.model} is dense; data-parallel attention (data_parallel > 1) "
            "applies to MoE models only",
        )
        for a in plan.allocations
        if a.dp > 1 and a.model in dense
    )
    if errors:
        more = f" (and {len(errors) - 2} more)" if len(errors) > 2 else ""
        raise PlanInvalid(
            f"{where}: invalid plan: {'; '.join(map(str, errors[:2]))}{more}; re-run "
            "`planner plan` rather than editing plan.yaml by hand"
        )
    return plan


def validate_allocations(
    allocations: Sequence[Allocation], catalog: Catalog, where: str
) -> tuple[Allocation, ...]:
    """A user's allocation file (`evaluate --allocation`) under the same rules as a plan.

    Raises:
        PlanInvalid: the first violated rules, with `where`.
    """
    plan = Plan(
        objective="min-gpus",
        allocations=tuple(allocations),
        workflows=(),
        models=(),
        solver=SolverFacts("unknown", math.nan, math.nan, math.nan, 0.0),
        gpus_total=max(1, -(-sum(a.units for a in allocations) // UNITS_PER_GPU)),
    )
    validate_plan(plan, catalog, None, where)
    return tuple(allocations)


def _predictions(plan: Plan) -> Iterable[tuple[float, str]]:
    for w in plan.workflows:
        yield w.target_rate_per_s, f"{w.workflow_type}: target_rate_per_s"
        yield w.throughput_per_s, f"{w.workflow_type}: throughput_per_s"
        yield w.mean_latency_s, f"{w.workflow_type}: mean_latency_s"
    for m in plan.models:
        yield m.demand_per_s, f"{m.model}: demand_per_s"
        yield m.capacity_per_s, f"{m.model}: capacity_per_s"
        yield m.utilisation, f"{m.model}: utilisation"
        yield m.call_latency_s, f"{m.model}: call_latency_s"


def _service(problem: SearchProblem, allocs: tuple[Allocation, ...]) -> list[Violation]:
    errors = []
    for m in predict_models(problem, allocs):
        if m.demand_per_s > 0 and m.capacity_per_s <= 0:
            message = f"{m.model}: demand {m.demand_per_s:.3g} calls/s but no replicas"
            errors.append(Violation("service", message))
        elif m.utilisation > problem.utilisation_cap * (1 + _REL):
            message = (
                f"{m.model}: utilisation {m.utilisation:.3f} above the cap "
                f"{problem.utilisation_cap} (demand {m.demand_per_s:.3g}/s, "
                f"capacity {m.capacity_per_s:.3g}/s)"
            )
            errors.append(Violation("service", message))
        elif not any(a.model == m.model for a in allocs):
            errors.append(Violation("service", f"{m.model}: no replicas"))
    return errors


def _packing(problem: SearchProblem, allocs: tuple[Allocation, ...]) -> list[Violation]:
    errors = []
    types = {p.gpu_type for p in problem.cluster.pools}
    for a in allocs:
        if a.gpu_type not in types:
            message = f"{a.model}: GPU type {a.gpu_type} is not in the cluster"
            errors.append(Violation("gpu-type", message))
    for gpu_type in sorted(types):
        counts: dict[int, int] = {}
        for a in allocs:
            if a.gpu_type == gpu_type:
                # Each pipeline stage is packed as its own TP group.
                size = a.shape.stage_units
                counts[size] = counts.get(size, 0) + a.replicas * a.pp
        left = first_fit_decreasing(counts, problem.cluster, gpu_type)
        if left:
            message = f"{gpu_type}: {left} replicas cannot be placed on the cluster's GPUs"
            errors.append(Violation("packing", message))
    return errors


def _slos(problem: SearchProblem, allocs: tuple[Allocation, ...]) -> list[Violation]:
    errors = []
    flows = predict_workflows(problem, predict_models(problem, allocs))
    for w, f in zip(problem.workflows, flows, strict=True):
        if w.slo_s is None:
            continue
        factor = w.p95_over_mean if w.slo_kind == "p95" else 1.0
        predicted = factor * f.mean_latency_s
        if not predicted <= w.slo_s * (1 + _REL):
            message = (
                f"{w.workflow_type}: predicted {w.slo_kind} latency {predicted:.3f} s "
                f"above the SLO {w.slo_s} s"
            )
            errors.append(Violation("slo", message))
    return errors


def mean_latency_s(problem: SearchProblem, allocations: Iterable[Allocation]) -> float:
    """Objective of min-latency: rate-weighted mean predicted workflow latency."""
    models = predict_models(problem, allocations)
    return mean_workflow_latency_s(problem, predict_workflows(problem, models))


def sustained_scale(problem: SearchProblem, allocations: Iterable[Allocation]) -> float:
    """Objective of max-throughput: the common factor on all rates under the cap."""
    return throughput_scale(problem, predict_models(problem, allocations))


def gpus_used(allocations: Iterable[Allocation]) -> float:
    """Objective of min-gpus."""
    return sum(a.units for a in allocations) / UNITS_PER_GPU
