"""Read and write cluster descriptions (`configs/cluster*.yaml`).

The file is flat YAML with `schema_version: 1` and a list of node pools. A pool either
counts identical nodes (`nodes: 4`) or lists them by name (`node_names: [...]`, what
`planner cluster discover` writes), so a plan can be pinned to real hostnames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from planner.config import parse_config
from planner.errors import ConfigError
from planner.io.atomic import write_text_atomic
from planner.types.cluster import Cluster, NodePool
from planner.types.names import dns_name


@dataclass(frozen=True)
class _PoolConfig:
    name: str
    gpu_type: str
    gpus_per_node: int
    nodes: int | None = None
    node_names: tuple[str, ...] = ()
    nvlink_domain_size: int | None = None  # default: all GPUs of a node share NVLink
    labels: dict[str, str] = field(default_factory=dict)
    price_per_gpu_hour: float | None = None  # $ per GPU-hour (enables cost figures, min-cost)
    power_w_per_gpu: float | None = None  # default: the GPU catalog's board power
    # Multi-node NVLink domain (GB200 NVL72: 18 nodes of 4 GPUs): nodes per domain.
    nvlink_domain_nodes: int = 1
    # False: no fractional shares on this pool's devices (whole devices only).
    share_gpus: bool = True


@dataclass(frozen=True)
class _ClusterConfig:
    pools: tuple[_PoolConfig, ...]


def parse_cluster(data: object, where: str) -> Cluster:
    """Parse a cluster mapping (already read from YAML) into a `Cluster`.

    Raises:
        ConfigError: unknown keys, impossible counts, duplicate pool or node names.
    """
    config = parse_config(data, _ClusterConfig, where)
    if not config.pools:
        raise ConfigError(f"{where}: 'pools' is empty; list at least one node pool")
    pools: list[NodePool] = []
    seen_pools: set[str] = set()
    seen_nodes: dict[str, str] = {}
    k8s_names: dict[str, str] = {}  # Kubernetes form of a node name -> node
    for i, pc in enumerate(config.pools):
        at = f"{where}: pools[{i}] ({pc.name})"
        if pc.name in seen_pools:
            raise ConfigError(f"{at}: duplicate pool name; give each pool its own name")
        seen_pools.add(pc.name)
        if pc.gpus_per_node < 1:
            raise ConfigError(f"{at}: gpus_per_node must be at least 1, got {pc.gpus_per_node}")
        if pc.nodes is None and not pc.node_names:
            raise ConfigError(f"{at}: give either 'nodes' (a count) or 'node_names' (a list)")
        if pc.node_names and pc.nodes is not None and pc.nodes != len(pc.node_names):
            raise ConfigError(
                f"{at}: nodes={pc.nodes} but {len(pc.node_names)} node_names; "
                "drop 'nodes' or make them agree"
            )
        count = len(pc.node_names) if pc.node_names else (pc.nodes or 0)
        if count < 1:
            raise ConfigError(f"{at}: a pool needs at least one node, got {count}")
        span = pc.nvlink_domain_nodes
        if span > 1:
            domain = _multi_node_domain(pc, count, at)
        else:
            domain = pc.nvlink_domain_size or pc.gpus_per_node
            if span != 1:
                raise ConfigError(f"{at}: nvlink_domain_nodes must be at least 1, got {span}")
            if not 1 <= domain <= pc.gpus_per_node:
                raise ConfigError(
                    f"{at}: nvlink_domain_size must be between 1 and gpus_per_node "
                    f"({pc.gpus_per_node}), got {domain}; for an NVLink domain spanning nodes "
                    "(GB200 NVL72) set nvlink_domain_nodes (nodes per domain)"
                )
        for key, value in (
            ("price_per_gpu_hour", pc.price_per_gpu_hour),
            ("power_w_per_gpu", pc.power_w_per_gpu),
        ):
            if value is not None and not value >= 0:
                raise ConfigError(f"{at}: {key} must be a number >= 0, got {value}")
        pool = NodePool(
            name=pc.name,
            gpu_type=pc.gpu_type,
            nodes=count,
            gpus_per_node=pc.gpus_per_node,
            nvlink_domain_size=domain,
            labels=dict(pc.labels),
            node_names=tuple(pc.node_names),
            price_per_gpu_hour=pc.price_per_gpu_hour,
            power_w_per_gpu=pc.power_w_per_gpu,
            nvlink_domain_nodes=span,
            share_gpus=pc.share_gpus,
        )
        for node in pool.names():
            if node in seen_nodes:
                raise ConfigError(
                    f"{at}: node '{node}' is also in pool '{seen_nodes[node]}'; "
                    "node names must be unique"
                )
            seen_nodes[node] = pc.name
            # Workload names embed the node; names that differ only in case or
            # punctuation would render two Deployments under one name.
            k8s = dns_name(node)
            if k8s in k8s_names:
                raise ConfigError(
                    f"{at}: node '{node}' and node '{k8s_names[k8s]}' both become "
                    f"'{k8s}' in Kubernetes names; rename one so they differ in letters or digits"
                )
            k8s_names[k8s] = node
        pools.append(pool)
    _same_price_per_type(pools, where)
    return Cluster(tuple(pools))


def _same_price_per_type(pools: list[NodePool], where: str) -> None:
    """The search prices GPUs per type (placement picks the pool): pools of one GPU type
    must agree on price and power."""
    for key in ("price_per_gpu_hour", "power_w_per_gpu"):
        seen: dict[str, tuple[str, float | None]] = {}
        for p in pools:
            value = getattr(p, key)
            if p.gpu_type in seen and seen[p.gpu_type][1] != value:
                first, other = seen[p.gpu_type]
                raise ConfigError(
                    f"{where}: pools '{first}' and '{p.name}' are both {p.gpu_type} but give "
                    f"{key} {other} and {value}; give pools of one GPU type the same {key}"
                )
            seen.setdefault(p.gpu_type, (p.name, value))


def load_cluster(path: Path) -> Cluster:
    """Read `configs/cluster.yaml` (or a discovered cluster file).

    Raises:
        ConfigError: the file is missing, not YAML, or not a valid cluster description.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read cluster file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    return parse_cluster(data, str(path))


