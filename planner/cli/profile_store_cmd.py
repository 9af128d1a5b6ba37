"""`planner profile run | import | show`: measured and imported profiles on disk.

`run` starts real vLLM per configuration and stores what it measured; `import` reads
`vllm bench serve --save-result` JSON; `show` lists what `profiles/` holds. The analytic
`predict` verb lives beside these in `planner.cli.profile_cmd`; the jobs are in
`planner.jobs.profiling`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from planner.cli import profile_app
from planner.cli.flags import ConfigsOpt, ProfilesOpt
from planner.errors import InputError

if TYPE_CHECKING:
    import pandas as pd


def _floats(text: str, option: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"{option}: expected comma-separated numbers, got '{text}'") from None
    if any(v <= 0 for v in values):
        raise InputError(f"{option}: values must be positive, got '{text}'")
    return values


def _ints(text: str, option: str) -> tuple[int, ...]:
    values = _floats(text, option)
    if any(v != int(v) for v in values):
        raise InputError(f"{option}: expected comma-separated integers, got '{text}'")
    return tuple(int(v) for v in values)


@profile_app.command("run")
def run(
    model: Annotated[str, typer.Option("--model", help="Catalog model name, HF id or alias.")],
    tp: Annotated[
        str, typer.Option("--tp", help="Tensor-parallel degrees to sweep, comma-separated.")
    ] = "1",
    gpu_fraction: Annotated[
        str,
        typer.Option(
            "--gpu-fraction",
            help="GPU shares to sweep at TP 1 (realised as --gpu-memory-utilization share).",
        ),
    ] = "1",
    pipeline: Annotated[
        Path | None,
        typer.Option("--pipeline", help="APL JSON from `planner ingest --json`: token shapes."),
    ] = None,
    input_tokens: Annotated[
        int | None, typer.Option("--input-tokens", min=1, help="Prompt tokens per request.")
    ] = None,
    output_tokens: Annotated[
        int | None, typer.Option("--output-tokens", min=1, help="Generated tokens per request.")
    ] = None,
    concurrency: Annotated[
        str, typer.Option("--concurrency", help="Closed-loop client counts, comma-separated.")
    ] = "1,2,4,8",
    request_rate: Annotated[
        str,
        typer.Option("--request-rate", help="Open-loop Poisson rates (req/s), comma-separated."),
    ] = "",
    prompts_per_client: Annotated[
        int, typer.Option("--prompts-per-client", min=1, help="Requests per closed-loop client.")
    ] = 8,
    model_path: Annotated[
        str | None,
        typer.Option("--model-path", help="What vLLM loads (default: the model's HF id)."),
    ] = None,
    gpu_type: Annotated[
        str | None,
        typer.Option("--gpu-type", help="GPU type to record (default: detected, or `cpu`)."),
    ] = None,
    vllm_arg: Annotated[
        list[str] | None,
        typer.Option(
            "--vllm-arg", help="Extra vLLM server argument, e.g. --vllm-arg=--enforce-eager."
        ),
    ] = None,
    kv_cache_gib: Annotated[
        float, typer.Option("--kv-cache-gib", min=0.01, help="KV cache per engine on CPU (GiB).")
    ] = 1.0,
    max_model_len: Annotated[
        int | None, typer.Option("--max-model-len", min=16, help="vLLM --max-model-len.")
    ] = None,
    python: Annotated[
        str, typer.Option("--python", help="Python interpreter that has vLLM installed.")
    ] = sys.executable,
    start_timeout: Annotated[
        float, typer.Option("--start-timeout", min=1, help="Seconds an engine may take to start.")
    ] = 600.0,
    results_dir: Annotated[
        Path | None,
        typer.Option("--results-dir", help="Keep server logs and bench JSON here (default: temp)."),
    ] = None,
    configs: ConfigsOpt = None,
    profiles_dir: ProfilesOpt = None,
) -> None:
    """Profile a model on real vLLM: sweep TP and GPU fraction, drive a ladder of loads."""
    from rich.progress import Progress

    from planner.jobs.profiling import ProfileRunRequest, profile_run_job
    from planner.profiles.summary import unsaturated_sweeps

    request = ProfileRunRequest(
        model=model,
        tps=_ints(tp, "--tp"),
        gpu_fractions=_floats(gpu_fraction, "--gpu-fraction"),
        concurrencies=_ints(concurrency, "--concurrency"),
        request_rates=_floats(request_rate, "--request-rate"),
        prompts_per_client=prompts_per_client,
        pipeline=pipeline,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        model_path=model_path,
        gpu_type=gpu_type,
        vllm_args=tuple(vllm_arg or ()),
        kv_cache_gib=kv_cache_gib,
        max_model_len=max_model_len,
        python=python,
        start_timeout_s=start_timeout,
        results_dir=results_dir,
        configs_dir=configs,
        profiles_dir=profiles_dir,
    )
    with Progress(transient=True) as bar:
        task = bar.add_task("profiling", total=None)

        def step(done: int, total: int, message: str) -> None:
            bar.update(task, completed=done, total=total, description=message)

        stored = profile_run_job(request, step)
    _print_points(stored.points)
    for line in unsaturated_sweeps(stored.points):
        typer.echo(f"note: {line}")
    for path in stored.written:
        typer.echo(f"wrote {path}")


@profile_app.command("import")
def import_(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="`vllm bench serve --save-result` JSON files or `planner replay -o` results."
        ),
    ],
    model: Annotated[
        str | None, typer.Option("--model", help="Model, when the files lack metadata 'model'.")
    ] = None,
    gpu_type: Annotated[
        str | None,
        typer.Option(
            "--gpu-type",
            help="GPU type, when the files lack metadata 'gpu_type' "
            "(or a replay compared no plan).",
        ),
    ] = None,
    tp: Annotated[
        int | None, typer.Option("--tp", min=1, help="TP degree, when the files lack 'tp'.")
    ] = None,
    gpu_fraction: Annotated[
        float | None,
        typer.Option("--gpu-fraction", min=0.0, max=1.0, help="GPU share (default 1)."),
    ] = None,
    configs: ConfigsOpt = None,
    profiles_dir: ProfilesOpt = None,
) -> None:
    """Import `vllm bench serve --save-result` JSON files, and `planner replay` results
    (filed under the compared plan's shapes), as stored profile points; for replay results,
    say which predictions the measurements corrected and by how much."""
    from planner.jobs.profiling import profile_import_job
    from planner.profiles.imported import ImportOverrides

    overrides = ImportOverrides(model, gpu_type, tp, gpu_fraction)
    stored = profile_import_job(files, overrides, configs, profiles_dir)
    _print_points(stored.points)
    for line in stored.corrections:
        typer.echo(line)
    for note in stored.notes:
        typer.echo(f"not filed: {note}")
    for path in stored.written:
        typer.echo(f"wrote {path}")


@profile_app.command("show")
def show(
    configs: ConfigsOpt = None,
    profiles_dir: ProfilesOpt = None,
) -> None:
    """List the stored profile points per shape, which catalog models are analytic-only,
    and the kernel tables collected under the folder (checked)."""
    from planner.io import profiles as store
    from planner.io.configs import load_catalog
    from planner.io.kernel_tables import collected_kernel_tables
    from planner.profiles.summary import analytic_only, summarise_points

    catalog = load_catalog(configs)
    folder = profiles_dir or store.PROFILES_DIR
    points = store.read_points(folder)
    summary = summarise_points(points)
    if summary.empty:
        typer.echo("No stored profile points: every shape uses the analytic model.")
    else:
        typer.echo(summary.to_string(index=False))
    for line in analytic_only(points, catalog):
        typer.echo(line)
    for gpu, tables in collected_kernel_tables(folder, catalog).items():
        typer.echo(f"kernel tables for {gpu}: {tables.system} ({', '.join(tables.families())})")


def _print_points(points: pd.DataFrame) -> None:
    from planner.profiles.summary import summarise_points

    summary = summarise_points(points)
    if not summary.empty:
        typer.echo(summary.to_string(index=False))


@profile_app.command("kernels")
def kernels(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Folder for the tables (gemm/, attention/, ...).")
    ],
    device: Annotated[
        str, typer.Option("--device", help="cpu or cuda: where the kernels run.")
    ] = "cpu",
    grid: Annotated[
        str,
        typer.Option(
            "--grid", help="small (minutes on a few CPU cores) or full (GPU-sized shapes)."
        ),
    ] = "small",
    repeats: Annotated[
        int, typer.Option("--repeats", min=1, help="Timed batches per shape (median kept).")
    ] = 5,
    threads: Annotated[
        int,
        typer.Option("--threads", min=1, help="CPU only: cores per device (one vLLM engine's)."),
    ] = 1,
    devices: Annotated[
        int | None,
        typer.Option("--devices", min=1, help="Devices the all-reduce spans (default: all)."),
    ] = None,
) -> None:
    """Measure kernel latencies (GEMM per dtype, context/generation attention, all-reduce
    across devices) on this machine, in the schema of the shipped kernel tables. Written
    to <profiles>/kernels/<gpu type>, they answer that GPU type's kernel-composed
    predictions (commands taking --profiles <profiles>)."""
    from rich.progress import Progress

    from planner.jobs.profiling import KernelsRequest, profile_kernels_job

    request = KernelsRequest(device, grid, output, repeats, threads, devices)
    with Progress(transient=True) as bar:
        task = bar.add_task("kernels", total=None)

        def step(done: int, total: int, table: str) -> None:
            bar.update(task, completed=done, total=total, description=table)

        run = profile_kernels_job(request, step)
    typer.echo(
        f"{run.device_name}: {run.devices} device(s), {sum(run.rows.values())} kernel "
        f"shapes in {run.wall_s:.0f} s"
    )
    for table, count in run.rows.items():
        typer.echo(f"  {table}: {count} rows")
    for path in run.files:
        typer.echo(f"wrote {path}")
    if output.parent.name != "kernels":
        typer.echo(
            "to plan with them, collect into <profiles>/kernels/<gpu type>/ (e.g. -o "
            "profiles/kernels/cpu) and pass --profiles <profiles>"
        )
