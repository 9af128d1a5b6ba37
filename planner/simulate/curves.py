"""Latency against workflow rate: each candidate allocation simulated at a grid of rates.

    latency_curves(workload, plans, profiles, rates, settings) -> tuple[LatencyCurve, ...]

The evidence plot of `planner report`: every candidate (the plan, the baselines) replays
the same workload with the same seed at every rate (common random numbers), so the curves
differ only by the allocation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from planner.errors import InputError
from planner.profiles import ProfileTable
from planner.simulate import build_replicas
from planner.simulate.rates import SimSettings, simulate_at
from planner.simulate.result import SimResult
from planner.simulate.workload import Workload
from planner.types.plan import Plan


@dataclass(frozen=True)
class LatencyCurve:
    """One candidate's simulations, one per rate (empty with `problem` when the
    allocation cannot serve the workload at all)."""

    name: str
    gpus: float
    points: tuple[SimResult, ...]
    problem: str | None = None


def latency_curves(
    workload: Workload,
    plans: Mapping[str, Plan],
    profiles: ProfileTable,
    rates_per_s: Sequence[float],
    settings: SimSettings,
    canonical: Callable[[str], str] | None = None,
) -> tuple[LatencyCurve, ...]:
    """Simulate every plan at every rate, in the order given.

    Raises:
        ProfileError: a shape cannot hold a single call.
    """
    out = []
    for name, plan in plans.items():
        try:
            replicas = build_replicas(workload, plan.allocations, profiles, canonical)
        except InputError as exc:
            out.append(LatencyCurve(name, plan.gpus_used, (), str(exc)))
            continue
        points = tuple(simulate_at(workload, replicas, r, settings) for r in rates_per_s)
        out.append(LatencyCurve(name, plan.gpus_used, points))
    return tuple(out)
