"""Max-throughput on a cluster that cannot hold one replica of every model at once.

The common scale of all workflow rates is then 0: some workflow type cannot run at all.
Rather than stop, max-throughput serves the largest set of workflow types whose models
fit together, and scales their rates as high as they go (`_max_throughput` on the
smaller problem); the plan says which types it left out and what serving them needs.
Infeasible only when no single workflow type runs.

"Largest" is lexicographic: the most workflow types, then the highest summed target
rate of workflows, then the names (deterministic). Feasibility is monotone (a set that
runs runs without any of its types), so sets are tried from the largest size down, in
that order, and the first that runs a positive scale is the answer. Types calling a
model that no admissible shape runs on this cluster are left out before any solve.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from planner.search.choices import admissible
from planner.search.cpsat import SolverTimeout
from planner.search.problem import SearchProblem
from planner.search.throughput import max_scale
from planner.types.names import WorkflowType
from planner.types.settings import SolveSettings

# Sets tried at most (each a bisection's first probes): beyond it the search gives up,
# and max-throughput reports the cluster infeasible as before.
MAX_TRIES = 64


def servable_workflows(
    problem: SearchProblem, settings: SolveSettings
) -> tuple[WorkflowType, ...] | None:
    """The largest set of workflow types that runs at some positive scale, sorted; None
    when none does (or none was found within `settings.time_limit_s` deterministic
    seconds and `MAX_TRIES` sets)."""
    known = admissible(problem)
    runnable = {m for m, shapes in known.budgets.items() if shapes}
    flows = [
        w
        for w in sorted(problem.workflows, key=lambda w: w.workflow_type)
        if all(u.model in runnable for u in w.uses)
    ]
    left = settings.time_limit_s
    for tried, kept in enumerate(_largest_first(problem, [w.workflow_type for w in flows])):
        if tried >= MAX_TRIES or left <= 0:
            return None
        smaller = problem.only_workflows(kept)
        budget = max(0.5, left / 4)
        try:
            found = max_scale(smaller, settings, budget, admissible(smaller))
        except SolverTimeout:
            found = None
        left -= budget
        if found is not None and found.scale > 0:
            return kept
    return None


def _largest_first(
    problem: SearchProblem, names: list[WorkflowType]
) -> Iterator[tuple[WorkflowType, ...]]:
    """Proper non-empty subsets of `names` (the whole set failed already): most types
    first, then the highest summed target rate, then by name."""
    rate = {w.workflow_type: w.rate_per_s for w in problem.workflows}
    whole = len(problem.workflows)
    for size in range(min(len(names), whole - 1), 0, -1):
        sets = sorted(
            itertools.combinations(names, size), key=lambda s: (-sum(rate[n] for n in s), s)
        )
        yield from sets


def not_served_note(
    problem: SearchProblem, kept: tuple[WorkflowType, ...], needed: float | None
) -> str:
    """The plan note naming the workflow types left out and what serving them needs."""
    dropped = sorted(w.workflow_type for w in problem.workflows if w.workflow_type not in kept)
    need = (
        f"one replica of every model at once needs {needed:g} GPUs of the cluster's types "
        f"(it has {problem.cluster.gpus})"
        if needed is not None
        else "no number of GPUs of the cluster's types runs one replica of every model at once"
    )
    return (
        f"max-throughput serves {len(kept)} of {len(problem.workflows)} workflow types; "
        f"not served: {', '.join(dropped)} ({need})"
    )
