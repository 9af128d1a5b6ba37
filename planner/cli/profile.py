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
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Predict TTFT, TPOT, end-to-end latency and throughput with the analytic model."""
    from planner.catalog import resolve_gpu, resolve_model
    from planner.errors import InputError
    from planner.io.configs import load_catalog
    from planner.profiles.analytic import AnalyticProfiles
    from planner.types.shapes import ShapeKey, share_eighths

    catalog = load_catalog(configs)
    spec = resolve_model(catalog, model)
    gpu = resolve_gpu(catalog, gpu_type)
    profiles = AnalyticProfiles(catalog, gpu_memory_utilization)
    try:
        share = share_eighths(gpu_fraction, "--gpu-fraction")
    except ValueError as exc:
        raise InputError(f"{exc}; give k/8 such as 1, 0.5, 0.25 or 0.125") from None
    key = ShapeKey(spec.name, gpu.name, tp, share)
    point = profiles.at_concurrency(key, input_tokens, output_tokens, concurrency)
    fit = profiles.memory(key)
    out = {
        "model": spec.name,
        "gpu_type": gpu.name,
        "tp": tp,
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
        "source": point.source,
    }
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    typer.echo(f"{spec.name} on {tp}x {gpu.name} (fraction {gpu_fraction:g}), source analytic")
    width = max(len(k) for k in out)
    for name, value in out.items():
        if name not in ("model", "gpu_type", "source"):
            typer.echo(f"  {name:<{width}}  {value}")
