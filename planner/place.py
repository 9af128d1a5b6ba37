"""Placement: give every replica of a Plan a node and GPU indices on the Cluster.

Notation: a node has `g` GPUs numbered 0..g-1, cut into NVLink domains of `d` consecutive
GPUs (the last may be smaller). A replica with tensor parallelism `t`, data-parallel
attention ranks `r` and share `f` needs `t r` whole GPUs inside one domain (f = 1), or a
share `f < 1` of one GPU (t = r = 1).

Rules, in order:
1. Whole-GPU replicas first, largest group (t r) first (first-fit decreasing keeps big NVLink
   groups possible). Each goes to the domain that fits with the fewest free GPUs left,
   preferring nodes already in use, so whole domains and whole nodes stay free.
2. Shares (k/8 of one GPU) next, per GPU type: `search.packing.pack_shares` packs them
   exactly onto the fewest of the GPUs left free (bin packing with sizes 1..7 eighths;
   first-fit alone is not exact there), and each packed GPU is opened as in rule 1. On a
   GPU, a share goes to a model not yet on it when one of that size is left (replicas
   spread for availability).
Ties break on pool order, node order and GPU index, so placement is deterministic.

Search checks the same conditions (`search/packing.py`: TP groups by threshold
volumes, which any largest-first placement meets; shares by the same exact packing), so
placement never fails on a plan search accepted; the errors below guard the remaining
cases (hand-written plans, other clusters, TP sizes that are not powers of two).

`place` raises `PlacementError` naming the failed constraint, so the search can retry
with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from planner.defaults import UNITS_PER_GPU
from planner.errors import InfeasibleError
from planner.search.packing import pack_shares
from planner.types.cluster import Cluster, NodePool
from planner.types.names import GpuType, ModelName
from planner.types.plan import Allocation, Plan

Constraint = Literal[
    "gpu-type",  # no pool has this GPU type
    "gpu-capacity",  # more GPUs of a type than the cluster has
    "nvlink-domain",  # a TP group larger than any NVLink domain of that type
    "fragmentation",  # enough GPUs in total, but not together where needed
    "fractional-tp",  # a share below one GPU with TP > 1
]


class PlacementError(InfeasibleError):
    """A plan that cannot be placed; `constraint` says which rule failed."""

    def __init__(
        self,
        constraint: Constraint,
        message: str,
        model: ModelName,
        gpu_type: GpuType,
        tp: int = 0,  # 0: every TP degree of the model on this GPU type
    ) -> None:
        super().__init__(message)
        self.constraint: Constraint = constraint
        self.model = model
        self.gpu_type = gpu_type
        self.tp = tp


@dataclass(frozen=True, order=True)
class ReplicaPlacement:
    """One replica: which node and which GPUs (indices on that node) it uses."""

    model: ModelName
    gpu_type: GpuType
    tp: int
    share_eighths: int
    replica: int  # index among the allocation's replicas
    pool: str
    node: str
    # On `node`; each further node takes as many GPUs (a pipeline stage's `tp`, or the
    # whole node for a TP group across the nodes of a multi-node NVLink domain).
    gpu_indices: tuple[int, ...]
    pipeline_parallel: int = 1
    # A replica spanning nodes: pipeline stages 2, 3, ..., or the further nodes of a TP
    # group wider than a node (GB200 NVL72).
    other_nodes: tuple[str, ...] = ()
    expert_parallel: bool = False  # MoE: experts split across the TP GPUs
    dp: int = 1  # data-parallel attention ranks (its gpu_indices hold tp x dp GPUs)

    @property
    def group_gpus(self) -> int:
        """GPUs of one pipeline stage on one node (tp x dp)."""
        return self.tp * self.dp

    @property
    def nodes(self) -> tuple[str, ...]:
        """Every node the replica runs on, first pipeline stage first."""
        return (self.node, *self.other_nodes)

    @property
    def gpu_fraction(self) -> float:
        """The share of each GPU as a fraction (for files and display)."""
        return self.share_eighths / UNITS_PER_GPU

    @property
    def allocation(self) -> Allocation:
        """The plan allocation this replica belongs to (with replicas=1)."""
        return Allocation(
            self.model,
            self.gpu_type,
            self.tp,
            self.share_eighths,
            1,
            self.pipeline_parallel,
            self.expert_parallel,
            self.dp,
        )


@dataclass(frozen=True)
class NodeUsage:
    """How full one node is after placement: used share per GPU index."""

    pool: str
    node: str
    gpu_type: GpuType
    used_eighths: tuple[int, ...]  # per GPU, 0..UNITS_PER_GPU

    @property
    def used_fraction(self) -> tuple[float, ...]:
        """Per GPU, the used share as a fraction (for display)."""
        return tuple(u / UNITS_PER_GPU for u in self.used_eighths)

    @property
    def free_gpus(self) -> int:
        return sum(1 for u in self.used_eighths if u == 0)

    @property
    def partly_used_gpus(self) -> int:
        return sum(1 for u in self.used_eighths if 0 < u < UNITS_PER_GPU)

    @property
    def is_free(self) -> bool:
        return self.free_gpus == len(self.used_eighths)


@dataclass(frozen=True)
class Fragmentation:
    partly_used_gpus: int  # GPUs holding shares that leave room unused
    free_gpus: int  # whole GPUs with nothing on them
    free_nodes: int  # nodes with nothing on them
    unused_share_eighths: int  # summed unused room on partly used GPUs, in eighths

    @property
    def unused_share_gpus(self) -> float:
        return self.unused_share_eighths / UNITS_PER_GPU


@dataclass(frozen=True)
class Placement:
    replicas: tuple[ReplicaPlacement, ...]
    nodes: tuple[NodeUsage, ...]
    fragmentation: Fragmentation = field(default_factory=lambda: Fragmentation(0, 0, 0, 0))


@dataclass
class _Node:
    pool: NodePool
    name: str
    order: int
    used: list[int]  # eighths per GPU
    models: list[set[ModelName]]

    def domains(self) -> list[range]:
        size = self.pool.nvlink_domain_size
        n = len(self.used)
        return [range(s, min(s + size, n)) for s in range(0, n, size)]

    @property
    def in_use(self) -> bool:
        return any(u > 0 for u in self.used)


def place(plan: Plan, cluster: Cluster) -> Placement:
    """Place every replica of `plan` on `cluster` (see the module docstring for rules).

    Raises:
        PlacementError: the plan cannot be placed; `.constraint` names the rule.
    """
    nodes = _nodes(cluster)
    _check_totals(plan.allocations, cluster)
    whole = [a for a in plan.allocations if a.share_eighths == UNITS_PER_GPU]
    shares = [a for a in plan.allocations if a.share_eighths < UNITS_PER_GPU]
    placed: list[ReplicaPlacement] = []
    # Largest TP group first (a pipeline stage is one TP group), pipelines before single
    # groups of the same size; the model name breaks ties so the order never depends on
    # input order.
    for alloc in sorted(whole, key=lambda a: (-a.group_gpus, -a.pp, a.model, a.gpu_type)):
        for r in range(alloc.replicas):
            place_one = _place_pipeline if alloc.pp > 1 else _place_whole
            placed.append(place_one(alloc, r, nodes))
    for alloc in sorted(shares):
        if alloc.group_gpus != 1:
            raise PlacementError(
                "fractional-tp",
                f"{alloc.model}: a share of {alloc.gpu_fraction:g} GPU with TP "
                f"{alloc.tp} x DP {alloc.dp}; TP or DP > 1 takes whole GPUs",
                alloc.model,
                alloc.gpu_type,
                alloc.tp,
            )
    for gpu_type in sorted({a.gpu_type for a in shares}):
        placed += _place_shares([a for a in shares if a.gpu_type == gpu_type], nodes)
    usage = tuple(NodeUsage(n.pool.name, n.name, n.pool.gpu_type, tuple(n.used)) for n in nodes)
    return Placement(tuple(sorted(placed)), usage, _fragmentation(usage))


def _nodes(cluster: Cluster) -> list[_Node]:
    out: list[_Node] = []
    for pool in cluster.pools:
        for name in pool.names():
            g = pool.gpus_per_node
            out.append(_Node(pool, name, len(out), [0] * g, [set() for _ in range(g)]))
    return out


def _check_totals(allocations: tuple[Allocation, ...], cluster: Cluster) -> None:
    have = cluster.gpus_by_type()
    need: dict[GpuType, int] = {}  # eighths
    first_model: dict[GpuType, ModelName] = {}
    for a in sorted(allocations):
        need[a.gpu_type] = need.get(a.gpu_type, 0) + a.units
        first_model.setdefault(a.gpu_type, a.model)
    for gpu_type, units in sorted(need.items()):
        if gpu_type not in have:
            raise PlacementError(
                "gpu-type",
                f"the plan uses {gpu_type} but the cluster has none "
                f"(it has: {', '.join(sorted(have)) or 'no GPUs'})",
                first_model[gpu_type],
                gpu_type,
            )
        if units > have[gpu_type] * UNITS_PER_GPU:
            raise PlacementError(
                "gpu-capacity",
                f"the plan needs {units / UNITS_PER_GPU:g} {gpu_type} GPUs but the cluster "
                f"has {have[gpu_type]}",
                first_model[gpu_type],
                gpu_type,
            )


def _fresh_gpus(
    nodes: list[_Node], gpu_type: GpuType, count: int
) -> tuple[_Node, tuple[int, ...]] | None:
    """Best fit for `count` empty GPUs inside one NVLink domain, or None."""
    best: tuple[tuple[int, int, int, int], _Node, tuple[int, ...]] | None = None
    for node in nodes:
        if node.pool.gpu_type != gpu_type:
            continue
        for domain in node.domains():
            free = [i for i in domain if node.used[i] == 0]
            if len(free) < count:
                continue
            # Prefer busy nodes, then the tightest domain, then the earliest node/domain.
            score = (0 if node.in_use else 1, len(free) - count, node.order, domain.start)
            if best is None or score < best[0]:
                best = (score, node, tuple(free[:count]))
    return None if best is None else (best[1], best[2])


def _unplaceable(alloc: Allocation, nodes: list[_Node]) -> PlacementError:
    domains = [n.pool.tp_limit for n in nodes if n.pool.gpu_type == alloc.gpu_type]
    group = alloc.group_gpus
    what = f"TP {alloc.tp}" + (f" x DP {alloc.dp}" if alloc.dp > 1 else "")
    if group > max(domains, default=0):
        return PlacementError(
            "nvlink-domain",
            f"{alloc.model}: {what} needs {group} "
            f"{alloc.gpu_type} GPUs in one NVLink domain; the largest domain has "
            f"{max(domains, default=0)}",
            alloc.model,
            alloc.gpu_type,
            alloc.tp,
        )
    return PlacementError(
        "fragmentation",
        f"{alloc.model}: no NVLink domain of {alloc.gpu_type} has {group} "
        f"free GPUs left for another {what} replica; "
        "the free GPUs are scattered across domains",
        alloc.model,
        alloc.gpu_type,
        alloc.tp,
    )


def _place_whole(alloc: Allocation, replica: int, nodes: list[_Node]) -> ReplicaPlacement:
    found = _fresh_gpus(nodes, alloc.gpu_type, alloc.group_gpus)
    if found is None:
        # No node holds the group: whole nodes of a multi-node NVLink domain, if any.
        return _place_across_nodes(alloc, replica, nodes)
    node, gpus = found
    for i in gpus:
        node.used[i] = UNITS_PER_GPU
        node.models[i].add(alloc.model)
    return _replica(alloc, replica, node, gpus)


def _place_across_nodes(alloc: Allocation, replica: int, nodes: list[_Node]) -> ReplicaPlacement:
    """A TP group wider than a node: whole empty nodes of one multi-node NVLink domain
    (GB200 NVL72 rack), the fullest domain that still holds it, then the earliest."""
    best: tuple[tuple[int, int], list[_Node]] | None = None
    pools = {n.pool.name: n.pool for n in nodes if n.pool.gpu_type == alloc.gpu_type}
    for pool in pools.values():
        if pool.nvlink_domain_nodes < 2 or alloc.group_gpus > pool.tp_limit:
            continue
        if alloc.group_gpus % pool.gpus_per_node:
            continue
        need = alloc.group_gpus // pool.gpus_per_node
        members = [n for n in nodes if n.pool.name == pool.name]
        racks: dict[int, list[_Node]] = {}
        for i, n in enumerate(members):
            racks.setdefault(pool.domain_of(i), []).append(n)
        for rack in racks.values():
            free = [n for n in rack if not n.in_use]
            if len(free) >= need:
                score = (len(free) - need, free[0].order)
                if best is None or score < best[0]:
                    best = (score, free[:need])
    if best is None:
        raise _unplaceable(alloc, nodes)
    chosen = best[1]
    for n in chosen:
        for i in range(len(n.used)):
            n.used[i] = UNITS_PER_GPU
            n.models[i].add(alloc.model)
    first = chosen[0]
    others = tuple(n.name for n in chosen[1:])
    return _replica(alloc, replica, first, tuple(range(len(first.used))), others)


def _place_pipeline(alloc: Allocation, replica: int, nodes: list[_Node]) -> ReplicaPlacement:
    """A replica of `pp` stages: each stage a TP group in one NVLink domain, all stages in
    one pool (one topology domain), on distinct nodes where the pool has enough of them."""
    pools = [
        p for p in dict.fromkeys(n.pool.name for n in nodes if n.pool.gpu_type == alloc.gpu_type)
    ]
    for pool in pools:
        members = [n for n in nodes if n.pool.name == pool]
        for distinct in (True, False):
            stages: list[tuple[_Node, tuple[int, ...]]] = []
            for _ in range(alloc.pp):
                used = {id(n) for n, _ in stages}
                free = [n for n in members if not (distinct and id(n) in used)]
                found = _fresh_gpus(free, alloc.gpu_type, alloc.group_gpus)
                if found is None:
                    break
                stages.append(found)
                for i in found[1]:
                    found[0].used[i] = UNITS_PER_GPU
            if len(stages) == alloc.pp:
                for node, gpus in stages:
                    for i in gpus:
                        node.models[i].add(alloc.model)
                first, first_gpus = stages[0]
                others = tuple(n.name for n, _ in stages[1:])
                return _replica(alloc, replica, first, first_gpus, others)
            for node, gpus in stages:  # roll back this attempt
                for i in gpus:
                    node.used[i] = 0
    raise _unplaceable(alloc, nodes)


def _place_shares(allocs: list[Allocation], nodes: list[_Node]) -> list[ReplicaPlacement]:
    """Every share of one GPU type, packed exactly onto the GPUs left free."""
    gpu_type = allocs[0].gpu_type
    # Replicas waiting per size, in (model, replica) order.
    waiting: dict[int, list[tuple[Allocation, int]]] = {}
    for a in sorted(allocs, key=lambda a: (a.model, a.share_eighths)):
        waiting.setdefault(a.share_eighths, []).extend((a, r) for r in range(a.replicas))
    free = sum(1 for n in nodes if n.pool.gpu_type == gpu_type for u in n.used if u == 0)
    counts = {size: len(reps) for size, reps in waiting.items()}
    gpus = pack_shares(counts, free)
    if gpus is None:
        first = min(allocs)
        raise PlacementError(
            "fragmentation",
            f"{first.model}: the shares of {gpu_type} ({sum(a.units for a in allocs) / 8:g} "
            f"GPUs in all) do not pack onto the {free} GPUs whole replicas leave free",
            first.model,
            gpu_type,
            first.tp,
        )
    out: list[ReplicaPlacement] = []
    for content in gpus:
        found = _fresh_gpus(nodes, gpu_type, 1)
        if found is None:  # pack_shares used no more GPUs than are free
            raise RuntimeError(f"no free {gpu_type} GPU left for a packed share")
        node, (index,) = found
        for size in content:
            queue = waiting[size]
            pick = next(
                (i for i, (a, _) in enumerate(queue) if a.model not in node.models[index]), 0
            )
            alloc, replica = queue.pop(pick)
            node.used[index] += size
            node.models[index].add(alloc.model)
            out.append(_replica(alloc, replica, node, (index,)))
    return out


def _replica(
    alloc: Allocation,
    replica: int,
    node: _Node,
    gpus: tuple[int, ...],
    other_nodes: tuple[str, ...] = (),
) -> ReplicaPlacement:
    return ReplicaPlacement(
        model=alloc.model,
        gpu_type=alloc.gpu_type,
        tp=alloc.tp,
        share_eighths=alloc.share_eighths,
        replica=replica,
        pool=node.pool.name,
        node=node.name,
        gpu_indices=gpus,
        pipeline_parallel=alloc.pp,
        other_nodes=other_nodes,
        expert_parallel=alloc.expert_parallel,
        dp=alloc.dp,
    )


def _fragmentation(nodes: tuple[NodeUsage, ...]) -> Fragmentation:
    partly = sum(n.partly_used_gpus for n in nodes)
    unused = sum(UNITS_PER_GPU - u for n in nodes for u in n.used_eighths if 0 < u < UNITS_PER_GPU)
    return Fragmentation(
        partly_used_gpus=partly,
        free_gpus=sum(n.free_gpus for n in nodes),
        free_nodes=sum(1 for n in nodes if n.is_free),
        unused_share_eighths=unused,
    )