def _multi_node_domain(pc: _PoolConfig, nodes: int, at: str) -> int:
    """GPUs of a multi-node NVLink domain, checked: whole domains of power-of-two nodes."""
    span, per_node = pc.nvlink_domain_nodes, pc.gpus_per_node
    domain = span * per_node
    if per_node & (per_node - 1):
        raise ConfigError(
            f"{at}: a multi-node NVLink domain needs gpus_per_node a power of two "
            f"(TP groups take whole nodes), got {per_node}"
        )
    if pc.nvlink_domain_size is not None and pc.nvlink_domain_size != domain:
        raise ConfigError(
            f"{at}: nvlink_domain_size {pc.nvlink_domain_size} is not nvlink_domain_nodes x "
            f"gpus_per_node = {span} x {per_node} = {domain}; drop it or make them agree"
        )
    if nodes % span:
        raise ConfigError(
            f"{at}: {nodes} nodes are not whole NVLink domains of {span} nodes; list the "
            "nodes of each domain (rack) in full, or one pool per partial rack"
        )
    return domain


def cluster_to_dict(cluster: Cluster) -> dict[str, object]:
    """The YAML mapping `parse_cluster` reads back into the same `Cluster`."""
    pools: list[dict[str, object]] = []
    for p in cluster.pools:
        entry: dict[str, object] = {"name": p.name, "gpu_type": p.gpu_type}
        if p.node_names:
            entry["node_names"] = list(p.node_names)
        else:
            entry["nodes"] = p.nodes
        entry["gpus_per_node"] = p.gpus_per_node
        entry["nvlink_domain_size"] = p.nvlink_domain_size
        if p.nvlink_domain_nodes > 1:
            entry["nvlink_domain_nodes"] = p.nvlink_domain_nodes
        if not p.share_gpus:
            entry["share_gpus"] = False
        if p.labels:
            entry["labels"] = dict(sorted(p.labels.items()))
        if p.price_per_gpu_hour is not None:
            entry["price_per_gpu_hour"] = p.price_per_gpu_hour
        if p.power_w_per_gpu is not None:
            entry["power_w_per_gpu"] = p.power_w_per_gpu
        pools.append(entry)
    return {"schema_version": 1, "pools": pools}


def cluster_yaml(cluster: Cluster, header: str = "") -> str:
    """The cluster file's text, with `header` as leading `#` comment lines."""
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    body = yaml.safe_dump(cluster_to_dict(cluster), sort_keys=False, default_flow_style=False)
    return comment + body


def write_cluster(cluster: Cluster, path: Path, header: str = "") -> None:
    """Write a cluster file atomically, with `header` as leading `#` comment lines."""
    write_text_atomic(Path(path), cluster_yaml(cluster, header))
