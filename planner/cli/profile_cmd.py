"""`planner profile ...`: performance profiles (analytic predictions; measured runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from planner.cli import profile_app
from planner.defaults import GPU_MEMORY_UTILIZATION


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
    pp: Annotated[
        int,
        typer.Option(
            "--pp", min=1, help="Pipeline stages, one node each (a replica spanning nodes)."
        ),
    ] = 1,
    expert_parallel: Annotated[
        bool,
        typer.Option(
            "--enable-expert-parallel/--no-expert-parallel",
            help="MoE only: split the experts across the TP GPUs (vLLM's EP = TP x DP).",
        ),
    ] = False,
    dp: Annotated[
        int,
        typer.Option(
            "--dp",
            min=1,
            help="MoE with --enable-expert-parallel: data-parallel attention ranks "
            "(vLLM --data-parallel-size), each a TP group with its own KV cache; "
            "GPUs = tp x dp.",
        ),
    ] = 1,
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
    from planner.jobs.predicting import PredictRequest, predict_job

    out = predict_job(
        PredictRequest(
            model,
            gpu_type,
            input_tokens,
            output_tokens,
            concurrency,
            tp,
            expert_parallel,
            gpu_fraction,
            gpu_memory_utilization,
            configs,
            profiles_dir,
            pp,
            dp,
        )
    )
    notes = out["extrapolated"]
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    ep = ", expert-parallel" if expert_parallel else ""
    stages = f" x {pp} stages" if pp > 1 else ""
    stages += f" x {dp} data-parallel ranks" if dp > 1 else ""
    typer.echo(
        f"{out['model']} on {tp}x {out['gpu_type']}{stages}{ep} (fraction {gpu_fraction:g}), "
        f"source {out['source']}"
    )
    width = max(len(k) for k in out)
    for name, value in out.items():
        if name not in ("model", "gpu_type", "source", "extrapolated"):
            typer.echo(f"  {name:<{width}}  {value}")
    for note in notes:
        typer.echo(f"  extrapolated beyond the measured kernel grid: {note}")
