"""Exact packing of replicas onto GPUs, as linear volume constraints and as first-fit.

Replica sizes are powers of two in 1/8-GPU units (fractions 1/8..1 on one GPU; TP
degrees 1, 2, 4, 8... of whole GPUs inside one NVLink domain), so every size divides
every larger one. For such sizes a multiset of replicas fits a GPU type's bins (single
GPUs for shares <= 1 GPU, NVLink domains for TP groups) if and only if, for every size
threshold t,

    sum of sizes of replicas of size >= t  <=  C_t = sum over bins of floor(bin / t) * t

Proof sketch: place replicas largest first. When size t is placed, every bin's used
space is a multiple of t (all placed sizes are), so bin b still has floor(bin_b/t) - used_b/t
free slots of size t, whatever the earlier choices; summing gives the condition, and any
first-fit order meets it. So search (the linear constraints) and placement (first-fit
decreasing) agree, including on pools whose node or domain size is not a power of two.
"""

from __future__ import annotations

from collections.abc import Mapping

from planner.defaults import UNITS_PER_GPU
from planner.types.cluster import Cluster
from planner.types.names import GpuType


def domains_per_node(gpus_per_node: int, nvlink_domain_size: int) -> tuple[int, ...]:
    """NVLink domain sizes (GPUs) inside one node: full domains plus a remainder."""
    domain = max(1, min(nvlink_domain_size, gpus_per_node))
    full, rest = divmod(gpus_per_node, domain)
    return (domain,) * full + ((rest,) if rest else ())


def threshold_capacities(cluster: Cluster, gpu_type: GpuType) -> dict[int, int]:
    """C_t in units for every power-of-two threshold t from 1 unit to the largest domain.

    Thresholds up to one GPU all have the same capacity (every GPU is a bin of 8 units
    and smaller shares divide 8), so only t = 1 unit and whole-GPU thresholds differ.
    """
    pools = [p for p in cluster.pools if p.gpu_type == gpu_type]
    gpus = sum(p.gpus for p in pools)
    caps = {1: gpus * UNITS_PER_GPU}
    largest = max(
        (max(domains_per_node(p.gpus_per_node, p.nvlink_domain_size)) for p in pools), default=0
    )
    tp = 2
    while tp <= largest:
        cap = sum(
            p.nodes
            * sum((d // tp) * tp for d in domains_per_node(p.gpus_per_node, p.nvlink_domain_size))
            for p in pools
        )
        caps[tp * UNITS_PER_GPU] = cap * UNITS_PER_GPU
        tp *= 2
    return caps


def item_threshold(units: int) -> int:
    """The threshold a replica of `units` counts toward beyond t = 1 (its own size if > 1 GPU)."""
    return units if units > UNITS_PER_GPU else 1


def fits_thresholds(counts: Mapping[int, int], caps: Mapping[int, int]) -> bool:
    """The threshold condition for replica counts keyed by size in units."""
    for size, n in counts.items():
        if n and size > UNITS_PER_GPU and size not in caps:
            return False  # a TP group larger than any NVLink domain of the type
    for t, cap in caps.items():
        if sum(size * n for size, n in counts.items() if size >= t) > cap:
            return False
    return True


def first_fit_decreasing(counts: Mapping[int, int], cluster: Cluster, gpu_type: GpuType) -> int:
    """Place replicas largest first on the GPU type's pools; return how many do not fit.

    TP groups (> 1 GPU) take whole free GPUs inside one NVLink domain; shares of one GPU
    go on the first GPU with room. Independent of the threshold algebra above: the
    validator uses it to confirm every plan is placeable.
    """
    # free[d] = list of free units per GPU of domain d
    domains: list[list[int]] = []
    for pool in cluster.pools:
        if pool.gpu_type != gpu_type:
            continue
        for _ in range(pool.nodes):
            for size in domains_per_node(pool.gpus_per_node, pool.nvlink_domain_size):
                domains.append([UNITS_PER_GPU] * size)
    unplaced = 0
    start = 0  # domains before `start` are full (shares only shrink, so it only moves on)
    for size in sorted(counts, reverse=True):
        for _ in range(counts[size]):
            if size >= UNITS_PER_GPU:
                placed = _place_group(domains, size // UNITS_PER_GPU)
            else:
                while start < len(domains) and not any(domains[start]):
                    start += 1
                placed = _place_share(domains, start, size)
            unplaced += not placed
    return unplaced


def _place_group(domains: list[list[int]], need: int) -> bool:
    for gpus in domains:
        free = [i for i, f in enumerate(gpus) if f == UNITS_PER_GPU]
        if len(free) >= need:
            for i in free[:need]:
                gpus[i] = 0
            return True
    return False


def _place_share(domains: list[list[int]], start: int, size: int) -> bool:
    for gpus in domains[start:]:
        for i, f in enumerate(gpus):
            if f >= size:
                gpus[i] = f - size
                return True
    return False
