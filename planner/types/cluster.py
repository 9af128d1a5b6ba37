"""The cluster the plan targets: node pools of GPUs with their NVLink structure."""

from __future__ import annotations

from dataclasses import dataclass, field

from planner.defaults import DEFAULT_GPU_TYPE, DEFAULT_GPUS_PER_NODE
from planner.types.names import GpuType


@dataclass(frozen=True)
class NodePool:
    """Identical nodes. `nvlink_domain_size` GPUs share NVLink (a TP group stays inside).

    A multi-node NVLink domain (GB200 NVL72: 18 trays of 4 GPUs on one NVLink switch
    fabric) has `nvlink_domain_nodes` > 1: that many consecutive nodes of the pool form
    one domain of `gpus_per_node x nvlink_domain_nodes` GPUs (= `nvlink_domain_size`), and
    a TP group wider than a node takes whole nodes of one domain.
    """

    name: str
    gpu_type: GpuType
    nodes: int
    gpus_per_node: int
    nvlink_domain_size: int
    labels: dict[str, str] = field(default_factory=dict)
    node_names: tuple[str, ...] = ()  # explicit names (discovered clusters); else generated
    price_per_gpu_hour: float | None = None  # $ per GPU-hour; None: unknown
    power_w_per_gpu: float | None = None  # typical board power; None: the catalog's
    nvlink_domain_nodes: int = 1  # > 1: nodes per multi-node NVLink domain (a rack)
    # False: replicas take whole devices only (no k/8 shares), e.g. devices that run one
    # engine each, such as the `cpu` test device's cores.
    share_gpus: bool = True

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node

    @property
    def tp_limit(self) -> int:
        """The widest TP group the pool runs: its NVLink domain, which is at most one node
        unless the domain spans nodes."""
        if self.nvlink_domain_nodes > 1:
            return self.gpus_per_node * self.nvlink_domain_nodes
        return min(self.nvlink_domain_size, self.gpus_per_node)

    def domain_sizes(self) -> tuple[int, ...]:
        """GPUs of every NVLink domain of the pool (a multi-node domain counted once)."""
        if self.nvlink_domain_nodes > 1:
            racks = self.nodes // self.nvlink_domain_nodes
            return (self.tp_limit,) * racks
        domain = max(1, min(self.nvlink_domain_size, self.gpus_per_node))
        full, rest = divmod(self.gpus_per_node, domain)
        return ((domain,) * full + ((rest,) if rest else ())) * self.nodes

    def domain_of(self, index: int) -> int:
        """Which multi-node NVLink domain the pool's `index`-th node is in (0 without)."""
        return index // self.nvlink_domain_nodes

    def names(self) -> tuple[str, ...]:
        """Node names, explicit or `<pool>-<index>`."""
        return self.node_names or tuple(f"{self.name}-{i}" for i in range(self.nodes))


@dataclass(frozen=True)
class Cluster:
    pools: tuple[NodePool, ...]

    @property
    def gpus(self) -> int:
        return sum(p.gpus for p in self.pools)

    def prices(self) -> dict[GpuType, float] | None:
        """$ per GPU-hour per GPU type when every pool has one (pools of one type agree,
        `parse_cluster` checks it); None otherwise."""
        if any(p.price_per_gpu_hour is None for p in self.pools):
            return None
        return {p.gpu_type: float(p.price_per_gpu_hour or 0.0) for p in self.pools}

    def power_w(self) -> dict[GpuType, float] | None:
        """Board power per GPU per GPU type when every pool has it; None otherwise."""
        if any(p.power_w_per_gpu is None for p in self.pools):
            return None
        return {p.gpu_type: float(p.power_w_per_gpu or 0.0) for p in self.pools}

    def gpus_by_type(self) -> dict[GpuType, int]:
        out: dict[GpuType, int] = {}
        for pool in self.pools:
            out[pool.gpu_type] = out.get(pool.gpu_type, 0) + pool.gpus
        return out


def uniform_cluster(
    gpus: int,
    gpu_type: GpuType = DEFAULT_GPU_TYPE,
    gpus_per_node: int = DEFAULT_GPUS_PER_NODE,
    nvlink_domain_size: int | None = None,
) -> Cluster:
    """`--gpus N --gpu-type G`: full nodes of `gpus_per_node`, plus one smaller node."""
    domain = nvlink_domain_size or gpus_per_node
    full, rest = divmod(gpus, gpus_per_node)
    pools = []
    if full:
        pools.append(NodePool("pool", gpu_type, full, gpus_per_node, min(domain, gpus_per_node)))
    if rest:
        pools.append(NodePool("pool-small", gpu_type, 1, rest, min(domain, rest)))
    return Cluster(tuple(pools))
