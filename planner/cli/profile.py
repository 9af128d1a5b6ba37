"""`planner profile ...`: performance profiles (analytic predictions; measured runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from planner.cli import app
from planner.defaults import GPU_MEMORY_UTILIZATION

profile_app = typer.Typer(
    help="Performance profiles: predict latency and throughput of a model on a GPU shape.",
    no_args_is_help=True,
)
app.add_typer(profile_app, name="profile")


@profile_app.command("predict")
def predict(
    model: Annotated[
        str, typer.Option("--model", help="Catalog model name, HF id or alias (case-insensitive).")
    ],
    gpu_type: Annotated[
        str, typer.Option("--gpu-type", help="GPU type, e.g. H100-SXM-80GB, h100, B200.")
    ],
    input_tokens: Annotated[
        float, typer.Option("--input-tokens", min=1, help="Prompt tokens per request.")
    ],
    output_tokens: Annotated[
        float, typer.Option("--output-tokens", min=1, help="Generated tokens per request.")
    ],
    concurrency: Annotated[
        float, typer.Option("--concurrency", min=0, help="Requests in flight (closed loop).")
    ],
    tp: Annotated[int, typer.Option("--tp", min=1, help="Tensor-parallel degree.")] = 1,
    expert_parallel: Annotated[
        bool,
        typer.Option(
            "--enable-expert-parallel/--no-expert-parallel",
            help="MoE only: split the experts across the TP GPUs (vLLM's EP = TP).",
        ),
    ] = False,
    gpu_fraction: Annotated[
        float,
        typer.Option(
            "--gpu-fraction",
            min=0.0,
            max=1.0,
            help="Share of one GPU (memory and compute) for TP 1; 1 = whole GPUs.",
        ),
    ] = 1.0,
    gpu_memory_utilization: Annotated[
        float,
        typer.Option("--gpu-memory-utilization", help="vLLM --gpu-memory-utilization (whole GPU)."),
    ] = GPU_MEMORY_UTILIZATION,
    configs: Annotated[
        Path | None,
        typer.Option("--configs", help="Catalog folder with models/ and gpus/ (default: shipped)."),
    ] = None,
    profiles_dir: Annotated[
        Path | None,
        typer.Option(
            "--profiles",
            help="Folder of stored measured/imported points (default: the shipped profiles/).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Predict TTFT, TPOT, end-to-end latency and throughput of one shape.

    The answer comes from the best source that has the shape: stored measured points,
    then imported ones, then engine steps composed from measured kernels (GPU types with
    shipped tables), then the calibrated roofline; `source` says which.
    """
    from planner.catalog import resolve_gpu, resolve_model
    from planner.errors import InputError
    from planner.io.configs import load_catalog
    from planner.io.profiles import load_profiles
    from planner.types.shapes import ShapeKey, share_eighths

    catalog = load_catalog(configs)
    spec = resolve_model(catalog, model)
    gpu = resolve_gpu(catalog, gpu_type)
    profiles = load_profiles(profiles_dir, catalog, gpu_memory_utilization)
    try:
        share = share_eighths(gpu_fraction, "--gpu-fraction")
    except ValueError as exc:
        raise InputError(f"{exc}; give k/8 such as 1, 0.5, 0.25 or 0.125") from None
    key = ShapeKey(spec.name, gpu.name, tp, share, expert_parallel)
    point = profiles.at_concurrency(key, input_tokens, output_tokens, concurrency)
    fit = profiles.memory(key)
    source_of = getattr(profiles, "source_of", None)
    source = source_of(key) if source_of is not None else point.source
    extrapolated = getattr(profiles, "extrapolated", None)
    notes = list(extrapolated(key)) if extrapolated is not None and source == "kernels" else []
    out = {
        "model": spec.name,
        "gpu_type": gpu.name,
        "tp": tp,
        "expert_parallel": expert_parallel,
        "gpu_fraction": gpu_fraction,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "concurrency": concurrency,
        "ttft_ms": round(point.ttft_ms, 3),
        "tpot_ms": round(point.tpot_ms, 3),
        "e2e_ms": round(point.e2e_ms, 3),
        "output_tokens_per_s": round(point.output_tokens_per_s, 3),
        "requests_per_s": round(point.requests_per_s, 5),
        "kv_cache_tokens": point.kv_cache_tokens,
        "max_concurrency": round(point.max_concurrency, 3),
        "weights_gib_per_gpu": round(fit.weights_gib, 3),
        "kv_cache_gib_per_gpu": round(fit.kv_cache_gib, 3),
        "weights_gib_by_part": {k: round(v, 3) for k, v in spec.weight_gib_by_part().items()},
        "source": source,
        "extrapolated": notes,
    }
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    ep = ", expert-parallel" if expert_parallel else ""
    typer.echo(f"{spec.name} on {tp}x {gpu.name}{ep} (fraction {gpu_fraction:g}), source {source}")
    width = max(len(k) for k in out)
    for name, value in out.items():
        if name not in ("model", "gpu_type", "source", "extrapolated"):
            typer.echo(f"  {name:<{width}}  {value}")
    for note in notes:
        typer.echo(f"  extrapolated beyond the measured kernel grid: {note}")
