"""Names, labels and security settings shared by every rendered object."""

from __future__ import annotations

from kubernetes import client as k8s

from planner.types.names import dns_name as dns_name  # re-exported: renderers and tests
from planner.types.names import short_hash

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "planner"
PART_OF = "app.kubernetes.io/part-of"
PLAN_HASH = "planner.dev/plan-hash"
DEPLOYMENT_LABEL = "planner.dev/deployment"
SERVES_PREFIX = "serves.planner.dev/"  # `serves.planner.dev/<model>: "true"` on pods
PLAN_CONFIGMAP = "planner-plan"
REPLAN_NAME = "planner-replan"


def port_name(model: str) -> str:
    """The container port name of a model (IANA_SVC_NAME: <= 15 chars, has a letter)."""
    return f"vllm-{short_hash(model)}"


def base_labels(plan_hash: str) -> dict[str, str]:
    return {MANAGED_BY: MANAGER, PART_OF: "planner", PLAN_HASH: plan_hash}


def metadata(name: str, namespace: str, plan_hash: str, **extra: str) -> k8s.V1ObjectMeta:
    return k8s.V1ObjectMeta(
        name=name, namespace=namespace, labels={**base_labels(plan_hash), **extra}
    )


def pod_security(run_as_user: int) -> k8s.V1PodSecurityContext:
    return k8s.V1PodSecurityContext(
        run_as_non_root=True,
        run_as_user=run_as_user,
        run_as_group=run_as_user,
        fs_group=run_as_user,
        seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
    )


def container_security(read_only_root: bool = False) -> k8s.V1SecurityContext:
    return k8s.V1SecurityContext(
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=read_only_root,
        capabilities=k8s.V1Capabilities(drop=["ALL"]),
        seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
    )
