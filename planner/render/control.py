"""The Namespace, the plan ConfigMap, the re-planning CronJob and its least-privilege RBAC.

`planner replan` reads the plan ConfigMap (plan, cluster, placement and render settings),
and applies and prunes only the model-serving objects (`Rendered.serving`) plus the
ConfigMap itself. It never touches its own CronJob or RBAC, so the Role cannot grant
itself more.

What RBAC cannot express: a Role grants a verb on every object of a resource type in the
namespace; it cannot say "only objects labelled managed-by=planner". `planner replan`
enforces that in the client: it lists with the label selector and prunes only labelled
objects that it rendered before (planner/apply.py). Run planner in its own namespace so
nothing else is within reach of the grant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kubernetes import client as k8s

from planner.render.common import (
    MANAGED_BY,
    MANAGER,
    PART_OF,
    PLAN_CONFIGMAP,
    REPLAN_NAME,
    base_labels,
    container_security,
    metadata,
    pod_security,
)
from planner.render.settings import RenderOptions, ReplanInputs

PLAN_KEY = "plan.yaml"
CLUSTER_KEY = "cluster.yaml"  # the cluster the plan was placed on, for `planner replan`
SETTINGS_KEY = "render.yaml"  # the render settings, so a re-plan renders the same way
MAPPING_KEY = "mapping.yaml"
INPUTS_CONFIGMAP = "planner-replan-inputs"  # the trace mapping the CronJob plans with
INPUTS_DIR = "/etc/planner"
TRACES_DIR = "/traces"
IMAGE_PROFILES_DIR = "/app/profiles"  # where the Dockerfile puts the stored profiles
_SERVING_VERBS = ["create", "delete", "get", "list", "patch"]

# apiVersion and plural resource of every kind `planner replan` may apply or prune.
RESOURCES: dict[str, tuple[str, str]] = {
    "Service": ("v1", "services"),
    "Deployment": ("apps/v1", "deployments"),
    "PodDisruptionBudget": ("policy/v1", "poddisruptionbudgets"),
    "HorizontalPodAutoscaler": ("autoscaling/v2", "horizontalpodautoscalers"),
    "LeaderWorkerSet": ("leaderworkerset.x-k8s.io/v1", "leaderworkersets"),
    "LLMInferenceService": ("serving.kserve.io/v1alpha2", "llminferenceservices"),
    "ScaledObject": ("keda.sh/v1alpha1", "scaledobjects"),
    "InferencePool": ("inference.networking.k8s.io/v1", "inferencepools"),
    "HTTPRoute": ("gateway.networking.k8s.io/v1", "httproutes"),
}


def namespace_object(options: RenderOptions, plan_hash: str) -> k8s.V1Namespace:
    return k8s.V1Namespace(
        api_version="v1",
        kind="Namespace",
        metadata=k8s.V1ObjectMeta(name=options.namespace, labels=base_labels(plan_hash)),
    )


def plan_configmap(
    files: Mapping[str, str], options: RenderOptions, plan_hash: str
) -> k8s.V1ConfigMap:
    return k8s.V1ConfigMap(
        api_version="v1",
        kind="ConfigMap",
        metadata=metadata(PLAN_CONFIGMAP, options.namespace, plan_hash),
        data=dict(sorted(files.items())),
    )


def replan_rules(serving_kinds: Iterable[str]) -> list[k8s.V1PolicyRule]:
    """Exactly what `planner replan` calls: read and patch the plan ConfigMap; apply,
    diff and prune the serving objects of the kinds this rendering produced."""
    by_group: dict[str, list[str]] = {}
    for kind in sorted(set(serving_kinds)):
        if kind == "ConfigMap":
            continue
        api, plural = RESOURCES[kind]
        group = api.rpartition("/")[0]
        by_group.setdefault(group, []).append(plural)
    rules = [
        # get/patch only this ConfigMap; `resourceNames` cannot restrict create or list.
        k8s.V1PolicyRule(
            api_groups=[""],
            resources=["configmaps"],
            resource_names=[PLAN_CONFIGMAP],
            verbs=["get", "patch"],
        )
    ]
    # Server-side apply is a patch, and a create when the object is new; list finds
    # planner-labelled objects to prune, delete prunes them.
    for group, plurals in sorted(by_group.items()):
        rules.append(
            k8s.V1PolicyRule(
                api_groups=[group], resources=sorted(plurals), verbs=list(_SERVING_VERBS)
            )
        )
    return rules


def replan_args(inputs: ReplanInputs, options: RenderOptions) -> list[str]:
    """The CronJob's `planner replan` arguments, generated from the planning request."""
    traces = options.replan_traces_url or TRACES_DIR
    args = [
        "replan",
        "--traces",
        traces,
        "--window",
        options.replan_window,
        "--namespace",
        options.namespace,
        "--profiles",
        IMAGE_PROFILES_DIR,
        *inputs.planning_flags,
    ]
    if inputs.mapping_text:
        args += ["--mapping", f"{INPUTS_DIR}/{MAPPING_KEY}"]
    return args


