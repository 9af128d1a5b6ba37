"""Per-model Services and the Deployments (and their disruption budgets) of serving groups.

See `planner.render.groups` for how replicas become groups and `planner.render.pods` for
the pod each group runs.
"""

from __future__ import annotations

from collections.abc import Mapping

from kubernetes import client as k8s

from planner.catalog import GpuSpec, ModelSpec
from planner.render.common import DEPLOYMENT_LABEL, SERVES_PREFIX, dns_name, metadata, port_name
from planner.render.groups import ServingGroup
from planner.render.pods import pod_template
from planner.render.settings import RenderOptions
from planner.types.names import GpuType, ModelName


def service_name(model: ModelName) -> str:
    """A DNS-1035 label (Service names must start with a letter)."""
    name = dns_name(model)
    return name if name[0].isalpha() else dns_name("m", model)


def model_service(
    model: ModelSpec, options: RenderOptions, plan_hash: str, session_affine: bool = False
) -> k8s.V1Service:
    """The model's Service; `session_affine` (the plan chose session routing) keeps one
    client's calls on one replica (sessionAffinity ClientIP, the stock-cluster form)."""
    name = service_name(model.name)
    return k8s.V1Service(
        api_version="v1",
        kind="Service",
        metadata=metadata(name, options.namespace, plan_hash, **{"planner.dev/model": name}),
        spec=k8s.V1ServiceSpec(
            selector={SERVES_PREFIX + dns_name(model.name): "true"},
            ports=[
                k8s.V1ServicePort(
                    name="http", port=80, target_port=port_name(model.name), protocol="TCP"
                )
            ],
            session_affinity="ClientIP" if session_affine else None,
        ),
    )


def group_deployment(
    group: ServingGroup,
    gpus: Mapping[GpuType, GpuSpec],
    options: RenderOptions,
    plan_hash: str,
    replicas: int | None,
) -> k8s.V1Deployment:
    """The Deployment of a single-node group. `replicas=None` leaves the count to an
    autoscaler (whose minimum is the planned count), so a re-plan does not fight it."""
    meta = metadata(group.name, options.namespace, plan_hash, **{DEPLOYMENT_LABEL: group.name})
    return k8s.V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=meta,
        spec=k8s.V1DeploymentSpec(
            replicas=replicas,
            selector=k8s.V1LabelSelector(match_labels={DEPLOYMENT_LABEL: group.name}),
            # The GPUs are all planned: a surge pod would sit Pending, so replace in place.
            strategy=k8s.V1DeploymentStrategy(
                type="RollingUpdate",
                rolling_update=k8s.V1RollingUpdateDeployment(max_surge=0, max_unavailable=1),
            ),
            # The plan hash stays off the pod template so an unchanged group is not restarted.
            template=pod_template(group, gpus, options),
        ),
    )


def disruption_budget(
    group: ServingGroup, options: RenderOptions, plan_hash: str
) -> k8s.V1PodDisruptionBudget:
    """At most one pod of a group evicted at a time (drains, upgrades).

    One budget per serving group rather than per model: a pod serving two models would
    match two budgets, and the eviction API refuses to evict such a pod at all.
    """
    return k8s.V1PodDisruptionBudget(
        api_version="policy/v1",
        kind="PodDisruptionBudget",
        metadata=metadata(group.name, options.namespace, plan_hash),
        spec=k8s.V1PodDisruptionBudgetSpec(
            max_unavailable=1,
            selector=k8s.V1LabelSelector(match_labels={DEPLOYMENT_LABEL: group.name}),
        ),
    )
