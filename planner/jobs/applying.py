"""The apply job, and cluster discovery: the jobs that talk to a live API server.

No API server runs in this project's CI; the diff and prune logic they rely on is pure
(`planner.apply`, `planner.discover`) and tested on rendered objects and Node fixtures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from planner.apply import ApplyPlan
from planner.discover import Discovery


@dataclass(frozen=True)
class Applied:
    changes: ApplyPlan


def apply_job(
    directory: Path, prune: bool = False, dry_run: bool = False, allow_empty: bool = False
) -> Applied:
    """Server-side apply the manifests of `directory` with field manager `planner`,
    pruning planner-labelled objects the manifests no longer hold when `prune`
    (never every serving Deployment of a namespace unless `allow_empty`).

    Raises:
        InputError: the directory holds no readable manifests.
        PruneRefused: the prune would leave a namespace serving nothing.
        ClusterAccessError: no credentials, or the API server refuses.
    """
    from planner.apply import PRUNABLE_KINDS, plan_apply
    from planner.io.kube import connect, execute, live_objects
    from planner.io.manifests import read_manifests

    desired = read_manifests(directory)
    client = connect()
    live = live_objects(client, desired, PRUNABLE_KINDS if prune else ())
    changes = plan_apply(desired, live, prune=prune, allow_empty=allow_empty)
    execute(client, changes, desired, dry_run=dry_run)
    return Applied(changes)


def discover_job(output: Path, configs_dir: Path | None = None) -> Discovery:
    """List the cluster's Nodes, group GPU nodes into pools, and write a reviewable
    cluster file to `output` with the doubts in its header.

    Raises:
        InputError: no usable GPU node.
        ClusterAccessError: no credentials, or the API server refuses.
    """
    from planner.discover import discover_cluster
    from planner.errors import InputError
    from planner.io.cluster_file import write_cluster
    from planner.io.configs import load_catalog
    from planner.io.kube import list_nodes

    catalog = load_catalog(configs_dir)
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
    return found