def replan_objects(
    options: RenderOptions,
    inputs: ReplanInputs,
    serving_kinds: Iterable[str],
    plan_hash: str,
) -> list[object]:
    """ServiceAccount, Role, RoleBinding, the inputs ConfigMap (if any) and the CronJob."""
    ns = options.namespace
    sa = k8s.V1ServiceAccount(
        api_version="v1",
        kind="ServiceAccount",
        metadata=metadata(REPLAN_NAME, ns, plan_hash),
        automount_service_account_token=False,  # mounted explicitly by the Job's pod only
    )
    role = k8s.V1Role(
        api_version="rbac.authorization.k8s.io/v1",
        kind="Role",
        metadata=metadata(REPLAN_NAME, ns, plan_hash),
        rules=replan_rules(serving_kinds),
    )
    binding = k8s.V1RoleBinding(
        api_version="rbac.authorization.k8s.io/v1",
        kind="RoleBinding",
        metadata=metadata(REPLAN_NAME, ns, plan_hash),
        role_ref=k8s.V1RoleRef(
            api_group="rbac.authorization.k8s.io", kind="Role", name=REPLAN_NAME
        ),
        subjects=[k8s.RbacV1Subject(kind="ServiceAccount", name=REPLAN_NAME, namespace=ns)],
    )
    out: list[object] = [sa, role, binding]
    if inputs.mapping_text:
        out.append(
            k8s.V1ConfigMap(
                api_version="v1",
                kind="ConfigMap",
                metadata=metadata(INPUTS_CONFIGMAP, ns, plan_hash),
                data={MAPPING_KEY: inputs.mapping_text},
            )
        )
    out.append(_cronjob(options, inputs, plan_hash))
    return out


def _cronjob(options: RenderOptions, inputs: ReplanInputs, plan_hash: str) -> k8s.V1CronJob:
    mounts = [k8s.V1VolumeMount(name="tmp", mount_path="/tmp")]
    volumes = [k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource())]
    if options.replan_traces_claim and not options.replan_traces_url:
        mounts.append(k8s.V1VolumeMount(name="traces", mount_path=TRACES_DIR, read_only=True))
        volumes.append(
            k8s.V1Volume(
                name="traces",
                persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
                    claim_name=options.replan_traces_claim, read_only=True
                ),
            )
        )
    if inputs.mapping_text:
        mounts.append(k8s.V1VolumeMount(name="inputs", mount_path=INPUTS_DIR, read_only=True))
        volumes.append(
            k8s.V1Volume(
                name="inputs", config_map=k8s.V1ConfigMapVolumeSource(name=INPUTS_CONFIGMAP)
            )
        )
    env_from = None
    if options.replan_credentials_secret:
        # Object-store credentials (AWS_ACCESS_KEY_ID, ...) by reference; none written here.
        env_from = [
            k8s.V1EnvFromSource(
                secret_ref=k8s.V1SecretEnvSource(name=options.replan_credentials_secret)
            )
        ]
    container = k8s.V1Container(
        name="replan",
        image=options.planner_image,
        command=["planner"],
        args=replan_args(inputs, options),
        env=[k8s.V1EnvVar(name="HOME", value="/tmp")],
        env_from=env_from,
        resources=k8s.V1ResourceRequirements(
            requests={"cpu": "1", "memory": "2Gi"}, limits={"memory": "4Gi"}
        ),
        security_context=container_security(read_only_root=True),
        volume_mounts=mounts,
    )
    pod = k8s.V1PodSpec(
        service_account_name=REPLAN_NAME,
        automount_service_account_token=True,
        restart_policy="Never",
        containers=[container],
        security_context=pod_security(options.run_as_user),
        volumes=volumes,
    )
    return k8s.V1CronJob(
        api_version="batch/v1",
        kind="CronJob",
        metadata=metadata(REPLAN_NAME, options.namespace, plan_hash),
        spec=k8s.V1CronJobSpec(
            schedule=options.replan_schedule,
            concurrency_policy="Forbid",  # two re-plans must never apply at once
            starting_deadline_seconds=600,
            successful_jobs_history_limit=3,
            failed_jobs_history_limit=3,
            job_template=k8s.V1JobTemplateSpec(
                spec=k8s.V1JobSpec(
                    backoff_limit=0,  # the next scheduled run retries with fresher traces
                    active_deadline_seconds=1800,
                    template=k8s.V1PodTemplateSpec(
                        metadata=k8s.V1ObjectMeta(
                            labels={
                                MANAGED_BY: MANAGER,
                                PART_OF: "planner",
                                "app.kubernetes.io/name": REPLAN_NAME,
                            }
                        ),
                        spec=pod,
                    ),
                )
            ),
        ),
    )


def network_policy(options: RenderOptions, plan_hash: str) -> k8s.V1NetworkPolicy:
    """Only pods of this namespace (and of the Gateway's) reach the vLLM servers."""
    sources = [k8s.V1NetworkPolicyPeer(pod_selector=k8s.V1LabelSelector())]
    if options.gateway and options.gateway_namespace:
        sources.append(
            k8s.V1NetworkPolicyPeer(
                namespace_selector=k8s.V1LabelSelector(
                    match_labels={"kubernetes.io/metadata.name": options.gateway_namespace}
                )
            )
        )
    return k8s.V1NetworkPolicy(
        api_version="networking.k8s.io/v1",
        kind="NetworkPolicy",
        metadata=metadata("planner-vllm-ingress", options.namespace, plan_hash),
        spec=k8s.V1NetworkPolicySpec(
            pod_selector=k8s.V1LabelSelector(
                match_labels={MANAGED_BY: MANAGER, "app.kubernetes.io/name": "vllm"}
            ),
            policy_types=["Ingress"],
            ingress=[k8s.V1NetworkPolicyIngressRule(_from=sources)],
        ),
    )
