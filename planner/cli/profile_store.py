"""`planner profile run | import | show`: measured and imported profiles on disk.

`run` starts real vLLM per configuration and stores what it measured; `import` reads
`vllm bench serve --save-result` JSON; `show` lists what `profiles/` holds. The analytic
`predict` verb lives beside these in `planner.cli.profile`.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from planner.catalog import Catalog, resolve_gpu, resolve_model
from planner.cli.options import ConfigsOpt, ProfilesOpt
from planner.cli.profile import profile_app
from planner.errors import InputError, ProfileError

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

    from planner.io import profiles as store
    from planner.io import vllm_engine
    from planner.io.configs import load_catalog
    from planner.profiles.measured import SweepSpec, TokenShape, shapes_from_pipeline
    from planner.profiles.points import SWEEP_COLUMNS

    catalog = load_catalog(configs)
    spec_model = resolve_model(catalog, model)
    if pipeline is not None:
        shapes = shapes_from_pipeline(
            _read_json(pipeline),
            spec_model.name,
            lambda n: _known_or_same(catalog, n),
            str(pipeline),
        )
    elif input_tokens and output_tokens:
        shapes = (TokenShape(input_tokens, output_tokens),)
    else:
        raise InputError("give --pipeline APL.json or both --input-tokens and --output-tokens")
    gpu_name = _gpu_for_run(catalog, gpu_type or vllm_engine.detect_gpu_type()[0])
    spec = SweepSpec(
        model=spec_model.name,
        model_path=model_path or spec_model.hf_id,
        gpu_type=gpu_name,
        tps=_ints(tp, "--tp"),
        gpu_fractions=_floats(gpu_fraction, "--gpu-fraction"),
        shapes=shapes,
        concurrencies=_ints(concurrency, "--concurrency"),
        request_rates=_floats(request_rate, "--request-rate"),
        prompts_per_client=prompts_per_client,
        max_model_len=max_model_len,
        kv_cache_gib=kv_cache_gib,
        vllm_args=(*_without_max_len(spec_model.vllm_args, max_model_len), *(vllm_arg or ())),
    )
    if any(f > 1 for f in spec.gpu_fractions):
        raise InputError(f"--gpu-fraction: shares must be at most 1, got '{gpu_fraction}'")
    with tempfile.TemporaryDirectory(prefix="planner-profile-") as tmp:
        work = results_dir or Path(tmp)
        with Progress(transient=True) as bar:
            task = bar.add_task("profiling", total=None)

            def step(done: int, total: int, message: str) -> None:
                bar.update(task, completed=done, total=total, description=message)

            swept = vllm_engine.run_sweep(
                spec, work, python=python, start_timeout_s=start_timeout, progress=step
            )
    target = profiles_dir or store.PROFILES_DIR
    written = store.write_points(swept.points, target, replace_on=SWEEP_COLUMNS)
    _print_points(swept.points)
    for path in written:
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
        typer.Option("--gpu-type", help="GPU type, when the files lack metadata 'gpu_type'."),
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
    """Import `vllm bench serve --save-result` JSON files, and `planner replay --json`
    results (filed under the compared plan's shapes), as stored profile points; for replay
    results, say which predictions the measurements corrected and by how much."""
    import pandas as pd

    from planner.io import profiles as store
    from planner.io.configs import load_catalog
    from planner.profiles.imported import ImportOverrides
    from planner.profiles.replayed import correction_lines, corrections

    catalog = load_catalog(configs)
    overrides = ImportOverrides(
        model, _resolve_gpu_name(catalog, gpu_type) if gpu_type else None, tp, gpu_fraction
    )
    target = profiles_dir or store.PROFILES_DIR
    results = store.read_results(
        files,
        overrides,
        resolve_model=lambda n: _resolve_name(catalog, n),
        resolve_gpu=lambda n: _resolve_gpu_name(catalog, n),
    )
    replayed = results.replay_points
    fixed = corrections(replayed, store.load_profiles(target, catalog))
    points = pd.concat(
        [p for p in (results.bench_points, replayed) if not p.empty] or [results.bench_points],
        ignore_index=True,
    )
    written = store.write_points(points, target)
    _print_points(points)
    for line in correction_lines(fixed):
        typer.echo(line)
    for note in results.notes:
        typer.echo(f"not filed: {note}")
    for path in written:
        typer.echo(f"wrote {path}")


@profile_app.command("show")
def show(
    configs: ConfigsOpt = None,
    profiles_dir: ProfilesOpt = None,
) -> None:
    """List the stored profile points per shape, and which catalog models are analytic-only."""
    from planner.io import profiles as store
    from planner.io.configs import load_catalog
    from planner.profiles.summary import analytic_only, summarise_points

    catalog = load_catalog(configs)
    points = store.read_points(profiles_dir or store.PROFILES_DIR)
    summary = summarise_points(points)
    if summary.empty:
        typer.echo("No stored profile points: every shape uses the analytic model.")
    else:
        typer.echo(summary.to_string(index=False))
    for line in analytic_only(points, catalog):
        typer.echo(line)


def _print_points(points: pd.DataFrame) -> None:
    from planner.profiles.summary import summarise_points

    summary = summarise_points(points)
    if not summary.empty:
        typer.echo(summary.to_string(index=False))


def _read_json(path: Path) -> Any:
    import json

    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc


def _resolve_name(catalog: Catalog, name: str) -> str:
    return resolve_model(catalog, name).name


def _known_or_same(catalog: Catalog, name: str) -> str:
    """Catalog name of a trace's model, or the name itself for models outside the catalog."""
    try:
        return resolve_model(catalog, name).name
    except ProfileError:
        return name


def _gpu_for_run(catalog: Catalog, name: str) -> str:
    """Catalog GPU type of a user's or nvidia-smi's name, or `cpu`.

    nvidia-smi says "NVIDIA H100 80GB HBM3" where Kubernetes product labels (which the
    catalog lists) say "NVIDIA-H100-80GB-HBM3".
    """
    if name == "cpu":
        return name
    try:
        return resolve_gpu(catalog, name).name
    except ProfileError:
        if " " not in name:
            raise
        return resolve_gpu(catalog, name.replace(" ", "-")).name


def _resolve_gpu_name(catalog: Catalog, name: str) -> str:
    """Catalog GPU name; `cpu` (our CI's engine) is kept as it is."""
    return name if name == "cpu" else resolve_gpu(catalog, name).name


def _without_max_len(args: tuple[str, ...], override: int | None) -> tuple[str, ...]:
    """The catalog's vLLM args without its --max-model-len when the user gives one."""
    if override is None or "--max-model-len" not in args:
        return args
    i = args.index("--max-model-len")
    return (*args[:i], *args[i + 2 :])


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
    across devices) on this machine, in the schema of the shipped kernel tables."""
    from rich.progress import Progress

    from planner.io.kernel_bench import collect_kernels
    from planner.profiles.kernel_grid import GRIDS

    if device not in ("cpu", "cuda"):
        raise InputError(f"--device must be cpu or cuda, got {device!r}")
    if grid not in GRIDS:
        raise InputError(f"--grid must be one of {', '.join(GRIDS)}, got {grid!r}")
    with Progress(transient=True) as bar:
        task = bar.add_task("kernels", total=None)

        def step(done: int, total: int, table: str) -> None:
            bar.update(task, completed=done, total=total, description=table)

        run = collect_kernels(
            "cuda" if device == "cuda" else "cpu",
            GRIDS[grid],
            output,
            repeats=repeats,
            threads=threads,
            devices=devices,
            progress=step,
        )
    typer.echo(
        f"{run.device_name}: {run.devices} device(s), {sum(run.rows.values())} kernel "
        f"shapes in {run.wall_s:.0f} s"
    )
    for table, count in run.rows.items():
        typer.echo(f"  {table}: {count} rows")
    for path in run.files:
        typer.echo(f"wrote {path}")
