"""Names, labels and security settings shared by every rendered object."""

from __future__ import annotations

import hashlib
import re

from kubernetes import client as k8s

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "planner"
PART_OF = "app.kubernetes.io/part-of"
PLAN_HASH = "planner.dev/plan-hash"
DEPLOYMENT_LABEL = "planner.dev/deployment"
SERVES_PREFIX = "serves.planner.dev/"  # `serves.planner.dev/<model>: "true"` on pods
PLAN_CONFIGMAP = "planner-plan"
REPLAN_NAME = "planner-replan"

# Kubernetes names and label values: at most 63 characters of [a-z0-9-].
_MAX_NAME = 63


def short_hash(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def dns_name(*parts: str, limit: int = _MAX_NAME) -> str:
    """A DNS-1123 label from `parts`; a name too long keeps a hash suffix to stay unique."""
    raw = "-".join(parts).lower()
    name = re.sub(r"[^a-z0-9-]+", "-", raw)
    name = re.sub(r"-{2,}", "-", name).strip("-") or "x"
    if len(name) <= limit:
        return name
    return f"{name[: limit - 9].rstrip('-')}-{short_hash(raw)}"


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
