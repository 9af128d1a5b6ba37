"""The replay job: drive live endpoints with the trace's workflows, measure, compare.

    replay_job(ReplayRequest) -> ReplayOutcome

Reads the traces and the endpoints file, compiles the workflows (the simulator's
dependency graphs) and their prompt-prefix groups, runs the replay, summarises what it
measured and, given a plan, sets the plan's predictions beside the measurements.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.errors import InputError
from planner.replay import ModelEndpoints, ReplaySettings

__all__ = ["ReplayOutcome", "ReplayRequest", "ReplaySettings", "replay_job"]
from planner.replay.measure import ReplayMeasure, summarise_replay
from planner.replay.metrics import ServerMeasure, summarise_server
from planner.replay.report import ComparisonRow, compare_with_plan, replay_document
from planner.replay.script import plan_prefixes
from planner.types.names import ModelName
from planner.types.plan import Plan

if TYPE_CHECKING:
    from planner.simulate.workload import Workload

#: Called about once a second: (seconds elapsed, workflows finished, workflows running).
Progress = Callable[[float, int, int], None]


@dataclass(frozen=True)
class ReplayRequest:
    """Everything `planner replay` needs.

    Attributes:
        compare: a plan.yaml whose predictions are compared (its workflow mix is replayed).
    """

    traces: str  # a path, or an object-store URL (s3://..., gs://...)
    endpoints: Path
    settings: ReplaySettings
    compare: Path | None = None  # a plan.yaml or the folder holding it
    mapping: Path | None = None
    configs: Path | None = None
    output: Path | None = None  # also write the JSON document here


@dataclass(frozen=True)
class ReplayOutcome:
    """What the job produced.

    Attributes:
        failure: why the replay should be reported as failed (calls failed or an endpoint
            went down); "" when every call succeeded. The measurements stand either way.
    """

    measure: ReplayMeasure
    servers: tuple[ServerMeasure, ...]
    comparison: tuple[ComparisonRow, ...]
    document: dict[str, Any]
    failure: str


def replay_job(request: ReplayRequest, progress: Progress | None = None) -> ReplayOutcome:
    """Run one replay.

    Raises:
        InputError / ConfigError: unreadable traces, endpoints file or plan.
        EndpointError: an endpoint is down or serves another model before the start.
    """
    from planner.io.atomic import write_text_atomic
    from planner.io.configs import load_catalog
    from planner.io.endpoints import load_endpoints
    from planner.io.plan_file import PLAN_FILE, read_plan
    from planner.io.remote import fetch_traces
    from planner.io.replay_client import run_replay
    from planner.io.traces import load_mapping, read_calls
    from planner.simulate import compile_workload
    from planner.simulate.candidates import canonical_names

    with tempfile.TemporaryDirectory(prefix="planner-replay-") as scratch:
        local = fetch_traces(request.traces, Path(scratch))
        mapping = load_mapping(request.mapping) if request.mapping else None
        calls = read_calls(local, mapping)
    workload = compile_workload(calls)
    prefixes = plan_prefixes(calls, workload)
    catalog = load_catalog(request.configs)
    canonical = canonical_names(catalog)
    endpoints = match_endpoints(workload.models, load_endpoints(request.endpoints), canonical)
    compare = request.compare
    if compare is not None and compare.is_dir():
        compare = compare / PLAN_FILE
    plan: Plan | None = read_plan(compare) if compare else None
    settings = request.settings
    if plan is not None and not settings.mix:
        settings = replace(settings, mix=_plan_mix(plan, workload.workflow_types))
    measured_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    run = run_replay(workload, prefixes, endpoints, settings, progress)
    measure = summarise_replay(run.log, _calls_per_workflow(workload, settings.mix))
    servers = tuple(
        summarise_server(e.model, url, run.samples) for e in run.endpoints for url in e.urls
    )
    if plan is not None:
        plan = _plan_named_as(plan, canonical, workload.models)
    rows = compare_with_plan(measure, plan) if plan else ()
    doc = replay_document(
        measure,
        servers,
        {
            "traces": request.traces,
            "measured_at": measured_at,
            "rate_per_s": settings.rate_per_s,
            "duration_s": settings.duration_s,
            "workflows_limit": settings.workflows,
            "warmup_s": settings.warmup_s,
            "seed": settings.seed,
            "mix": dict(sorted(settings.mix.items())),
            "prefix_shared_fraction": round(prefixes.shared_fraction(workload), 4),
            "compared_plan": str(compare) if compare else None,
            "endpoints": [
                {"model": e.model, "url": u, "served_name": e.served_name}
                for e in run.endpoints
                for u in e.urls
            ],
        },
        plan,
    )
    if request.output is not None:
        write_text_atomic(request.output, json.dumps(doc, indent=2) + "\n")
    return ReplayOutcome(measure, servers, rows, doc, _failure(measure))


def match_endpoints(
    models: tuple[ModelName, ...],
    entries: tuple[ModelEndpoints, ...],
    canonical: Callable[[str], str],
) -> dict[ModelName, ModelEndpoints]:
    """The endpoints of each traced model (names matched through the catalog).

    Raises:
        InputError: two entries of the file name the same model.
    """
    by_name: dict[str, ModelEndpoints] = {}
    for e in entries:
        key = canonical(e.model)
        if key in by_name:
            raise InputError(
                f"the endpoints file names model '{key}' twice ({by_name[key].model}, {e.model}); "
                "list all its URLs under one entry"
            )
        by_name[key] = e
    out: dict[ModelName, ModelEndpoints] = {}
    for m in models:
        entry = by_name.get(canonical(m))
        if entry is not None:
            out[m] = replace(entry, model=m)
    return out


def _plan_mix(plan: Plan, types: tuple[str, ...]) -> Mapping[str, float]:
    mix = {w.workflow_type: w.target_rate_per_s for w in plan.workflows if w.workflow_type in types}
    return mix if sum(mix.values()) > 0 else {}


def _plan_named_as(
    plan: Plan, canonical: Callable[[str], str], traced: tuple[ModelName, ...]
) -> Plan:
    """The plan with its model names as the traces spell them (the replay's names)."""
    names = {canonical(m): m for m in traced}
    models = tuple(replace(m, model=names.get(canonical(m.model), m.model)) for m in plan.models)
    return replace(plan, models=models)


def _calls_per_workflow(workload: Workload, mix: Mapping[str, float]) -> dict[ModelName, float]:
    """Mean LLM calls per workflow of each model at the replayed mix (the trace's when
    `mix` is empty): the APL's n_m, from the compiled graphs."""
    import numpy as np

    per_type = []
    weights = []
    for t, name in enumerate(workload.workflow_types):
        members = np.flatnonzero(workload.workflow_type == t)
        if not len(members):
            continue
        nodes = np.concatenate(
            [np.arange(workload.first_node[w], workload.first_node[w] + workload.node_count[w])
             for w in members]
        )  # fmt: skip
        llm = workload.node_model[nodes]
        llm = llm[llm >= 0]
        per_type.append(np.bincount(llm, minlength=len(workload.models)) / len(members))
        weights.append(mix.get(name, 0.0) if mix else float(len(members)))
    if sum(weights) <= 0:
        return {}
    mean = np.average(np.vstack(per_type), axis=0, weights=np.asarray(weights))
    return {m: float(mean[i]) for i, m in enumerate(workload.models)}


def _failure(measure: ReplayMeasure) -> str:
    problems = []
    if measure.stop_reason and not measure.stop_reason.startswith("interrupted"):
        problems.append(f"the replay stopped early: {measure.stop_reason}")
    for m in measure.models:
        if m.errors or m.timeouts:
            problems.append(
                f"{m.errors} error(s) and {m.timeouts} timeout(s) of {m.calls} calls to "
                f"'{m.model}' (first: {m.first_error})"
            )
    return "; ".join(problems)
