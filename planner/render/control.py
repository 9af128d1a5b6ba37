"""The plan ConfigMap and the re-planning CronJob with its least-privilege RBAC.

`planner replan` reads the plan ConfigMap, and applies and prunes only the model-serving
objects (Deployments, Services) plus the ConfigMap itself. It never touches its own
CronJob or RBAC, so the Role cannot grant itself more.
"""

from __future__ import annotations

from collections.abc import Mapping

from kubernetes import client as k8s

from planner.render.common import (
    MANAGED_BY,
    MANAGER,
    PART_OF,
    PLAN_CONFIGMAP,
    REPLAN_NAME,
    container_security,
    metadata,
    pod_security,
)
from planner.render.settings import RenderOptions

PLAN_KEY = "plan.yaml"
CLUSTER_KEY = "cluster.yaml"  # the cluster the plan was placed on, for `planner replan`
_SERVING_VERBS = ["create", "delete", "get", "list", "patch"]


def plan_configmap(
    files: Mapping[str, str], options: RenderOptions, plan_hash: str
) -> k8s.V1ConfigMap:
    return k8s.V1ConfigMap(
        api_version="v1",
        kind="ConfigMap",
        metadata=metadata(PLAN_CONFIGMAP, options.namespace, plan_hash),
        data=dict(sorted(files.items())),
    )


def replan_rules() -> list[k8s.V1PolicyRule]:
    """Exactly what `planner replan` calls: read and patch the plan ConfigMap; apply,
    diff and prune the serving Deployments and Services in this namespace."""
    return [
        # get/patch only this ConfigMap; `resourceNames` cannot restrict create or list.
        k8s.V1PolicyRule(
            api_groups=[""],
            resources=["configmaps"],
            resource_names=[PLAN_CONFIGMAP],
            verbs=["get", "patch"],
        ),
        # Server-side apply is a patch, and a create when the object is new; list finds
        # planner-labelled objects to prune, delete prunes them.
        k8s.V1PolicyRule(api_groups=[""], resources=["services"], verbs=list(_SERVING_VERBS)),
        k8s.V1PolicyRule(
            api_groups=["apps"], resources=["deployments"], verbs=list(_SERVING_VERBS)
        ),
    ]


def replan_objects(options: RenderOptions, plan_hash: str) -> list[object]:
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
        rules=replan_rules(),
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
    return [sa, role, binding, _cronjob(options, plan_hash)]


def _cronjob(options: RenderOptions, plan_hash: str) -> k8s.V1CronJob:
    args = [
        "replan",
        "--traces",
        options.replan_traces,
        "--window",
        options.replan_window,
        "--namespace",
        options.namespace,
        "--sharing",
        options.sharing,
        "--vllm-image",
        options.vllm_image,
        *options.replan_args,
    ]
    mounts = [k8s.V1VolumeMount(name="tmp", mount_path="/tmp")]
    volumes = [k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource())]
    if options.replan_traces_claim:
        mounts.append(k8s.V1VolumeMount(name="traces", mount_path="/traces", read_only=True))
        volumes.append(
            k8s.V1Volume(
                name="traces",
                persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
                    claim_name=options.replan_traces_claim, read_only=True
                ),
            )
        )
    container = k8s.V1Container(
        name="replan",
        image=options.planner_image,
        command=["planner"],
        args=args,
        env=[k8s.V1EnvVar(name="HOME", value="/tmp")],
        # Object-store credentials (AWS_ACCESS_KEY_ID, ...) come from an optional Secret
        # the user creates; none are written here.
        env_from=[
            k8s.V1EnvFromSource(
                secret_ref=k8s.V1SecretEnvSource(name=f"{REPLAN_NAME}-env", optional=True)
            )
        ],
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
