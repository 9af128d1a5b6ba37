"""Typed requests of the jobs, the flag parsers that build them, and their inverse.

`replan_flags` turns a planning request back into `planner replan` flags, so the
CronJob re-plans toward exactly the targets the plan was made for; parsing those flags
gives the same request again (tests/test_jobs.py checks the round trip).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from planner.defaults import DEFAULT_GPUS_PER_NODE, LATENCY_TOLERANCE
from planner.errors import InputError
from planner.types.names import GpuType, WorkflowType
from planner.types.plan import OBJECTIVES, Objective
from planner.types.settings import SloKind, SolveSettings, WorkloadTargets

#: GPUs `planner plan` assumes when neither --gpus nor --cluster is given.
DEFAULT_GPUS = 8


@dataclass(frozen=True)
class ClusterSpec:
    """The cluster a job runs on: a cluster file, or `gpus` of one type in full nodes
    (`gpu_type` None: the default type, or for `evaluate` the plan's)."""

    gpus: int | None = None
    gpu_type: GpuType | None = None
    gpus_per_node: int = DEFAULT_GPUS_PER_NODE
    cluster_file: Path | None = None


@dataclass(frozen=True)
class InputPaths:
    """Where the traces' column mapping, the catalog and stored profiles are read."""

    mapping: Path | None = None
    configs_dir: Path | None = None  # default: the shipped catalog
    profiles_dir: Path | None = None  # default: the shipped profiles/ folder
    skip_bad_rows: bool = False  # drop bad and duplicated rows, counted, instead of failing


@dataclass(frozen=True)
class PlanRequest:
    """Everything a planning job needs besides the render settings."""

    traces: Path
    cluster: ClusterSpec = field(default_factory=lambda: ClusterSpec(gpus=DEFAULT_GPUS))
    targets: WorkloadTargets = field(default_factory=WorkloadTargets)
    solve: SolveSettings = field(default_factory=SolveSettings)
    inputs: InputPaths = field(default_factory=InputPaths)
    window_s: float | None = None  # plan on the workflows of the trace's last window_s
    # Predict each option's prefix-cache hit rate from the traces' reuse evidence and size
    # prefill on the uncached tokens (off: every prompt computed in full).
    prefix_caching: bool = True

    def check(self) -> None:
        """Raises InputError for values no plan can be made with."""
        cap = self.targets.utilisation_cap
        if not 0 < cap <= 1:
            raise InputError(f"--utilisation-cap must be in (0, 1], got {cap}")
        if not self.targets.headroom > 0:
            raise InputError(f"--headroom must be > 0, got {self.targets.headroom}")
        if not self.solve.time_limit_s > 0:
            raise InputError(f"--time-limit must be > 0 seconds, got {self.solve.time_limit_s}")
        tolerance = self.solve.latency_tolerance
        if not 0 <= tolerance < 1:
            raise InputError(f"--latency-tolerance must be in [0, 1), got {tolerance}")
        if self.solve.num_workers < 1:
            raise InputError(f"--workers must be >= 1, got {self.solve.num_workers}")
        if self.solve.objective not in OBJECTIVES:
            raise InputError(
                f"--objective {self.solve.objective!r}: choose one of {', '.join(OBJECTIVES)}"
            )


def parse_objective(text: str) -> Objective:
    """The `--objective` flag. Raises InputError naming the choices."""
    for objective in OBJECTIVES:
        if text == objective:
            return objective
    raise InputError(f"--objective {text!r}: choose one of {', '.join(OBJECTIVES)}")


def parse_target_rates(values: Sequence[str]) -> dict[WorkflowType, float] | float | None:
    """`--target-rate 2.5` (total) or `--target-rate rag=1.5 --target-rate coding=0.5`."""
    if not values:
        return None
    if len(values) == 1 and "=" not in values[0]:
        return _positive(values[0], "--target-rate")
    rates: dict[WorkflowType, float] = {}
    for value in values:
        name, sep, rate = value.partition("=")
        if not sep or not name:
            raise InputError(
                f"--target-rate {value!r}: give one total rate, or TYPE=RATE per workflow type"
            )
        rates[name] = _positive(rate, f"--target-rate {name}")
    return rates


def parse_slos(values: Sequence[str]) -> dict[WorkflowType, tuple[float, SloKind]]:
    """`--slo rag=5` (mean seconds) or `--slo rag=8:p95`."""
    out: dict[WorkflowType, tuple[float, SloKind]] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        seconds, _, kind = rest.partition(":")
        if not sep or not name or kind not in ("", "mean", "p95"):
            raise InputError(f"--slo {value!r}: expected TYPE=SECONDS or TYPE=SECONDS:p95")
        out[name] = (_positive(seconds, f"--slo {name}"), "p95" if kind == "p95" else "mean")
    return out


def parse_on_off(text: str, where: str) -> bool:
    """`on` / `off` (any case). Raises InputError naming the choices."""
    if text.lower() not in ("on", "off"):
        raise InputError(f"{where} {text!r}: use on or off")
    return text.lower() == "on"


def _positive(text: str, where: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a number") from None
    if not number > 0 or math.isinf(number):
        raise InputError(f"{where}: must be a positive number, got {text}")
    return number


def replan_flags(request: PlanRequest) -> tuple[str, ...]:
    """The `planner replan` flags that plan toward the same targets as `request`."""
    t, s = request.targets, request.solve
    flags = [
        f"--objective={s.objective}",
        f"--headroom={_number(t.headroom)}",
        f"--utilisation-cap={_number(t.utilisation_cap)}",
        f"--time-limit={_number(s.time_limit_s)}",
        f"--workers={s.num_workers}",
    ]
    if s.latency_tolerance != LATENCY_TOLERANCE:  # the default keeps existing CronJobs' bytes
        flags.append(f"--latency-tolerance={_number(s.latency_tolerance)}")
    rate = t.target_rate_per_s
    if isinstance(rate, Mapping):
        flags += [f"--target-rate={name}={_number(r)}" for name, r in sorted(rate.items())]
    elif rate is not None:
        flags.append(f"--target-rate={_number(rate)}")
    for name, (seconds, kind) in sorted(t.slo_s.items()):
        flags.append(f"--slo={name}={_number(seconds)}" + (":p95" if kind == "p95" else ""))
    if not request.prefix_caching:
        flags.append("--prefix-caching=off")
    return tuple(flags)


def _number(x: float) -> str:
    """The shortest text that parses back to `x` exactly ("1" rather than "1.0")."""
    return repr(float(x)).removesuffix(".0")
