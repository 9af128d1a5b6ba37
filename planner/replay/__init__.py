"""replay: drive live OpenAI-compatible endpoints with the trace's workflows (pure parts).

    plan_prefixes(calls, workload) -> PrefixPlan       which calls share a prompt prefix
    prompt_tokens(prefixes, workload, node, instance)  the token ids a call sends
    summarise_replay(log) -> ReplayMeasure             what was measured, per type/model
    replay_document(...)                               the `planner replay --json` document

The workflow structure is the simulator's (`planner.simulate.workload`): each replayed
workflow runs closed-loop (a call is sent when its predecessors have answered and its
recorded think/tool gap has passed, fan-out calls go out together), while workflows
arrive open-loop (Poisson at the requested rate). The HTTP side lives in
`planner.io.replay_client`; the job that composes both in `planner.jobs.replay`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from planner.errors import InputError
from planner.types.names import ModelName, WorkflowType


@dataclass(frozen=True)
class ModelEndpoints:
    """Where one model is served: one base URL per replica (or one Service URL).

    Attributes:
        served_name: the `model` field requests carry; None: ask the server (/v1/models).
    """

    model: ModelName
    urls: tuple[str, ...]
    served_name: str | None = None


@dataclass(frozen=True)
class ReplaySettings:
    """How a replay runs.

    Attributes:
        rate_per_s: workflow arrival rate (all types together), Poisson.
        duration_s: arrivals stop after this long.
        workflows: at most this many workflow arrivals (None: bounded by time only).
        warmup_s: arrivals and completions before this are not measured.
        drain_s: after arrivals stop, how long running workflows may take to finish.
        request_timeout_s: a call that takes longer is a timeout (its workflow fails).
        max_connections: HTTP connections open at once to each endpoint URL.
        scrape_interval_s: how often each server's /metrics is read during the run.
        seed: arrival times and the order workflows are drawn in.
        mix: share of arrivals per workflow type; empty keeps the trace's mix.
    """

    rate_per_s: float
    duration_s: float
    workflows: int | None = None
    warmup_s: float = 0.0
    drain_s: float = 120.0
    request_timeout_s: float = 600.0
    max_connections: int = 256
    scrape_interval_s: float = 1.0
    seed: int = 0
    mix: Mapping[WorkflowType, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.rate_per_s > 0:
            raise InputError(f"--rate must be positive, got {self.rate_per_s:g}")
        if not self.duration_s > 0:
            raise InputError(f"--duration must be positive, got {self.duration_s:g}")
        if not 0 <= self.warmup_s < self.duration_s:
            raise InputError(
                f"--warmup ({self.warmup_s:g} s) must be shorter than --duration "
                f"({self.duration_s:g} s)"
            )
        if self.workflows is not None and self.workflows < 1:
            raise InputError(f"--workflows must be at least 1, got {self.workflows}")
