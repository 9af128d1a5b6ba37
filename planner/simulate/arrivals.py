"""When workflows arrive: the trace's own pattern scaled to a rate, or Poisson."""

from __future__ import annotations

from dataclasses import dataclass
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
    """

    rate_per_s: float
    pattern: Pattern = "poisson"
    workflows: int | None = None

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
