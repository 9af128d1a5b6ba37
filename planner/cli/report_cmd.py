"""`planner report`: one self-contained HTML page of the workload, the plan and its evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.cli import app
from planner.cli.flags import ConfigsOpt, GpusPerNodeOpt, MappingOpt, ProfilesOpt
from planner.defaults import DEFAULT_GPUS_PER_NODE
from planner.jobs.requests import ClusterSpec, InputPaths


@app.command()
def report(
    traces: Annotated[
        Path,
        typer.Argument(help="Trace file or directory the plan was made from.", show_default=False),
    ],
    plan_path: Annotated[
        Path, typer.Option("--plan", help="The plan.yaml to show (written by `planner plan`).")
    ],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Folder the page is written to (index.html).")
    ],
    evaluation: Annotated[
        Path | None,
        typer.Option(
            "--evaluation", help="A `planner evaluate --json` document to show next to the plan."
        ),
    ] = None,
    replay: Annotated[
        Path | None,
        typer.Option(
            "--replay",
            help="Measured figures in the evaluation document's shape (plan.mean_latency_s, "
            "plan.per_workflow_type), shown against the predictions.",
        ),
    ] = None,
    gpus: Annotated[
        int | None,
        typer.Option("--gpus", min=1, help="GPUs of the cluster (default: the plan's total)."),
    ] = None,
    gpu_type: Annotated[
        str | None,
        typer.Option("--gpu-type", help="GPU type of --gpus (default: the plan's GPU type)."),
    ] = None,
    gpus_per_node: GpusPerNodeOpt = DEFAULT_GPUS_PER_NODE,
    cluster_file: Annotated[
        Path | None,
        typer.Option("--cluster", help="Cluster YAML the plan was made for (instead of --gpus)."),
    ] = None,
    calls: Annotated[
        int,
        typer.Option(
            "--calls", min=1000, help="Calls per simulation of the latency-vs-rate evidence."
        ),
    ] = 30_000,
    seed: Annotated[int, typer.Option("--seed", help="Arrival seed.")] = 0,
    profiles_dir: ProfilesOpt = None,
    configs: ConfigsOpt = None,
    mapping: MappingOpt = None,
) -> None:
    """Write one HTML page (no network needed to view it): the workload study as plots,
    the plan on a map of the cluster with its predictions, latency against rate of the
    plan and the baselines from the simulator, predicted against simulated (and replayed)
    latency per workflow type, and the profiles of the plan's models."""
    from planner.jobs.reporting import ReportRequest, report_job

    done = report_job(
        ReportRequest(
            traces=traces,
            plan_path=plan_path,
            output_dir=output,
            cluster=ClusterSpec(gpus, gpu_type, gpus_per_node, cluster_file),
            evaluation=evaluation,
            replay=replay,
            calls=calls,
            seed=seed,
            inputs=InputPaths(mapping, configs, profiles_dir),
        )
    )
    typer.echo(f"Wrote {done.path} ({len(done.html) // 1024} KiB)")
