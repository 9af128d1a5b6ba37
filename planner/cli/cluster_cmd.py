"""`planner cluster discover`: write a reviewable cluster file from live Node objects."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.cli import cluster_app


@cluster_app.command("discover")
def discover(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Cluster YAML to write (review it before use).")
    ] = Path("configs/cluster.discovered.yaml"),
    configs: Annotated[
        Path | None,
        typer.Option("--configs", help="Catalog folder with models/ and gpus/ (default: shipped)."),
    ] = None,
) -> None:
    """List the cluster's Nodes and group GPU nodes into pools by GPU type and count.

    GPU type comes from the `nvidia.com/gpu.product` label (GPU feature discovery) matched
    to `product_labels` in configs/gpus; nodes that cannot be mapped are listed in the
    file's header, not silently dropped.
    """
    from planner.jobs.applying import discover_job

    found = discover_job(output, configs)
    pools = ", ".join(f"{p.name} ({p.nodes}x{p.gpus_per_node})" for p in found.cluster.pools)
    typer.echo(f"wrote {output}: {found.cluster.gpus} GPUs in {pools}")
    for note in found.notes:
        typer.echo(f"note: {note}", err=True)
