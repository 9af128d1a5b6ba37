"""Autoscaler bounds from the plan: an HPA or a KEDA ScaledObject per serving group.

Minimum: the planned replicas (the plan's capacity is the floor a scale-down may reach).
Maximum: the planned replicas plus the copies of the group's shape that fit on the GPUs
the placement left free where the group's pods may run (its pinned nodes, or its pool),
so a scale-up never creates a pod that can only sit Pending. Groups compete for the same
free GPUs; the scheduler settles who gets them.

Metric: vLLM's queue, `vllm:num_requests_waiting` (REFERENCE.md 12). A server only queues
once its running batch or KV cache is full, so waiting requests mean the replica is
saturated; the HPA reads it per pod through a custom-metrics adapter (prometheus-adapter),
KEDA queries Prometheus directly. See docs/deploy.md for the adapter rule.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s

from planner.defaults import UNITS_PER_GPU
from planner.place import Placement
from planner.render.common import metadata
from planner.render.groups import ServingGroup
from planner.render.settings import RenderOptions
from planner.types.cluster import NodePool

WAITING_METRIC = "vllm:num_requests_waiting"
# Scale down one pod per 5 minutes after 10 quiet minutes: a GPU pod takes minutes to load
# its weights, so a pod removed too eagerly is expensive to bring back.
_SCALE_DOWN_WINDOW_S = 600
_SCALE_DOWN_PERIOD_S = 300


def max_replicas(group: ServingGroup, placement: Placement) -> int:
    """Planned replicas plus the copies of the group's shape the free GPUs still hold."""
    pool = group.pool
    pinned = set(group.nodes) if pool.node_names else None
    usable = [
        n for n in placement.nodes if n.pool == pool.name and (pinned is None or n.node in pinned)
    ]
    extra = 0
    if group.kind == "sliced":
        extra = sum(
            (UNITS_PER_GPU - u) // group.share_eighths for n in usable for u in n.used_eighths
        )
    elif group.multi_node:
        # A whole replica per set of nodes that each have a pod's GPUs free: any nodes of
        # the pool for pipeline stages, nodes of one NVLink domain for a TP group that
        # spans the nodes of a multi-node domain (GB200 NVL72 rack).
        across = pool.nvlink_domain_nodes > 1 and group.servers[0].pipeline_parallel == 1
        index = {name: i for i, name in enumerate(pool.names())}
        fit: dict[int, int] = {}
        for n in usable:
            if _free_in_domains(n.used_eighths, pool, group) >= 1:
                domain = pool.domain_of(index[n.node]) if across else 0
                fit[domain] = fit.get(domain, 0) + 1
        extra = sum(count // group.pods_per_replica for count in fit.values())
    else:
        extra = sum(_free_in_domains(n.used_eighths, pool, group) for n in usable)
    return len(group.replicas) + extra


def _free_in_domains(used: tuple[int, ...], pool: NodePool, group: ServingGroup) -> int:
    """How many more pods of `group.gpus_per_pod` whole GPUs fit one node's free GPUs,
    each inside one NVLink domain."""
    size = pool.nvlink_domain_size
    count = 0
    for start in range(0, len(used), size):
        free = sum(1 for u in used[start : start + size] if u == 0)
        count += free // group.gpus_per_pod
    return count


def scale_target(group: ServingGroup, kind: str) -> dict[str, str]:
    api = {
        "Deployment": "apps/v1",
        "LeaderWorkerSet": "leaderworkerset.x-k8s.io/v1",
    }[kind]
    return {"apiVersion": api, "kind": kind, "name": group.name}


def hpa(
    group: ServingGroup,
    kind: str,
    placement: Placement,
    options: RenderOptions,
    plan_hash: str,
) -> k8s.V2HorizontalPodAutoscaler:
    target = scale_target(group, kind)
    return k8s.V2HorizontalPodAutoscaler(
        api_version="autoscaling/v2",
        kind="HorizontalPodAutoscaler",
        metadata=metadata(group.name, options.namespace, plan_hash),
        spec=k8s.V2HorizontalPodAutoscalerSpec(
            scale_target_ref=k8s.V2CrossVersionObjectReference(
                api_version=target["apiVersion"], kind=kind, name=group.name
            ),
            min_replicas=len(group.replicas),
            max_replicas=max_replicas(group, placement),
            metrics=[
                k8s.V2MetricSpec(
                    type="Pods",
                    pods=k8s.V2PodsMetricSource(
                        metric=k8s.V2MetricIdentifier(name=WAITING_METRIC),
                        target=k8s.V2MetricTarget(
                            type="AverageValue",
                            average_value=str(options.waiting_requests_per_pod),
                        ),
                    ),
                )
            ],
            behavior=k8s.V2HorizontalPodAutoscalerBehavior(
                scale_down=k8s.V2HPAScalingRules(
                    stabilization_window_seconds=_SCALE_DOWN_WINDOW_S,
                    policies=[
                        k8s.V2HPAScalingPolicy(
                            type="Pods", value=1, period_seconds=_SCALE_DOWN_PERIOD_S
                        )
                    ],
                )
            ),
        ),
    )


def pod_pattern(group: ServingGroup, kind: str) -> str:
    """A regular expression matching the names of the group's serving pods only."""
    if kind == "Deployment":  # <deployment>-<pod-template-hash>-<suffix>
        return f"{group.name}-[a-z0-9]+-[a-z0-9]+"
    if kind == "LeaderWorkerSet":  # leaders: <lws>-<group index>; workers add -<index>
        return f"{group.name}-[0-9]+"
    return f"{group.name}-.+"  # KServe names its workload <name>-kserve...


def keda_trigger(group: ServingGroup, kind: str, options: RenderOptions) -> dict[str, Any]:
    """A Prometheus trigger: the group's waiting requests, per replica (AverageValue)."""
    query = (
        f'sum({WAITING_METRIC}{{namespace="{options.namespace}",'
        f'pod=~"{pod_pattern(group, kind)}"}})'
    )
    return {
        "type": "prometheus",
        "metricType": "AverageValue",
        "metadata": {
            "serverAddress": options.prometheus_url,
            "query": query,
            "threshold": str(options.waiting_requests_per_pod),
        },
    }


def scaled_object(
    group: ServingGroup,
    kind: str,
    placement: Placement,
    options: RenderOptions,
    plan_hash: str,
) -> dict[str, Any]:
    meta = k8s.ApiClient().sanitize_for_serialization(  # type: ignore[no-untyped-call]
        metadata(group.name, options.namespace, plan_hash)
    )
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": meta,
        "spec": {
            "scaleTargetRef": scale_target(group, kind),
            "minReplicaCount": len(group.replicas),
            "maxReplicaCount": max_replicas(group, placement),
            "cooldownPeriod": _SCALE_DOWN_WINDOW_S,
            "triggers": [keda_trigger(group, kind, options)],
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {
                        "scaleDown": {
                            "stabilizationWindowSeconds": _SCALE_DOWN_WINDOW_S,
                            "policies": [
                                {"type": "Pods", "value": 1, "periodSeconds": _SCALE_DOWN_PERIOD_S}
                            ],
                        }
                    }
                }
            },
        },
    }


def autoscalers(
    groups: list[tuple[ServingGroup, str]],
    placement: Placement,
    options: RenderOptions,
    plan_hash: str,
) -> list[object]:
    """One autoscaler per (group, workload kind) when `options.autoscaler` asks for it."""
    if options.autoscaler == "none":
        return []
    if options.autoscaler == "hpa":
        return [hpa(g, kind, placement, options, plan_hash) for g, kind in groups]
    return [scaled_object(g, kind, placement, options, plan_hash) for g, kind in groups]
