"""Inference-aware routing (Gateway API Inference Extension v1, REFERENCE.md 11).

Per model: an `InferencePool` selecting every pod that serves the model (on the model's
port), its endpoint picker (EPP: a Deployment and a Service), and an `HTTPRoute` on the
user's Gateway that sends requests for the model's served name to the pool. The route
matches the `X-Gateway-Model-Name` header, which the extension's body-based router sets
from the request's `model` field (install it with the Gateway; docs/deploy.md).

Shared by all pools: the EPP's configuration (queue and KV-cache scorers, plus the
prefix-cache scorer when `prefix_routing` is on) and its least-privilege RBAC.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml
from kubernetes import client as k8s

from planner.catalog import ModelSpec
from planner.render.common import (
    MANAGED_BY,
    MANAGER,
    PART_OF,
    SERVES_PREFIX,
    container_security,
    dns_name,
    metadata,
    pod_security,
)
from planner.render.settings import RenderOptions
from planner.render.workloads import service_name

POOL_GROUP = "inference.networking.k8s.io"
MODEL_HEADER = "X-Gateway-Model-Name"
EPP_NAME = "planner-epp"  # ServiceAccount, Role, RoleBinding and ConfigMap of the pickers
EPP_CONFIG_KEY = "epp.yaml"
EPP_LABEL = "planner.dev/epp"
_GRPC_PORT = 9002  # ext-proc port the Gateway calls
_HEALTH_PORT = 9003
_METRICS_PORT = 9090


def epp_config(prefix_routing: bool) -> str:
    """The EndpointPickerConfig. Scorer weights as in the extension's chart defaults
    (queue 2, KV-cache utilisation 2, prefix cache 3)."""
    plugins: list[dict[str, Any]] = [
        {"type": "queue-scorer"},
        {"type": "kv-cache-utilization-scorer"},
    ]
    refs: list[dict[str, Any]] = [
        {"pluginRef": "queue-scorer", "weight": 2},
        {"pluginRef": "kv-cache-utilization-scorer", "weight": 2},
    ]
    if prefix_routing:
        plugins.append({"type": "prefix-cache-scorer"})
        refs.append({"pluginRef": "prefix-cache-scorer", "weight": 3})
    doc = {
        "apiVersion": "inference.networking.x-k8s.io/v1alpha1",
        "kind": "EndpointPickerConfig",
        "plugins": plugins,
        "schedulingProfiles": [{"name": "default", "plugins": refs}],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def pool_name(model: ModelSpec) -> str:
    return service_name(model.name)


def epp_name(model: ModelSpec) -> str:
    return dns_name(pool_name(model), "epp")


def gateway_shared(options: RenderOptions, plan_hash: str) -> list[object]:
    """The pickers' ConfigMap, ServiceAccount, Role and RoleBinding (plan-independent)."""
    ns = options.namespace
    config = k8s.V1ConfigMap(
        api_version="v1",
        kind="ConfigMap",
        metadata=metadata(EPP_NAME, ns, plan_hash),
        data={EPP_CONFIG_KEY: epp_config(options.prefix_routing)},
    )
    account = k8s.V1ServiceAccount(
        api_version="v1", kind="ServiceAccount", metadata=metadata(EPP_NAME, ns, plan_hash)
    )
    read = ["get", "list", "watch"]
    role = k8s.V1Role(
        api_version="rbac.authorization.k8s.io/v1",
        kind="Role",
        metadata=metadata(EPP_NAME, ns, plan_hash),
        rules=[
            # The picker watches its pool and the pods the pool selects, nothing else.
            k8s.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=read),
            k8s.V1PolicyRule(api_groups=[POOL_GROUP], resources=["inferencepools"], verbs=read),
            k8s.V1PolicyRule(
                api_groups=["inference.networking.x-k8s.io"],
                resources=["inferenceobjectives"],
                verbs=read,
            ),
        ],
    )
    binding = k8s.V1RoleBinding(
        api_version="rbac.authorization.k8s.io/v1",
        kind="RoleBinding",
        metadata=metadata(EPP_NAME, ns, plan_hash),
        role_ref=k8s.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=EPP_NAME),
        subjects=[k8s.RbacV1Subject(kind="ServiceAccount", name=EPP_NAME, namespace=ns)],
    )
    return [config, account, role, binding]


def gateway_objects(
    models: Sequence[ModelSpec], ports: dict[str, int], options: RenderOptions, plan_hash: str
) -> list[object]:
    """Per model: InferencePool, EPP Deployment and Service, HTTPRoute."""
    out: list[object] = []
    for m in models:
        out += [
            _pool(m, ports[m.name], options, plan_hash),
            _epp_service(m, options, plan_hash),
            _epp_deployment(m, options, plan_hash),
            _route(m, options, plan_hash),
        ]
    return out


