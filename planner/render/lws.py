"""LeaderWorkerSets (REFERENCE.md 10): one per serving group.

A replica that spans nodes is one LWS group of one pod per node, on Ray (vLLM's
multi-node backend): tensor parallel inside a node and pipeline parallel across nodes
(`pp` pods), or, in a multi-node NVLink domain (GB200 NVL72), one tensor-parallel group
over `tp / gpus_per_node` whole nodes (vLLM multi-node TP: Ray places a TP rank per
GPU of every node). The
leader starts the Ray head, waits for every worker to join, then runs `vllm serve`;
each worker joins the leader's Ray cluster at `$(LWS_LEADER_ADDRESS)`. Only the leader
serves HTTP, so only the leader carries the model's `serves` label (its Service and
InferencePool never pick a worker). A failed pod recreates its whole group.

A single-node group under `--target lws` is an LWS of size 1 running the usual pod.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from kubernetes import client as k8s

from planner.catalog import GpuSpec
from planner.render.common import metadata
from planner.render.groups import ServingGroup
from planner.render.pods import pod_template, serve_args
from planner.render.settings import RenderOptions
from planner.types.names import GpuType

RAY_PORT = 6379


def leader_script(group: ServingGroup) -> str:
    """Ray head, wait for `$LWS_GROUP_SIZE` nodes, then serve with the Ray backend."""
    (server,) = group.servers
    count_nodes = (
        'python3 -c \'import ray; ray.init(address="auto", logging_level="ERROR"); '
        'print(sum(1 for n in ray.nodes() if n["Alive"]))\''
    )
    serve = shlex.join(serve_args(server, ("--distributed-executor-backend", "ray")))
    return "\n".join(
        [
            "set -euo pipefail",
            f"ray start --head --port={RAY_PORT}",
            f'until [ "$({count_nodes} 2>/dev/null)" = "$LWS_GROUP_SIZE" ]; do sleep 5; done',
            f"exec {serve}",
            "",
        ]
    )


def worker_script() -> str:
    """Join the leader's Ray cluster (retrying until the head is up) and stay attached."""
    return (
        "set -euo pipefail\n"
        f'until ray start --address="$LWS_LEADER_ADDRESS:{RAY_PORT}" --block; '
        "do sleep 5; done\n"
    )


def leader_worker_set(
    group: ServingGroup,
    gpus: Mapping[GpuType, GpuSpec],
    options: RenderOptions,
    plan_hash: str,
    replicas: int | None,
) -> dict[str, Any]:
    """The LWS of `group`; `replicas=None` leaves the count to an autoscaler."""
    api = k8s.ApiClient()
    template: dict[str, Any] = {"size": group.pods_per_replica}
    if group.multi_node:
        leader = pod_template(group, gpus, options, ["/bin/bash", "-c", leader_script(group)])
        worker = pod_template(
            group, gpus, options, ["/bin/bash", "-c", worker_script()], worker=True
        )
        template["leaderTemplate"] = api.sanitize_for_serialization(leader)  # type: ignore[no-untyped-call]
        template["workerTemplate"] = api.sanitize_for_serialization(worker)  # type: ignore[no-untyped-call]
    else:
        template["workerTemplate"] = api.sanitize_for_serialization(  # type: ignore[no-untyped-call]
            pod_template(group, gpus, options)
        )
    template["restartPolicy"] = "RecreateGroupOnPodRestart"
    spec: dict[str, Any] = {
        "leaderWorkerTemplate": template,
        # The GPUs are all planned: replace one group at a time, never surge.
        "rolloutStrategy": {
            "type": "RollingUpdate",
            "rollingUpdateConfiguration": {"maxUnavailable": 1, "maxSurge": 0},
        },
        # Workers start once the leader pod exists; the leader waits for them in Ray.
        "startupPolicy": "LeaderCreated",
    }
    if replicas is not None:
        spec["replicas"] = replicas
    meta = api.sanitize_for_serialization(metadata(group.name, options.namespace, plan_hash))  # type: ignore[no-untyped-call]
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": meta,
        "spec": spec,
    }
