"""`planner model ...`: the model catalog (add an entry from a Hugging Face config)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.cli import model_app


@model_app.command("add")
def add(
    config: Annotated[Path, typer.Argument(help="The model's Hugging Face config.json.")],
    hf_id: Annotated[
        str | None,
        typer.Option(
            "--hf-id",
            help="Hugging Face id ORG/NAME (default: from an org--name_config.json file name).",
        ),
    ] = None,
    quant_config: Annotated[
        Path | None,
        typer.Option(
            "--quant-config",
            help="ModelOpt hf_quant_config.json (default: the one beside CONFIG, if any).",
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Catalog name (default: NAME of the HF id).")
    ] = None,
    configs: Annotated[
        Path | None,
        typer.Option("--configs", help="Catalog folder with models/ (default: shipped)."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing entry of that name.")
    ] = False,
) -> None:
    """Write configs/models/<name>.yaml for a model from its Hugging Face config."""
    from planner.jobs.models import add_model_job

    added = add_model_job(
        config,
        configs,
        hf_id=hf_id,
        quant_config_path=quant_config,
        name=name,
        overwrite=overwrite,
    )
    spec = added.spec
    parts = ", ".join(f"{k} {v:.1f} GiB" for k, v in spec.weight_gib_by_part().items() if v)
    kind = f"MoE {spec.moe_experts} experts top-{spec.moe_top_k}" if spec.is_moe else "dense"
    typer.echo(
        f"wrote {added.path}: {spec.hf_id}, {spec.params_b:g}B params ({kind}); weights {parts}"
    )