def _meta(name: str, options: RenderOptions, plan_hash: str) -> dict[str, Any]:
    data: dict[str, Any] = k8s.ApiClient().sanitize_for_serialization(  # type: ignore[no-untyped-call]
        metadata(name, options.namespace, plan_hash)
    )
    return data


def _pool(model: ModelSpec, port: int, options: RenderOptions, plan_hash: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{POOL_GROUP}/v1",
        "kind": "InferencePool",
        "metadata": _meta(pool_name(model), options, plan_hash),
        "spec": {
            "selector": {"matchLabels": {SERVES_PREFIX + dns_name(model.name): "true"}},
            "targetPorts": [{"number": port}],
            "endpointPickerRef": {
                "kind": "Service",
                "name": epp_name(model),
                "port": {"number": _GRPC_PORT},
                # No picker, no routing: requests fail rather than land on a random pod.
                "failureMode": "FailClose",
            },
        },
    }


def _route(model: ModelSpec, options: RenderOptions, plan_hash: str) -> dict[str, Any]:
    parent: dict[str, Any] = {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": options.gateway_name,
    }
    if options.gateway_namespace:
        parent["namespace"] = options.gateway_namespace
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": _meta(pool_name(model), options, plan_hash),
        "spec": {
            "parentRefs": [parent],
            "rules": [
                {
                    "matches": [
                        {
                            "headers": [
                                {"type": "Exact", "name": MODEL_HEADER, "value": model.served_name}
                            ],
                            "path": {"type": "PathPrefix", "value": "/"},
                        }
                    ],
                    "backendRefs": [
                        {"group": POOL_GROUP, "kind": "InferencePool", "name": pool_name(model)}
                    ],
                }
            ],
        },
    }


def _epp_labels(model: ModelSpec) -> dict[str, str]:
    return {
        MANAGED_BY: MANAGER,
        PART_OF: "planner",
        "app.kubernetes.io/name": "epp",
        EPP_LABEL: epp_name(model),
    }


def _epp_service(model: ModelSpec, options: RenderOptions, plan_hash: str) -> k8s.V1Service:
    return k8s.V1Service(
        api_version="v1",
        kind="Service",
        metadata=metadata(epp_name(model), options.namespace, plan_hash),
        spec=k8s.V1ServiceSpec(
            selector={EPP_LABEL: epp_name(model)},
            ports=[
                k8s.V1ServicePort(
                    name="grpc-ext-proc",
                    port=_GRPC_PORT,
                    target_port=_GRPC_PORT,
                    protocol="TCP",
                    app_protocol="http2",
                )
            ],
        ),
    )


def _epp_deployment(model: ModelSpec, options: RenderOptions, plan_hash: str) -> k8s.V1Deployment:
    name = epp_name(model)
    grpc_probe = k8s.V1Probe(
        grpc=k8s.V1GRPCAction(port=_HEALTH_PORT, service="inference-extension"),
        period_seconds=10,
        initial_delay_seconds=5,
    )
    container = k8s.V1Container(
        name="epp",
        image=options.epp_image,
        args=[
            "--pool-name",
            pool_name(model),
            "--pool-namespace",
            options.namespace,
            "--config-file",
            f"/config/{EPP_CONFIG_KEY}",
            "--grpc-port",
            str(_GRPC_PORT),
            "--grpc-health-port",
            str(_HEALTH_PORT),
            "--zap-encoder",
            "json",
        ],
        ports=[
            k8s.V1ContainerPort(name="grpc", container_port=_GRPC_PORT),
            k8s.V1ContainerPort(name="grpc-health", container_port=_HEALTH_PORT),
            k8s.V1ContainerPort(name="metrics", container_port=_METRICS_PORT),
        ],
        readiness_probe=grpc_probe,
        liveness_probe=grpc_probe,
        # The prefix scorer keeps its per-pod LRU in memory.
        resources=k8s.V1ResourceRequirements(
            requests={"cpu": "1", "memory": "1Gi"}, limits={"memory": "4Gi"}
        ),
        security_context=container_security(read_only_root=True),
        volume_mounts=[k8s.V1VolumeMount(name="config", mount_path="/config", read_only=True)],
    )
    return k8s.V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=metadata(name, options.namespace, plan_hash),
        spec=k8s.V1DeploymentSpec(
            replicas=1,  # the picker's prefix LRU is per process: one picker per pool
            selector=k8s.V1LabelSelector(match_labels={EPP_LABEL: name}),
            template=k8s.V1PodTemplateSpec(
                metadata=k8s.V1ObjectMeta(labels=_epp_labels(model)),
                spec=k8s.V1PodSpec(
                    service_account_name=EPP_NAME,
                    containers=[container],
                    security_context=pod_security(options.run_as_user),
                    # Mirrors the servers' grace period: in-flight requests finish first.
                    termination_grace_period_seconds=60,
                    volumes=[
                        k8s.V1Volume(
                            name="config", config_map=k8s.V1ConfigMapVolumeSource(name=EPP_NAME)
                        )
                    ],
                ),
            ),
        ),
    )
