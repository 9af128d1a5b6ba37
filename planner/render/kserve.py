"""KServe `LLMInferenceService` (serving.kserve.io/v1alpha2, REFERENCE.md 11) per group.

The service runs the group's own pod spec (its container named `main`, the name KServe's
presets merge into), so the vLLM command, memory share, probes and node pinning are the
plan's. A replica spanning nodes uses `worker` (KServe runs it as a LeaderWorkerSet) with
`parallelism.tensor` and `parallelism.pipeline`. The pods carry planner's labels, so the
model's Service and InferencePool reach them like any other replica.

Autoscaling goes through `scaling` (KServe accepts KEDA or its variant autoscaler there;
an HPA cannot target this kind, which has no scale subresource).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client as k8s

from planner.catalog import GpuSpec
from planner.place import Placement
from planner.render.autoscale import keda_trigger, max_replicas
from planner.render.common import metadata
from planner.render.groups import ServingGroup
from planner.render.lws import leader_script, worker_script
from planner.render.pods import pod_template
from planner.render.settings import RenderOptions
from planner.types.names import GpuType

KIND = "LLMInferenceService"
MAIN_CONTAINER = "main"


def _plain(template: k8s.V1PodTemplateSpec) -> dict[str, Any]:
    data: dict[str, Any] = k8s.ApiClient().sanitize_for_serialization(template)  # type: ignore[no-untyped-call]
    return data


def inference_service(
    group: ServingGroup,
    gpus: Mapping[GpuType, GpuSpec],
    placement: Placement,
    options: RenderOptions,
    plan_hash: str,
) -> dict[str, Any]:
    (server,) = group.servers
    model = server.model
    command = ["/bin/bash", "-c", leader_script(group)] if group.multi_node else None
    leader = _plain(pod_template(group, gpus, options, command, container_name=MAIN_CONTAINER))
    spec: dict[str, Any] = {
        "model": {"uri": f"hf://{model.hf_id}", "name": model.served_name},
        "parallelism": {
            "tensor": server.tp,
            # Data-parallel attention ranks, all in this one pod (dataLocal = data).
            **(
                {"data": server.data_parallel, "dataLocal": server.data_parallel}
                if server.data_parallel > 1
                else {}
            ),
            **({"expert": True} if server.expert_parallel else {}),
        },
        "labels": leader["metadata"]["labels"],
        "annotations": leader["metadata"]["annotations"],
        "template": leader["spec"],
    }
    if group.multi_node:
        worker = pod_template(
            group,
            gpus,
            options,
            ["/bin/bash", "-c", worker_script()],
            worker=True,
            container_name=MAIN_CONTAINER,
        )
        if server.pipeline_parallel > 1:
            spec["parallelism"]["pipeline"] = server.pipeline_parallel
        spec["worker"] = _plain(worker)["spec"]
    if options.autoscaler == "keda":
        # `replicas` and `scaling` are mutually exclusive (a CEL rule of the CRD).
        spec["scaling"] = {
            "minReplicas": len(group.replicas),
            "maxReplicas": max_replicas(group, placement),
            "keda": {"triggers": [keda_trigger(group, KIND, options)]},
        }
    else:
        spec["replicas"] = len(group.replicas)
    meta = k8s.ApiClient().sanitize_for_serialization(  # type: ignore[no-untyped-call]
        metadata(group.name, options.namespace, plan_hash)
    )
    return {
        "apiVersion": "serving.kserve.io/v1alpha2",
        "kind": KIND,
        "metadata": meta,
        "spec": spec,
    }
