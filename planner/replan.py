"""The re-planning decision: keep what runs, or move toward a fresh plan (pure).

Inputs are two Plans predicted on the same recent traffic window: `current` (the
allocations that run, re-predicted on the new window) and `proposed` (the fresh search
result). The decision:

1. Nothing runs yet -> apply the proposal whole.
2. The current plan no longer sustains the load (a model's demand exceeds its capacity)
   -> apply.
3. The proposal beats the current plan by at least `margin` on the plan's objective
   (lower mean latency, higher throughput, or fewer GPUs) -> apply.
4. Otherwise keep: small gains are not worth restarting servers (no flapping).

When applying, replicas change at most `max_replica_changes` per run, one replica at a
time: scale-ups first (models short of capacity first), a scale-down only once every
scale-up is in, or when a scale-up needs the GPUs it frees. The next run continues from
what this one applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from planner.defaults import UNITS_PER_GPU
from planner.errors import InputError
from planner.types.calls import CallTable
from planner.types.names import GpuType
from planner.types.plan import Allocation, Plan

_EPS = 1e-9


@dataclass(frozen=True)
class ReplanPolicy:
    margin: float = 0.10  # relative improvement the proposal needs to replace a working plan
    max_replica_changes: int = 4  # replicas added or removed per run
    # The running plan stops sustaining the load when a model's demand passes this
    # fraction of its capacity (1.0: saturation, where queues grow without bound).
    max_utilisation: float = 1.0


@dataclass(frozen=True, order=True)
class ReplicaChange:
    shape: Allocation  # the allocation's shape (replicas field = the target count)
    before: int
    after: int

    def text(self) -> str:
        a = self.shape
        sign = "+" if self.after > self.before else "-"
        return (
            f"{sign}{abs(self.after - self.before)} {a.model} "
            f"({a.gpu_type} tp{a.tp}{f' dp{a.dp}' if a.dp > 1 else ''} x{a.gpu_fraction:g})"
        )


@dataclass(frozen=True)
class ReplanDecision:
    apply: bool
    reason: str
    allocations: tuple[Allocation, ...]  # what should run after this run
    scale_up: tuple[ReplicaChange, ...] = ()
    scale_down: tuple[ReplicaChange, ...] = ()
    deferred_changes: int = 0  # replica changes left for the next runs

    @property
    def complete(self) -> bool:
        """True when this run reaches the proposed plan (nothing deferred)."""
        return self.deferred_changes == 0

    def log_line(self) -> str:
        """The one line `planner replan` logs."""
        parts = [f"replan: {'apply' if self.apply else 'keep'}: {self.reason}"]
        changes = [c.text() for c in (*self.scale_up, *self.scale_down)]
        if changes:
            parts.append("changes " + ", ".join(changes))
        if self.deferred_changes:
            parts.append(f"{self.deferred_changes} replica change(s) deferred to the next run")
        return "; ".join(parts)


def decide_replan(
    current: Plan | None,
    proposed: Plan,
    gpus_by_type: Mapping[GpuType, int],
    policy: ReplanPolicy | None = None,
) -> ReplanDecision:
    """Decide whether and how far to move from `current` toward `proposed`.

    Args:
        current: the running plan re-predicted on the new window, or None if none runs.
        proposed: the fresh plan for the same window.
        gpus_by_type: GPUs per type in the cluster (intermediate steps must fit).
        policy: margin and per-run cap.
    """
    policy = policy or ReplanPolicy()
    if current is None:
        return ReplanDecision(True, "no plan is running", _nonzero(proposed.allocations))
    short = _shortfalls(current, proposed, policy.max_utilisation)
    gain = improvement(current, proposed)
    if short:
        worst = ", ".join(f"{m} demand {d:.3g}/s > capacity {c:.3g}/s" for m, d, c in short[:3])
        reason = f"the current plan no longer sustains the load ({worst})"
    elif gain >= policy.margin:
        reason = (
            f"the new plan is {gain:.1%} better on {proposed.objective} "
            f"(margin {policy.margin:.0%})"
        )
    else:
        return ReplanDecision(
            False,
            f"the current plan sustains the load and the new one is only {gain:.1%} better "
            f"on {proposed.objective} (margin {policy.margin:.0%})",
            _nonzero(current.allocations),
        )
    urgent = [m for m, _, _ in short]
    return _step(current, proposed, gpus_by_type, policy, reason, urgent)


def improvement(current: Plan, proposed: Plan) -> float:
    """Relative gain of `proposed` over `current` on the proposal's objective (> 0: better)."""
    if proposed.objective == "min-gpus":
        before, after = current.gpus_used, proposed.gpus_used
        return (before - after) / before if before > _EPS else 0.0
    if proposed.objective == "max-throughput":
        before, after = _throughput(current), _throughput(proposed)
        return (after - before) / before if before > _EPS else (1.0 if after > _EPS else 0.0)
    before, after = _latency(current), _latency(proposed)
    return (before - after) / before if before > _EPS else 0.0


