"""Discovery: live Node objects -> a Cluster the user reviews before planning with it.

Pure: takes the `V1Node` objects `planner.io.kube.list_nodes` returned and the catalog's
GPU specs. A node's GPU type comes from the GPU-feature-discovery label
`nvidia.com/gpu.product`, matched against each GpuSpec's `product_labels`; its GPU count
is the smaller of the advertised `nvidia.com/gpu` capacity (what the scheduler can hand
out) and the `nvidia.com/gpu.count` label (physical GPUs; time-slicing and MPS sharing
inflate the capacity). Nodes with the same GPU type and count form one pool that lists
them by name, so manifests pin pods to real hostnames.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from planner.catalog import GpuSpec
from planner.types.cluster import Cluster, NodePool
from planner.types.names import GpuType

PRODUCT_LABEL = "nvidia.com/gpu.product"
COUNT_LABEL = "nvidia.com/gpu.count"
MEMORY_LABEL = "nvidia.com/gpu.memory"  # MiB per GPU
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class Discovery:
    cluster: Cluster
    notes: tuple[str, ...]  # skipped nodes and doubts, for the reviewer


def discover_cluster(nodes: Sequence[Any], gpus: Mapping[GpuType, GpuSpec]) -> Discovery:
    """Group GPU nodes into pools of identical nodes.

    Args:
        nodes: `kubernetes.client.V1Node` objects (only metadata, spec and status are read).
        gpus: the catalog's GPU specs; their `product_labels` name Kubernetes products.

    Returns:
        The cluster (possibly with no pools) and notes on every node left out and why.
    """
    by_product = {
        label.lower(): spec.name for spec in gpus.values() for label in spec.product_labels
    }
    groups: dict[tuple[GpuType, int], list[str]] = defaultdict(list)
    notes: list[str] = []
    without_gpus = 0
    for node in sorted(nodes, key=lambda n: n.metadata.name):
        name = node.metadata.name
        labels = node.metadata.labels or {}
        capacity = _int((node.status.capacity or {}).get(GPU_RESOURCE) if node.status else None)
        count = _int(labels.get(COUNT_LABEL))
        if not capacity and not count:
            without_gpus += 1
            continue
        if node.spec is not None and node.spec.unschedulable:
            notes.append(f"{name}: skipped, cordoned (spec.unschedulable)")
            continue
        product = labels.get(PRODUCT_LABEL)
        if product is None:
            notes.append(
                f"{name}: skipped, no {PRODUCT_LABEL} label; install NVIDIA GPU feature "
                "discovery (part of the GPU operator) or add the node to a pool by hand"
            )
            continue
        gpu_type = by_product.get(product.lower()) or by_product.get(_strip_suffix(product))
        if gpu_type is None:
            notes.append(
                f"{name}: skipped, GPU product '{product}' is not in the catalog; add it to "
                "product_labels in configs/gpus/<type>.yaml"
            )
            continue
        usable = min(c for c in (capacity, count) if c) if capacity and count else capacity or count
        if capacity and count and capacity != count:
            notes.append(
                f"{name}: {GPU_RESOURCE} capacity {capacity} but {COUNT_LABEL} {count}; "
                f"planning with {usable} (sharing or unhealthy GPUs?)"
            )
        memory = _int(labels.get(MEMORY_LABEL))
        expected = gpus[gpu_type].memory_gib * 1024
        if memory and abs(memory - expected) > 0.05 * expected:
            notes.append(
                f"{name}: {MEMORY_LABEL} {memory} MiB, but {gpu_type} has "
                f"{gpus[gpu_type].memory_gib:g} GiB; check the product mapping"
            )
        groups[(gpu_type, usable)].append(name)
    if without_gpus:
        notes.append(f"{without_gpus} node(s) without NVIDIA GPUs left out")
    pools = []
    for (gpu_type, per_node), names in sorted(groups.items()):
        domain = max(1, min(gpus[gpu_type].nvlink_domain_size, per_node))
        pools.append(
            NodePool(
                name=_pool_name(gpu_type, per_node),
                gpu_type=gpu_type,
                nodes=len(names),
                gpus_per_node=per_node,
                nvlink_domain_size=domain,
                node_names=tuple(names),
            )
        )
    return Discovery(Cluster(tuple(pools)), tuple(notes))


def _int(value: object) -> int:
    """Capacities and labels are strings ('8'); anything else counts as absent (0)."""
    try:
        return int(str(value)) if value is not None else 0
    except ValueError:
        return 0


def _strip_suffix(product: str) -> str:
    # GFD appends '-SHARED' to the product when time-slicing or MPS renames the resource.
    return re.sub(r"-SHARED$", "", product, flags=re.IGNORECASE).lower()


def _pool_name(gpu_type: GpuType, per_node: int) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", gpu_type.lower()).strip("-")
    return f"{base}-x{per_node}"
