"""The report job: traces + plan (+ evaluation, replay) -> one self-contained HTML page."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from planner.jobs.requests import ClusterSpec, InputPaths

# Rates of the latency-vs-rate evidence, as multiples of the plan's target rate.
RATE_FACTORS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)


@dataclass(frozen=True)
class ReportRequest:
    """What `planner report` shows.

    `cluster` as for `planner evaluate`: None GPUs (and no cluster file) means the plan's
    own GPUs in full nodes of its GPU type.
    """

    traces: Path
    plan_path: Path
    output_dir: Path
    cluster: ClusterSpec = field(default_factory=ClusterSpec)
    evaluation: Path | None = None
    replay: Path | None = None
    calls: int = 30_000  # calls per simulation of the evidence curves
    seed: int = 0
    inputs: InputPaths = field(default_factory=InputPaths)


@dataclass(frozen=True)
class Report:
    path: Path  # the written index.html
    html: str


def report_job(request: ReportRequest) -> Report:
    """Characterise the traces, place the plan, simulate it and the baselines over a range
    of rates, sweep the plan's models' profiles, and write the page.

    Raises:
        InputError, ConfigError: bad traces, plan, cluster or evaluation/replay files.
        PlacementError: the plan does not fit the cluster.
    """
    from planner.aggregate import aggregate_pipeline
    from planner.io.configs import load_catalog
    from planner.io.plan_file import read_plan
    from planner.io.profiles import load_profiles
    from planner.io.report_file import read_evaluation_document, write_report
    from planner.io.traces import load_mapping, read_calls
    from planner.jobs.evaluating import EvaluateRequest, evaluation_cluster
    from planner.place import place
    from planner.report.html import ReportInputs, render_report
    from planner.report.views import profile_views
    from planner.simulate import compile_workload
    from planner.simulate.candidates import canonical_names, evaluation_candidates
    from planner.simulate.curves import latency_curves
    from planner.simulate.rates import SimSettings
    from planner.study import characterise_workload

    evaluation = (
        read_evaluation_document(request.evaluation, "--evaluation")
        if request.evaluation is not None
        else None
    )
    replay = (
        read_evaluation_document(request.replay, "--replay", measured=True)
        if request.replay is not None
        else None
    )
    plan = read_plan(request.plan_path)
    inputs = request.inputs
    calls = read_calls(
        request.traces, load_mapping(inputs.mapping) if inputs.mapping is not None else None
    )
    study = characterise_workload(calls)
    apl = aggregate_pipeline(calls)
    catalog = load_catalog(inputs.configs_dir)
    profiles = load_profiles(inputs.profiles_dir, catalog)
    cluster = evaluation_cluster(
        EvaluateRequest(request.traces, request.plan_path, cluster=request.cluster),
        plan,
        catalog,
    )
    placement = place(plan, cluster)
    candidates = evaluation_candidates(plan, apl, profiles, cluster, catalog)
    workload = compile_workload(calls)
    mix = {w.workflow_type: w.target_rate_per_s for w in plan.workflows}
    target = sum(mix.values())
    settings = SimSettings(calls=request.calls, seed=request.seed)
    if target > 0 and set(mix) <= set(workload.workflow_types):
        settings = SimSettings(calls=request.calls, seed=request.seed, mix=mix)
    rates = [target * f for f in RATE_FACTORS] if target > 0 else []
    curves = latency_curves(
        workload, candidates, profiles, rates, settings, canonical_names(catalog)
    )
    max_tp = max(p.nvlink_domain_size for p in cluster.pools)
    views = profile_views(plan, apl, profiles, max_tp, canonical_names(catalog))
    html = render_report(
        ReportInputs(
            traces=str(request.traces),
            plan_path=str(request.plan_path),
            study=study,
            plan=plan,
            placement=placement,
            curves=curves,
            target_rate_per_s=target,
            profiles=views,
            evaluation=evaluation,
            replay=replay,
            prices=cluster.prices(),
            power_w=cluster.power_w(),
        )
    )
    return Report(write_report(request.output_dir, html), html)
