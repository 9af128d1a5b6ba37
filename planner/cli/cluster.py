"""`planner cluster discover`: write a reviewable cluster file from live Node objects."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.cli import app

cluster_app = typer.Typer(
    help="Describe the GPU cluster plans are placed on.", no_args_is_help=True
)
app.add_typer(cluster_app, name="cluster")


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
    from planner.discover import discover_cluster
    from planner.errors import InputError
    from planner.io.cluster_file import write_cluster
    from planner.io.configs import load_catalog
    from planner.io.kube import list_nodes

    catalog = load_catalog(configs)
    found = discover_cluster(list_nodes(), catalog.gpus)
    if not found.cluster.pools:
        raise InputError(
            "no usable GPU nodes found: " + ("; ".join(found.notes) or "the cluster has no nodes")
        )
    header = "\n".join(
        [
            "Discovered by `planner cluster discover`. Review before planning with it:",
            "nvlink_domain_size comes from the GPU catalog, not the hardware.",
            *(f"note: {n}" for n in found.notes),
        ]
    )
    write_cluster(found.cluster, output, header=header)
    pools = ", ".join(f"{p.name} ({p.nodes}x{p.gpus_per_node})" for p in found.cluster.pools)
    typer.echo(f"wrote {output}: {found.cluster.gpus} GPUs in {pools}")
    for note in found.notes:
        typer.echo(f"note: {note}", err=True)
