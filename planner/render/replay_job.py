"""The replay Job: `planner replay` run inside the cluster against the plan's Services.

Two objects: a ConfigMap holding the endpoints file (each served model's Service,
`http://<service>.<namespace>.svc:80`, with the `model` name its vLLM servers expect)
and a Job running the planner image with

    planner replay TRACES --endpoints /replay/endpoints.yaml --rate R --duration S
        --warmup W --compare /plan/plan.yaml --json

The plan comes from the plan ConfigMap the manifests already hold; the traces from the
same place the re-planning CronJob reads them (a PersistentVolumeClaim mounted at
/traces, or an object-store URL with the CronJob's credentials Secret); with
`--api-key-secret` the Job gets the servers' key as VLLM_API_KEY. The result JSON is
the Job's log (`kubectl logs job/<name>`); feed it to `planner profile import`. The
Job's name carries the plan hash, so each plan gets its own replay and re-applying the
manifests never edits a finished Job.

Through a Service each /metrics scrape reaches one pod; with several replicas the
servers' metrics in the result are a sample, while the call timings cover every replica.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import yaml
from kubernetes import client as k8s

from planner.catalog import ModelSpec
from planner.render.common import (
    MANAGED_BY,
    MANAGER,
    PART_OF,
    PLAN_CONFIGMAP,
    container_security,
    metadata,
    pod_security,
)
from planner.render.control import TRACES_DIR
from planner.render.pods import API_KEY_KEY
from planner.render.settings import RenderOptions, ReplayJobSettings
from planner.render.workloads import service_name
from planner.types.names import ModelName

REPLAY_NAME = "planner-replay"
API_KEY_ENV = "VLLM_API_KEY"  # planner.io.replay_client reads the same variable
ENDPOINTS_KEY = "endpoints.yaml"
_SERVICE_PORT = 80  # the port every model Service exposes (render.workloads.model_service)
# Beyond the replay's own time (duration + drain): image pull, start and trace download.
_DEADLINE_SLACK_S = 600


def replay_endpoints(models: Sequence[ModelSpec], namespace: str) -> dict[str, object]:
    """The endpoints document for the plan's Services (what `planner replay` reads)."""
    return {
        "schema_version": 1,
        "endpoints": {
            m.name: {
                "urls": [f"http://{service_name(m.name)}.{namespace}.svc:{_SERVICE_PORT}"],
                "served_name": m.served_name,
            }
            for m in sorted(models, key=lambda m: m.name)
        },
    }


def replay_objects(
    served: Sequence[ModelName],
    models: Mapping[ModelName, ModelSpec],
    options: RenderOptions,
    settings: ReplayJobSettings,
    plan_hash: str,
) -> list[object]:
    """The endpoints ConfigMap and the replay Job for the models the plan serves."""
    name = f"{REPLAY_NAME}-{plan_hash}"
    doc = replay_endpoints([models[m] for m in served], options.namespace)
    config = k8s.V1ConfigMap(
        api_version="v1",
        kind="ConfigMap",
        metadata=metadata(name, options.namespace, plan_hash),
        data={ENDPOINTS_KEY: yaml.safe_dump(doc, sort_keys=True)},
    )
    return [config, _job(name, options, settings, plan_hash)]


def _job(
    name: str, options: RenderOptions, settings: ReplayJobSettings, plan_hash: str
) -> k8s.V1Job:
    traces = options.replan_traces_url or TRACES_DIR
    args = [
        "replay", traces,
        "--endpoints", f"/replay/{ENDPOINTS_KEY}",
        "--rate", f"{settings.rate_per_s:g}",
        "--duration", f"{settings.duration_s:g}",
        "--warmup", f"{settings.warmup_s:g}",
        "--drain", f"{settings.drain_s:g}",
        "--compare", "/plan/plan.yaml",
        "--json",
    ]  # fmt: skip
    mounts = [
        k8s.V1VolumeMount(name="tmp", mount_path="/tmp"),
        k8s.V1VolumeMount(name="plan", mount_path="/plan", read_only=True),
        k8s.V1VolumeMount(name="replay", mount_path="/replay", read_only=True),
    ]
    volumes = [
        k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource()),
        k8s.V1Volume(name="plan", config_map=k8s.V1ConfigMapVolumeSource(name=PLAN_CONFIGMAP)),
        k8s.V1Volume(name="replay", config_map=k8s.V1ConfigMapVolumeSource(name=name)),
    ]
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
    env = [k8s.V1EnvVar(name="HOME", value="/tmp")]
    if options.api_key_secret:
        env.append(
            k8s.V1EnvVar(
                name=API_KEY_ENV,  # the key the servers demand, read by the replay client
                value_from=k8s.V1EnvVarSource(
                    secret_key_ref=k8s.V1SecretKeySelector(
                        name=options.api_key_secret, key=API_KEY_KEY
                    )
                ),
            )
        )
    env_from = []
    if options.replan_credentials_secret:
        # Object-store credentials (AWS_ACCESS_KEY_ID, ...) by reference; none written here.
        env_from.append(
            k8s.V1EnvFromSource(
                secret_ref=k8s.V1SecretEnvSource(name=options.replan_credentials_secret)
            )
        )
    container = k8s.V1Container(
        name="replay",
        image=options.planner_image,
        command=["planner"],
        args=args,
        env=env,
        env_from=env_from or None,
        resources=k8s.V1ResourceRequirements(
            requests={"cpu": "2", "memory": "2Gi"}, limits={"memory": "4Gi"}
        ),
        security_context=container_security(read_only_root=True),
        volume_mounts=mounts,
    )
    pod = k8s.V1PodSpec(
        automount_service_account_token=False,  # it only talks to the model Services
        restart_policy="Never",
        containers=[container],
        security_context=pod_security(options.run_as_user),
        volumes=volumes,
    )
    deadline = int(settings.duration_s + settings.drain_s) + _DEADLINE_SLACK_S
    return k8s.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=metadata(name, options.namespace, plan_hash),
        spec=k8s.V1JobSpec(
            backoff_limit=0,  # a replay measures once; a retry would mix two runs
            active_deadline_seconds=deadline,
            ttl_seconds_after_finished=7 * 24 * 3600,  # keep the log (the result) a week
            template=k8s.V1PodTemplateSpec(
                metadata=k8s.V1ObjectMeta(
                    labels={
                        MANAGED_BY: MANAGER,
                        PART_OF: "planner",
                        "app.kubernetes.io/name": REPLAY_NAME,
                    }
                ),
                spec=pod,
            ),
        ),
    )
