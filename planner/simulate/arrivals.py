"""When workflows arrive: the trace's own pattern scaled to a rate, or Poisson."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from planner.errors import InputError
from planner.simulate.workload import Workload

Pattern = Literal["poisson", "trace"]


@dataclass(frozen=True)
class ArrivalSpec:
    """How workflow instances arrive.

    Attributes:
        rate_per_s: mean workflow arrival rate (all types together).
        pattern: "poisson" draws exponential gaps; "trace" replays the traced workflows'
            own start times, compressed or stretched so their mean rate is `rate_per_s`.
        workflows: instances to simulate; None replays every traced workflow once. More
            than the trace holds cycles through it (the trace pattern repeats).
        mix: Poisson only: share of arrivals per workflow type (normalised); empty keeps
            the trace's own mix.
    """

    rate_per_s: float
    pattern: Pattern = "poisson"
    workflows: int | None = None
    mix: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.rate_per_s > 0:
            raise InputError(f"arrival rate must be positive, got {self.rate_per_s}")
        if self.workflows is not None and self.workflows < 1:
            raise InputError(f"workflows to simulate must be at least 1, got {self.workflows}")


def arrival_schedule(
    workload: Workload, spec: ArrivalSpec, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted arrival times and, per arrival, the traced workflow it replays.

    Poisson arrivals replay the workflows in a seeded random order, each cycle a new
    permutation, so the workflow-type mix is the trace's. Trace arrivals replay them in
    their traced order.

    Raises:
        InputError: the trace pattern is asked of a trace whose workflows all start at once.
    """
    total = spec.workflows or workload.workflows
    w = workload.workflows
    cycles = -(-total // w)
    rng = np.random.default_rng(seed)
    if spec.pattern == "poisson":
        if spec.mix:
            order = _mixed_order(workload, spec.mix, total, rng)
        else:
            order = np.concatenate([rng.permutation(w) for _ in range(cycles)])[:total]
        gaps = rng.exponential(1.0 / spec.rate_per_s, size=total)
        gaps[0] = 0.0
        return np.cumsum(gaps), order.astype(np.int64)
    by_start = np.argsort(workload.workflow_start_s, kind="stable")
    starts = workload.workflow_start_s[by_start] - workload.workflow_start_s[by_start[0]]
    span = float(starts[-1])
    if w < 2 or span <= 0:
        raise InputError(
            "the trace's arrival pattern needs workflows that start at different times; "
            "use Poisson arrivals (--arrivals poisson) for this trace"
        )
    period = span + span / (w - 1)  # one mean gap between the end of a cycle and the next
    times = np.concatenate([starts + c * period for c in range(cycles)])[:total]
    order = np.tile(by_start, cycles)[:total]
    scale = (w - 1) / span / spec.rate_per_s  # traced seconds -> simulated seconds
    return times * scale, order.astype(np.int64)


def _mixed_order(
    workload: Workload, mix: Mapping[str, float], total: int, rng: np.random.Generator
) -> np.ndarray:
    """Workflow types drawn with the mix's shares; each type cycles through permutations."""
    names = workload.workflow_types
    unknown = sorted(set(mix) - set(names))
    if unknown:
        raise InputError(
            f"arrival mix names workflow type(s) {', '.join(unknown)}, not in the traces; "
            f"known types: {', '.join(names)}"
        )
    shares = np.array([max(float(mix.get(n, 0.0)), 0.0) for n in names])
    if shares.sum() <= 0:
        raise InputError("arrival mix gives every workflow type a zero share")
    types = rng.choice(len(names), size=total, p=shares / shares.sum())
    order = np.empty(total, dtype=np.int64)
    for t in range(len(names)):
        slots = np.flatnonzero(types == t)
        members = np.flatnonzero(workload.workflow_type == t)
        if not len(slots):
            continue
        cycles = -(-len(slots) // len(members))
        seq = np.concatenate([rng.permutation(members) for _ in range(cycles)])
        order[slots] = seq[: len(slots)]
    return order
