"""Serving groups: the placed replicas cut into the units a workload object runs.

- whole GPUs (TP >= 1): replicas of one allocation on one node (or, for a replica that
  spans nodes, on one set of nodes) form a group whose pods request `nvidia.com/gpu: TP`
  (TP x DP with data-parallel attention: one vLLM server runs the DP ranks).
- shares with `--sharing process`: every shared GPU is one group whose single pod requests
  one GPU and starts its co-located vLLM servers one after another (concurrent starts
  mis-size each other's KV cache), each with its own port and memory share.
- shares with `--sharing hami`: replicas of one allocation on one node form a group whose
  pods request a HAMi slice (`nvidia.com/gpumem-percentage`, `nvidia.com/gpucores`).

Every model listens on one port in every pod (`model_ports`), so one Service per model and
one InferencePool per model (which takes a single target port) reach all of its replicas.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from planner.catalog import ModelSpec
from planner.defaults import UNITS_PER_GPU
from planner.place import Placement, ReplicaPlacement
from planner.render.common import dns_name
from planner.render.settings import RenderOptions
from planner.types.cluster import Cluster, NodePool
from planner.types.names import ModelName


@dataclass(frozen=True)
class Server:
    """One `vllm serve` process inside a pod."""

    model: ModelSpec
    tp: int
    memory_utilization: float
    port: int
    pipeline_parallel: int = 1  # > 1: pipeline stages, one per node
    expert_parallel: bool = False  # MoE: --enable-expert-parallel (EP = TP x DP)
    data_parallel: int = 1  # MoE: --data-parallel-size (DP attention ranks, one server)
    prefix_caching: bool = False  # the plan predicts prefix-cache hits for the model


@dataclass(frozen=True)
class ServingGroup:
    """Replicas run by one workload object (Deployment, LeaderWorkerSet, LLMInferenceService).

    `gpus_per_pod` GPUs per pod; a replica is `pods_per_replica` pods (one per node).
    """

    name: str
    kind: str  # "whole", "shared" or "sliced"
    replicas: tuple[ReplicaPlacement, ...]
    servers: tuple[Server, ...]
    pool: NodePool
    gpus_per_pod: int
    extra_limits: tuple[tuple[str, str], ...] = ()
    pods_per_replica: int = 1
    share_eighths: int = UNITS_PER_GPU  # HAMi slices: the share each pod holds

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(sorted({n for r in self.replicas for n in r.nodes}))

    @property
    def multi_node(self) -> bool:
        return self.pods_per_replica > 1


def with_prefix_caching(
    groups: Sequence[ServingGroup], cached: frozenset[ModelName]
) -> list[ServingGroup]:
    """The groups with `prefix_caching` set on the servers of the `cached` models."""
    return [
        replace(
            g, servers=tuple(replace(s, prefix_caching=s.model.name in cached) for s in g.servers)
        )
        for g in groups
    ]


def model_ports(placement: Placement, options: RenderOptions) -> dict[ModelName, int]:
    """One port per model, counted up from `options.port` in model-name order."""
    models = sorted({r.model for r in placement.replicas})
    return {m: options.port + i for i, m in enumerate(models)}


def serving_groups(
    placement: Placement,
    cluster: Cluster,
    models: Mapping[ModelName, ModelSpec],
    options: RenderOptions,
) -> list[ServingGroup]:
    """Cut the placement into serving groups, in a deterministic order."""
    pools = {p.name: p for p in cluster.pools}
    ports = model_ports(placement, options)
    whole: dict[tuple[str, str, int, int, tuple[str, ...], bool, int], list[ReplicaPlacement]] = (
        defaultdict(list)
    )
    shared_gpu: dict[tuple[str, int], list[ReplicaPlacement]] = defaultdict(list)
    sliced: dict[tuple[str, int, str], list[ReplicaPlacement]] = defaultdict(list)
    for r in placement.replicas:
        if r.share_eighths == UNITS_PER_GPU:
            key = (
                r.model,
                r.gpu_type,
                r.tp,
                r.pipeline_parallel,
                r.nodes,
                r.expert_parallel,
                r.dp,
            )
            whole[key].append(r)
        elif options.sharing == "process":
            shared_gpu[(r.node, r.gpu_indices[0])].append(r)
        else:
            sliced[(r.model, r.share_eighths, r.node)].append(r)

    out: list[ServingGroup] = []
    for (model, _gpu, tp, pp, nodes, ep, dp), reps in sorted(whole.items()):
        server = Server(models[model], tp, options.memory_utilization, ports[model], pp, ep, dp)
        # One pod per node: a pipeline stage, or a node's part of a TP group that spans
        # the nodes of a multi-node NVLink domain (GB200 NVL72).
        pods = len(reps[0].nodes)
        where = nodes[0] if pods == 1 else f"{pods}nodes-{nodes[0]}"
        shape = (
            f"tp{tp}"
            + (f"pp{pp}" if pp > 1 else "")
            + (f"dp{dp}" if dp > 1 else "")
            + ("-ep" if ep else "")
        )
        name = dns_name(model, shape, where)
        pool = pools[reps[0].pool]
        per_pod = tp * dp * pp // pods
        out.append(ServingGroup(name, "whole", tuple(reps), (server,), pool, per_pod, (), pods))
    for (node, index), reps in sorted(shared_gpu.items()):
        # Shares of one model on one GPU run as one server with their summed share: one
        # port per model keeps the Service simple, and one larger KV cache serves at least
        # as well as two halves.
        share: dict[ModelName, int] = defaultdict(int)  # eighths
        for r in reps:
            share[r.model] += r.share_eighths
        # Largest share starts first: it profiles memory while the GPU is emptiest.
        ordered = sorted(share.items(), key=lambda kv: (-kv[1], kv[0]))
        servers = tuple(
            Server(models[m], 1, round(e / UNITS_PER_GPU * options.memory_utilization, 4), ports[m])
            for m, e in ordered
        )
        name = dns_name("shared", node, f"gpu{index}")
        # One pod for every share on this GPU: the group has one replica.
        out.append(ServingGroup(name, "shared", (reps[0],), servers, pools[reps[0].pool], 1))
    for (model, eighths, node), reps in sorted(sliced.items()):
        # HAMi shows the slice as the whole device, so vLLM keeps its usual utilisation.
        server = Server(models[model], 1, options.memory_utilization, ports[model])
        percent = max(1, round(eighths * 100 / UNITS_PER_GPU))
        extra = (
            ("nvidia.com/gpumem-percentage", str(percent)),
            ("nvidia.com/gpucores", str(percent)),
        )
        name = dns_name(model, f"{percent}pct", node)
        pool = pools[reps[0].pool]
        out.append(
            ServingGroup(
                name, "sliced", tuple(reps), (server,), pool, 1, extra, share_eighths=eighths
            )
        )
    return out
