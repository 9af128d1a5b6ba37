"""One way to turn a cluster request into a Cluster, for every job."""

from __future__ import annotations

from dataclasses import dataclass

from planner.catalog import Catalog, resolve_gpu, with_board_power
from planner.defaults import DEFAULT_GPU_TYPE
from planner.errors import InputError
from planner.jobs.requests import ClusterSpec
from planner.types.cluster import Cluster, NodePool, uniform_cluster


@dataclass(frozen=True)
class ResolvedCluster:
    """The cluster, and the node shapes in which an infeasible request counts the GPUs
    that would suffice (full nodes of the requested shape for `--gpus`; empty: grow the
    cluster's own pools)."""

    cluster: Cluster
    growth: tuple[NodePool, ...] = ()


def resolve_cluster(spec: ClusterSpec, catalog: Catalog) -> ResolvedCluster:
    """`--cluster FILE`, or `--gpus N --gpu-type G` as full nodes of `gpus_per_node`.

    NVLink domains of `--gpus` clusters come from the GPU catalog (an L40S has none, so
    every job sees TP 1 there), capped by the node size. Pools without a power figure
    get the catalog's board power of their GPU type.

    Raises:
        InputError: both or neither of --gpus and --cluster, or non-positive counts.
        ConfigError: the cluster file is malformed.
        ProfileError: an unknown GPU type.
    """
    if spec.cluster_file is not None:
        if spec.gpus is not None:
            raise InputError("give either --gpus or --cluster, not both")
        from planner.io.cluster_file import load_cluster

        return ResolvedCluster(with_board_power(load_cluster(spec.cluster_file), catalog))
    if spec.gpus is None:
        raise InputError("give the cluster: --cluster FILE or --gpus N")
    if spec.gpus < 1 or spec.gpus_per_node < 1:
        raise InputError(
            f"--gpus and --gpus-per-node must be >= 1, got {spec.gpus}, {spec.gpus_per_node}"
        )
    gpu = resolve_gpu(catalog, spec.gpu_type or DEFAULT_GPU_TYPE)
    domain = min(gpu.nvlink_domain_size, spec.gpus_per_node)
    node = uniform_cluster(spec.gpus_per_node, gpu.name, spec.gpus_per_node, domain)
    cluster = uniform_cluster(spec.gpus, gpu.name, spec.gpus_per_node, domain)
    return ResolvedCluster(with_board_power(cluster, catalog), node.pools)
