"""Every Kubernetes object of one placed plan, in a fixed order (the render stage's entry).

Typed `kubernetes.client` V1 models, and plain dicts for custom resources
(LeaderWorkerSet, LLMInferenceService, InferencePool, HTTPRoute, ScaledObject).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from planner.catalog import GpuSpec, ModelSpec
from planner.errors import InputError, ProfileError, did_you_mean
from planner.place import Placement
from planner.render.autoscale import autoscalers
from planner.render.control import (
    PLAN_KEY,
    namespace_object,
    network_policy,
    plan_configmap,
    replan_objects,
)
from planner.render.gateway import gateway_objects, gateway_shared
from planner.render.groups import ServingGroup, model_ports, serving_groups, with_prefix_caching
from planner.render.kserve import inference_service
from planner.render.lws import leader_worker_set
from planner.render.replay_job import replay_objects
from planner.render.settings import RenderOptions, ReplanInputs, check_options
from planner.render.workloads import disruption_budget, group_deployment, model_service
from planner.types.cluster import Cluster
from planner.types.names import GpuType, ModelName, short_hash
from planner.types.plan import Routing


@dataclass(frozen=True)
class Rendered:
    """The objects of one plan. `serving` is what `replan` applies and prunes; `control`
    (Namespace, CronJob, RBAC, picker config, NetworkPolicy) is applied by the user."""

    plan_hash: str
    serving: tuple[object, ...]  # plan ConfigMap, Services, workloads, budgets, routing
    control: tuple[object, ...]
    replay: tuple[object, ...] = ()  # the replay Job and its endpoints ConfigMap (optional)

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
    replan: ReplanInputs | None = None,
    caching: Mapping[ModelName, Routing] | None = None,
) -> Rendered:
    """Build every object for a placed plan.

    Args:
        placement: where each replica runs.
        cluster: the cluster it was placed on (pool labels and node names pin pods).
        models: the catalog's model specs (served name, HF id, vLLM args, gated).
        plan_text: the plan document stored in the ConfigMap (and hashed into labels).
        options: target stack, routing, autoscaler, images, pod hardening, CronJob.
        gpus: GPU specs, for `nvidia.com/gpu.product` affinity on unnamed pools.
        extra_files: more files for the plan ConfigMap (cluster, placement, settings).
        replan: what the CronJob plans toward (default: the default planning request).
        caching: the models whose plan predicts prefix-cache hits, with their routing:
            served with `--enable-prefix-caching`; `session` routing gives the model's
            Service sessionAffinity ClientIP (a gateway's routing is set by its own flags).

    Raises:
        ProfileError: the placement names a model the catalog lacks.
        InputError: a gated model without a Hugging Face token Secret, or settings that
            contradict each other.
    """
    check_options(options)
    served = sorted({r.model for r in placement.replicas})
    for name in served:
        if name not in models:
            raise ProfileError(
                f"model '{name}' of the plan is not in the catalog{did_you_mean(name, models)}; "
                "add configs/models/<name>.yaml"
            )
    gated = [m for m in served if models[m].gated]
    if gated and not options.hf_token_secret:
        raise InputError(
            f"{', '.join(gated)}: gated on Hugging Face (catalog gated: true); give "
            f"--hf-token-secret NAME, a Secret in namespace {options.namespace} whose key "
            f"'{options.hf_token_key}' holds a token of an account that accepted the licence"
        )
    gpus = gpus or {}
    digest = plan_hash(plan_text, extra_files)
    cached = dict(caching or {})
    groups = with_prefix_caching(
        serving_groups(placement, cluster, models, options), frozenset(cached)
    )
    ports = model_ports(placement, options)
    workloads, scaled = _workloads(groups, gpus, placement, options, digest)
    services = [
        model_service(models[m], options, digest, cached.get(m) == "session") for m in served
    ]
    files = {**(extra_files or {}), PLAN_KEY: plan_text}
    serving: list[object] = [plan_configmap(files, options, digest), *services, *workloads]
    serving += [disruption_budget(g, options, digest) for g in groups]
    serving += autoscalers(scaled, placement, options, digest)
    if options.gateway:
        serving += gateway_objects([models[m] for m in served], ports, options, digest)
    control: list[object] = []
    if options.create_namespace:
        control.append(namespace_object(options, digest))
    if options.gateway:
        control += gateway_shared(options, digest)
    if options.network_policy:
        control.append(network_policy(options, digest))
    if options.replans:
        kinds = {_kind(o) for o in serving}
        control += replan_objects(options, replan or ReplanInputs(), kinds, digest)
    replay: list[object] = []
    if options.replay_job is not None:
        replay = replay_objects(served, models, options, options.replay_job, digest)
    return Rendered(digest, tuple(serving), tuple(control), tuple(replay))


def _workloads(
    groups: list[ServingGroup],
    gpus: Mapping[GpuType, GpuSpec],
    placement: Placement,
    options: RenderOptions,
    digest: str,
) -> tuple[list[object], list[tuple[ServingGroup, str]]]:
    """Each group's workload object, and the (group, kind) pairs an HPA/KEDA may scale."""
    out: list[object] = []
    scaled: list[tuple[ServingGroup, str]] = []
    for g in groups:
        # An autoscaler owns the replica count (its minimum is the planned count).
        count = None if options.autoscaler != "none" else len(g.replicas)
        if options.target == "kserve" and g.kind != "shared":
            out.append(inference_service(g, gpus, placement, options, digest))
            continue  # KServe's own `scaling` field carries the bounds
        if options.target == "lws" or g.multi_node:
            out.append(leader_worker_set(g, gpus, options, digest, count))
            scaled.append((g, "LeaderWorkerSet"))
        else:
            out.append(group_deployment(g, gpus, options, digest, count))
            scaled.append((g, "Deployment"))
    return out, scaled


def _kind(obj: object) -> str:
    return str(obj["kind"] if isinstance(obj, dict) else getattr(obj, "kind", ""))
