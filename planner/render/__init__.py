"""Render: Placement -> typed Kubernetes objects (the `kubernetes.client` V1 models).

Pure: no files, no cluster. `planner.io.manifests` serialises and writes the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from planner.catalog import GpuSpec, ModelSpec
from planner.errors import ProfileError, did_you_mean
from planner.place import Placement
from planner.render.common import short_hash
from planner.render.control import CLUSTER_KEY, PLAN_KEY, plan_configmap, replan_objects
from planner.render.replay_job import replay_objects
from planner.render.settings import SHARING_BACKENDS, RenderOptions, Sharing
from planner.render.workloads import model_deployments, model_service
from planner.types.cluster import Cluster
from planner.types.names import GpuType, ModelName

__all__ = [
    "CLUSTER_KEY",
    "PLAN_KEY",
    "SHARING_BACKENDS",
    "RenderOptions",
    "Rendered",
    "Sharing",
    "plan_hash",
    "render_manifests",
]


@dataclass(frozen=True)
class Rendered:
    """The objects of one plan, in a fixed order. `serving` is what `replan` applies."""

    plan_hash: str
    serving: tuple[object, ...]  # ConfigMap, Services, Deployments
    control: tuple[object, ...]  # replan CronJob, ServiceAccount, Role, RoleBinding
    replay: tuple[object, ...] = ()  # replay Job and its endpoints ConfigMap (optional)

    @property
    def objects(self) -> tuple[object, ...]:
        return self.serving + self.control + self.replay


def plan_hash(plan_text: str, extra_files: Mapping[str, str] | None = None) -> str:
    """The label value identifying a plan: 12 hex digits of the SHA-256 of the plan text
    (and of the other files stored with it, in name order)."""
    text = plan_text + "".join(f"\0{k}\0{v}" for k, v in sorted((extra_files or {}).items()))
    return short_hash(text, 12)


def render_manifests(
    placement: Placement,
    cluster: Cluster,
    models: Mapping[ModelName, ModelSpec],
    plan_text: str,
    options: RenderOptions,
    gpus: Mapping[GpuType, GpuSpec] | None = None,
    extra_files: Mapping[str, str] | None = None,
) -> Rendered:
    """Build every object for a placed plan.

    Args:
        placement: where each replica runs.
        cluster: the cluster it was placed on (pool labels and node names pin pods).
        models: the catalog's model specs (served name, HF id, vLLM args).
        plan_text: the plan document stored in the ConfigMap (and hashed into labels).
        options: namespace, images, sharing backend, replan schedule.
        gpus: GPU specs, for `nvidia.com/gpu.product` affinity on unnamed pools.
        extra_files: more files for the plan ConfigMap (e.g. `cluster.yaml`).

    Raises:
        ProfileError: the placement names a model the catalog lacks.
    """
    for name in sorted({r.model for r in placement.replicas}):
        if name not in models:
            raise ProfileError(
                f"model '{name}' of the plan is not in the catalog{did_you_mean(name, models)}; "
                "add configs/models/<name>.yaml"
            )
    digest = plan_hash(plan_text, extra_files)
    served = sorted({r.model for r in placement.replicas})
    services = [model_service(models[m], options, digest) for m in served]
    deployments = model_deployments(placement, cluster, models, gpus or {}, options, digest)
    files = {**(extra_files or {}), PLAN_KEY: plan_text}
    serving: list[object] = [plan_configmap(files, options, digest), *services, *deployments]
    replay: list[object] = []
    if options.replay_job is not None:
        replay = replay_objects(served, models, options, options.replay_job, digest)
    return Rendered(digest, tuple(serving), tuple(replan_objects(options, digest)), tuple(replay))
