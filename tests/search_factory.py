"""Hand-built SearchProblems for the solver tests (no profiles, no catalog)."""

from __future__ import annotations

from planner.search.problem import (
    DEFAULT_LADDER,
    ModelCandidates,
    ModelUse,
    SearchProblem,
    ShapeCandidate,
    WorkflowDemand,
)
from planner.types.cluster import Cluster, NodePool
from planner.types.shapes import ShapeKey, share_eighths


def curve(base_s: float, knee: float = 0.3) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """A queueing-like latency ladder: base x (1 + knee u / (1 - u))."""
    us = DEFAULT_LADDER
    return us, tuple(base_s * (1 + knee * u / (1 - u)) for u in us)


def shape(
    model: str,
    tp: int = 1,
    fraction: float = 1.0,
    capacity: float = 10.0,
    base_s: float = 1.0,
    gpu_type: str = "G",
    fits: bool = True,
    burst_s: float = 0.0,
) -> ShapeCandidate:
    """`burst_s`: extra latency of a whole fan-out burst on one replica, at u = 0 (grows
    with the load like the ladder)."""
    us, ls = curve(base_s)
    burst = tuple(b / base_s * burst_s for b in ls) if burst_s > 0 else ()
    return ShapeCandidate(
        ShapeKey(model, gpu_type, tp, share_eighths(fraction)),
        fits,
        capacity,
        us,
        ls,
        10.0,
        20.0,
        ladder_burst_s=burst,
    )


def model(
    name: str, shapes: list[ShapeCandidate], heads: int = 32, burst_calls: float = 1.0
) -> ModelCandidates:
    return ModelCandidates(name, heads, 1000.0, 200.0, tuple(shapes), burst_calls=burst_calls)


def cluster(
    gpus_per_node: int = 8, nodes: int = 1, gpu_type: str = "G", domain: int | None = None
) -> Cluster:
    return Cluster(
        (NodePool("p-" + gpu_type, gpu_type, nodes, gpus_per_node, domain or gpus_per_node),)
    )


def problem(
    models: list[ModelCandidates],
    rate: float = 1.0,
    calls: dict[str, float] | None = None,
    cl: Cluster | None = None,
    slo: float | None = None,
    cap: float = 0.85,
    work: dict[str, float] | None = None,
) -> SearchProblem:
    """`work`: per model the type's work ratio (default 1)."""
    calls = calls or {m.model: 1.0 for m in models}
    work = work or {}
    uses = tuple(ModelUse(m, n, 1.0, work.get(m, 1.0)) for m, n in sorted(calls.items()))
    flow = WorkflowDemand("w", rate, uses, 0.5, slo)
    return SearchProblem((flow,), tuple(models), cl or cluster(), cap)
