"""simulate: replay traced workflows against a plan's replicas.

    simulate(calls, plan, profiles, arrivals, seed=, warmup_s=) -> SimResult

The trace's workflows are compiled once into dependency graphs (`workload`), each
replica of the plan becomes a processor-sharing server following its profile's
latency-vs-concurrency curve (`servers`), and a heapq event loop (`engine`) runs
workflow instances arriving as `arrivals` says. Calls route to the least-loaded replica
of their model (join-shortest-queue, load counted against each replica's capacity).
Pure and deterministic: the same inputs and seed give the same result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from planner.errors import InputError
from planner.profiles import ProfileTable
from planner.simulate.arrivals import ArrivalSpec, arrival_schedule
from planner.simulate.engine import EngineOutput, Replica, run_engine
from planner.simulate.result import (
    MAX_BACKLOG_GROWTH,
    MAX_QUEUE_GROWTH,
    ModelSimStats,
    SimResult,
    summarise,
)
from planner.simulate.servers import ServerCurve, constant_curve, profile_curve
from planner.simulate.workload import Workload, compile_workload
from planner.types.calls import CallTable
from planner.types.plan import Allocation, Plan
from planner.types.shapes import ShapeKey

__all__ = [
    "MAX_BACKLOG_GROWTH",
    "MAX_QUEUE_GROWTH",
    "ArrivalSpec",
    "EngineOutput",
    "ModelSimStats",
    "Replica",
    "ServerCurve",
    "SimResult",
    "Workload",
    "build_replicas",
    "compile_workload",
    "constant_curve",
    "run_engine",
    "simulate",
    "simulate_workload",
]


def simulate(
    calls: CallTable,
    plan: Plan,
    profiles: ProfileTable,
    arrivals: ArrivalSpec,
    *,
    seed: int,
    warmup_s: float,
) -> SimResult:
    """Simulate `plan` serving the traced workflows arriving as `arrivals` says.

    Raises:
        InputError: the traces call a model the plan has no replica of, or the warm-up
            covers every arrival.
        ProfileError: a shape of the plan cannot hold one call.
    """
    workload = compile_workload(calls)
    replicas = build_replicas(workload, plan.allocations, profiles)
    return simulate_workload(workload, replicas, arrivals, seed=seed, warmup_s=warmup_s)


def build_replicas(
    workload: Workload,
    allocations: Sequence[Allocation],
    profiles: ProfileTable,
    canonical: Callable[[str], str] | None = None,
) -> tuple[Replica, ...]:
    """One Replica per allocated replica of every model the workload calls.

    Args:
        canonical: maps a model name to its catalog name, so a plan naming models by
            catalog name matches traces naming them by HF id or alias; None: exact names.

    Raises:
        InputError: a model the workload calls has no replica.
    """
    name = canonical or (lambda n: n)
    index = {name(m): i for i, m in enumerate(workload.models)}
    curves: dict[ShapeKey, ServerCurve] = {}
    replicas: list[Replica] = []
    for alloc in sorted(allocations):
        m = index.get(name(alloc.model))
        if m is None or alloc.replicas <= 0:
            continue  # a replica of a model no traced workflow calls is never busy
        curve = curves.get(alloc.shape)
        if curve is None:
            curve = profile_curve(
                profiles,
                alloc.shape,
                float(workload.mean_input_tokens[m]),
                float(workload.mean_output_tokens[m]),
            )
            curves[alloc.shape] = curve
        replicas.extend(Replica(m, curve) for _ in range(alloc.replicas))
    served = {rep.model for rep in replicas}
    called = set(workload.node_model[workload.node_model >= 0].tolist())
    missing = sorted(workload.models[m] for m in called - served)
    if missing:
        allocated = sorted({a.model for a in allocations if a.replicas > 0})
        raise InputError(
            f"the traces call {', '.join(missing)} but the plan has no replica of "
            f"{'it' if len(missing) == 1 else 'them'} (the plan serves: "
            f"{', '.join(allocated) or 'nothing'}); plan for these traces, or pass traces "
            "of the workflows the plan was made for"
        )
    return tuple(replicas)


def simulate_workload(
    workload: Workload,
    replicas: Sequence[Replica],
    arrivals: ArrivalSpec,
    *,
    seed: int,
    warmup_s: float,
) -> SimResult:
    """Like `simulate`, on a compiled workload and prebuilt replicas (reused across rates).

    Raises:
        InputError: the warm-up covers every arrival.
    """
    times, order = arrival_schedule(workload, arrivals, seed)
    window_end = float(times[-1])
    if not 0 <= warmup_s < window_end:
        raise InputError(
            f"warm-up of {warmup_s:g} s must be shorter than the arrival span "
            f"({window_end:g} s); simulate more workflows or shorten the warm-up"
        )
    out = run_engine(workload, replicas, times, order, warmup_s, window_end)
    llm_per_workflow = np.add.reduceat(
        (workload.node_model >= 0).astype(np.int64), workload.first_node
    )
    offered = llm_per_workflow[order[times >= warmup_s]].sum()
    return summarise(
        out,
        replicas,
        workload.models,
        warmup_s,
        window_end,
        seed,
        int(offered),
        workload.workflow_type[order],
        workload.workflow_types,
    )
