"""`planner evaluate`: simulate a plan and the baselines on the same GPUs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from planner.cli import app
from planner.cli.flags import (
    ConfigsOpt,
    GpusPerNodeOpt,
    MappingOpt,
    ProfilesOpt,
    SkipBadRowsOpt,
)
from planner.defaults import DEFAULT_GPUS_PER_NODE
from planner.errors import InputError
from planner.jobs.requests import ClusterSpec, InputPaths


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
    gpus_per_node: GpusPerNodeOpt = DEFAULT_GPUS_PER_NODE,
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
    skip_bad_rows: SkipBadRowsOpt = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object: plan, baselines, prediction_error."),
    ] = False,
) -> None:
    """Simulate the plan and the uniform, independent and greedy baselines on the same GPUs:
    maximum sustainable workflow rate, latency at the target rate, per-model utilisation,
    and the APL's prediction error against the simulation."""
    from planner.cli.progress_display import progress_shown
    from planner.jobs.evaluating import EvaluateRequest, evaluate_job
    from planner.simulate.report import evaluation_document
    from planner.summaries import evaluation_summary

    if arrivals not in ("poisson", "trace"):
        raise InputError(f"--arrivals must be poisson or trace, got {arrivals!r}")
    request = EvaluateRequest(
        traces=traces,
        plan_path=plan_path,
        cluster=ClusterSpec(gpus, gpu_type, gpus_per_node, cluster_file),
        allocation=allocation,
        rate_per_s=rate,
        arrivals="trace" if arrivals == "trace" else "poisson",
        calls=calls,
        seed=seed,
        inputs=InputPaths(mapping, configs, profiles_dir, skip_bad_rows),
    )
    with progress_shown(not as_json):
        evaluation = evaluate_job(request)
    if as_json:
        typer.echo(json.dumps(evaluation_document(evaluation), indent=2, sort_keys=False))
    else:
        typer.echo(evaluation_summary(evaluation))