def _latency(plan: Plan) -> float:
    """Mean end-to-end latency, weighted by each workflow type's target rate."""
    total = sum(w.target_rate_per_s for w in plan.workflows)
    if total <= _EPS:
        return 0.0
    return sum(w.mean_latency_s * w.target_rate_per_s for w in plan.workflows) / total


def _throughput(plan: Plan) -> float:
    return sum(w.throughput_per_s for w in plan.workflows)


def _shortfalls(
    current: Plan, proposed: Plan, max_utilisation: float
) -> list[tuple[str, float, float]]:
    capacity = {m.model: m.capacity_per_s * max_utilisation for m in current.models}
    out = []
    for m in proposed.models:
        have = capacity.get(m.model, 0.0)
        if m.demand_per_s > have + _EPS:
            out.append((m.model, m.demand_per_s, have))
    # Largest relative deficit first: those models get their replicas first.
    return sorted(out, key=lambda t: (-(t[1] - t[2]) / max(t[1], _EPS), t[0]))


def _key(a: Allocation) -> Allocation:
    return replace(a, replicas=0)


def _nonzero(allocs: tuple[Allocation, ...]) -> tuple[Allocation, ...]:
    return tuple(sorted(a for a in allocs if a.replicas > 0))


def _step(
    current: Plan,
    proposed: Plan,
    gpus_by_type: Mapping[GpuType, int],
    policy: ReplanPolicy,
    reason: str,
    urgent: list[str],
) -> ReplanDecision:
    running = {_key(a): a.replicas for a in current.allocations}
    target = {_key(a): a.replicas for a in proposed.allocations}
    shapes = sorted(set(running) | set(target))
    now = {s: running.get(s, 0) for s in shapes}

    def up_order(s: Allocation) -> tuple[int, Allocation]:
        return (urgent.index(s.model) if s.model in urgent else len(urgent), s)

    ups = sorted((s for s in shapes if target.get(s, 0) > now[s]), key=up_order)
    downs = sorted(s for s in shapes if target.get(s, 0) < now[s])

    def used(gpu_type: GpuType) -> int:  # eighths of a GPU (pipeline stages included)
        return sum(s.shape.units * n for s, n in now.items() if s.gpu_type == gpu_type)

    budget = policy.max_replica_changes
    while budget > 0:
        up = next((s for s in ups if now[s] < target.get(s, 0)), None)
        if up is not None:
            if (
                used(up.gpu_type) + up.shape.units
                <= gpus_by_type.get(up.gpu_type, 0) * UNITS_PER_GPU
            ):
                now[up] += 1
                budget -= 1
                continue
            # The scale-up needs GPUs a scale-down frees: take one replica of that type.
            down = next(
                (s for s in downs if now[s] > target.get(s, 0) and s.gpu_type == up.gpu_type),
                None,
            )
            if down is None:
                break
            now[down] -= 1
            budget -= 1
            continue
        down = next((s for s in downs if now[s] > target.get(s, 0)), None)
        if down is None:
            break
        now[down] -= 1
        budget -= 1
    deferred = sum(abs(target.get(s, 0) - now[s]) for s in shapes)
    scale_up = tuple(
        ReplicaChange(replace(s, replicas=now[s]), running.get(s, 0), now[s])
        for s in shapes
        if now[s] > running.get(s, 0)
    )
    scale_down = tuple(
        ReplicaChange(replace(s, replicas=now[s]), running.get(s, 0), now[s])
        for s in shapes
        if now[s] < running.get(s, 0)
    )
    allocations = tuple(replace(s, replicas=n) for s, n in sorted(now.items()) if n > 0)
    if not scale_up and not scale_down:
        why = "no replica can move within the GPU budget" if deferred else "nothing to change"
        return ReplanDecision(False, f"{reason}, but {why}", allocations, (), (), deferred)
    return ReplanDecision(True, reason, allocations, scale_up, scale_down, deferred)


def recent_window(calls: CallTable, window_s: float) -> CallTable:
    """The workflows that started in the last `window_s` seconds of the trace.

    Whole workflows are kept or dropped (never cut), so calls per workflow and fan-out
    stay unbiased; "now" is the latest call start in the table.
    """
    frame = calls.frame
    if frame.empty or window_s <= 0:
        return calls
    first = frame.groupby("workflow_id", observed=True)["start_s"].transform("min")
    keep = first >= frame["start_s"].max() - window_s
    return replace(calls, frame=frame.loc[keep].reset_index(drop=True))


def parse_duration_s(text: str) -> float:
    """'90s', '30m', '6h', '2d' or plain seconds -> seconds.

    Raises:
        InputError: anything else.
    """
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    body, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        value = float(body) * units[unit]
    except ValueError:
        raise InputError(f"duration {text!r}: use a number with s, m, h or d (e.g. 6h)") from None
    if value <= 0:
        raise InputError(f"duration {text!r} must be positive")
    return value
