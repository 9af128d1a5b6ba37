"""`planner evaluate`: simulate a plan and the baselines on the same GPUs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from planner.cli import app
from planner.cli.options import ConfigsOpt, MappingOpt, ProfilesOpt

if TYPE_CHECKING:
    from planner.simulate.evaluate import Evaluation
    from planner.types.cluster import Cluster
    from planner.types.plan import Plan


@app.command()
def evaluate(
    traces: Annotated[
        Path,
        typer.Argument(help="Trace file or directory whose workflows are replayed."),
    ],
    plan_path: Annotated[
        Path, typer.Option("--plan", help="The plan.yaml to evaluate (written by `planner plan`).")
    ],
    allocation: Annotated[
        Path | None,
        typer.Option(
            "--allocation",
            help="Also simulate your own allocation (YAML: schema_version 1, allocations: "
            "[{model, gpu_type, tensor_parallel, gpu_fraction, replicas}]).",
        ),
    ] = None,
    gpus: Annotated[
        int | None,
        typer.Option("--gpus", min=1, help="GPUs the baselines get (default: the plan's total)."),
    ] = None,
    gpu_type: Annotated[
        str | None,
        typer.Option("--gpu-type", help="GPU type of --gpus (default: the plan's GPU type)."),
    ] = None,
    cluster_file: Annotated[
        Path | None,
        typer.Option(
            "--cluster", help="Cluster YAML the baselines are sized for (instead of --gpus)."
        ),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate",
            min=0.0,
            help="Workflow rate (per s, all types) where latency is measured "
            "(default: the plan's target).",
        ),
    ] = None,
    arrivals: Annotated[
        str,
        typer.Option(
            "--arrivals",
            help="poisson (at the plan's workflow mix) or trace (the traces' own arrival "
            "pattern, scaled to each rate).",
        ),
    ] = "poisson",
    calls: Annotated[
        int,
        typer.Option(
            "--calls", min=1000, help="Calls per simulation (sets how many workflows are replayed)."
        ),
    ] = 150_000,
    seed: Annotated[int, typer.Option("--seed", help="Arrival seed.")] = 0,
    profiles_dir: ProfilesOpt = None,
    configs: ConfigsOpt = None,
    mapping: MappingOpt = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object: plan, baselines, prediction_error."),
    ] = False,
) -> None:
    """Simulate the plan and the uniform, independent and greedy baselines on the same GPUs:
    maximum sustainable workflow rate, latency at the target rate, per-model utilisation,
    and the APL's prediction error against the simulation."""
    from planner.aggregate import aggregate_pipeline
    from planner.errors import InputError
    from planner.io.configs import load_catalog
    from planner.io.plan_file import read_plan
    from planner.io.profiles import load_profiles
    from planner.io.traces import load_mapping, read_calls
    from planner.simulate import compile_workload
    from planner.simulate.candidates import canonical_names, evaluation_candidates
    from planner.simulate.evaluate import evaluate_plans
    from planner.simulate.rates import SimSettings
    from planner.simulate.report import evaluation_document

    if arrivals not in ("poisson", "trace"):
        raise InputError(f"--arrivals must be poisson or trace, got {arrivals!r}")
    pattern: Literal["poisson", "trace"] = "trace" if arrivals == "trace" else "poisson"
    plan = read_plan(plan_path)
    calls_table = read_calls(traces, load_mapping(mapping) if mapping else None)
    apl = aggregate_pipeline(calls_table)
    catalog = load_catalog(configs)
    profiles = load_profiles(profiles_dir, catalog)
    cluster = _cluster(plan, gpus, gpu_type, cluster_file)
    user = None
    if allocation is not None:
        from planner.io.allocation import load_allocation

        user = load_allocation(allocation)
    plans = evaluation_candidates(plan, apl, profiles, cluster, catalog, user, str(allocation))
    workload = compile_workload(calls_table)
    settings = SimSettings(calls=calls, pattern=pattern, seed=seed)
    ev = evaluate_plans(workload, plans, profiles, settings, rate or None, canonical_names(catalog))
    doc = evaluation_document(ev)
    if as_json:
        typer.echo(json.dumps(doc, indent=2, sort_keys=False))
    else:
        _print_summary(ev)


def _cluster(
    plan: Plan, gpus: int | None, gpu_type: str | None, cluster_file: Path | None
) -> Cluster:
    from planner.defaults import DEFAULT_GPU_TYPE
    from planner.types.cluster import uniform_cluster

    if cluster_file is not None:
        from planner.io.cluster_file import load_cluster

        return load_cluster(cluster_file)
    types = sorted({a.gpu_type for a in plan.allocations})
    return uniform_cluster(
        gpus or plan.gpus_total, gpu_type or (types[0] if types else DEFAULT_GPU_TYPE)
    )


def _print_summary(ev: Evaluation) -> None:
    typer.echo(f"target rate {ev.target_rate_per_s:.4g} workflows/s; sustainable = {ev.criterion}")
    typer.echo(
        f"{'allocation':<12} {'GPUs':>6} {'max rate/s':>11} {'mean s':>9} {'p50 s':>9} "
        f"{'p95 s':>9}  vs plan"
    )
    plan = ev.candidates[0]
    for c in ev.candidates:
        at = c.at_target
        nan = float("nan")
        mean, p50, p95 = (
            (at.latency_s.mean, at.latency_s.p50, at.latency_s.p95) if at else (nan,) * 3
        )
        versus = ""
        if c is not plan and c.max_rate_per_s > 0:
            versus = f"plan x{plan.max_rate_per_s / c.max_rate_per_s:.2f} throughput"
        elif c is not plan:
            versus = c.problem or "serves nothing"
        flag = "" if at is None or at.sustainable else " (overloaded at target)"
        typer.echo(
            f"{c.name:<12} {c.gpus:>6.3g} {c.max_rate_per_s:>11.4g} "
            f"{mean:>9.4g} {p50:>9.4g} {p95:>9.4g}  {versus}{flag}"
        )
    if plan.at_target:
        typer.echo("per-model utilisation of the plan at the target rate:")
        for m in plan.at_target.models:
            typer.echo(
                f"  {m.model:<40} {m.replicas:>3} replicas  utilisation {m.utilisation:6.1%}  "
                f"call latency {m.mean_call_latency_s:.3g} s (queue {m.mean_queue_wait_s:.3g} s)"
            )
    typer.echo(
        f"APL prediction error: max rate {plan.throughput_error:+.1%} "
        f"(predicted {plan.predicted_max_rate_per_s:.4g}/s), mean latency "
        f"{plan.latency_error:+.1%} (predicted {plan.predicted_mean_latency_s:.4g} s)"
    )
