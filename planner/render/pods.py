"""The vLLM pod of a serving group: command, ports, probes, resources, volumes, placement.

Every pod carries `serves.planner.dev/<model>: "true"` for each model it serves and names
the model's container port `port_name(model)`, so one Service per model reaches all of its
replicas. Pods sharing a GPU start their servers one after another and are ready only
when every server answers.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from kubernetes import client as k8s

from planner.catalog import GpuSpec
from planner.render.common import (
    DEPLOYMENT_LABEL,
    MANAGED_BY,
    MANAGER,
    PART_OF,
    SERVES_PREFIX,
    container_security,
    dns_name,
    pod_security,
    port_name,
)
from planner.render.groups import Server, ServingGroup
from planner.render.settings import RenderOptions
from planner.types.cluster import NodePool
from planner.types.names import GpuType

HEALTH_PATH = "/health"  # vLLM's OpenAI server answers 200 once the engine is up
CACHE_DIR = "/cache"  # writable HOME and HF cache for a non-root user
API_KEY_KEY = "api-key"  # key of the API-key Secret


def pod_labels(group: ServingGroup, serves: bool = True) -> dict[str, str]:
    labels = {
        MANAGED_BY: MANAGER,
        PART_OF: "planner",
        DEPLOYMENT_LABEL: group.name,
        "app.kubernetes.io/name": "vllm",
    }
    if serves:
        for s in group.servers:
            labels[SERVES_PREFIX + dns_name(s.model.name)] = "true"
    return labels


def pod_template(
    group: ServingGroup,
    gpus: Mapping[GpuType, GpuSpec],
    options: RenderOptions,
    command: Sequence[str] | None = None,
    worker: bool = False,
    container_name: str = "vllm",
) -> k8s.V1PodTemplateSpec:
    """The pod of `group`. A multi-node group's leader and workers pass their `command`;
    a worker (`worker=True`) serves no HTTP: no ports, probes or `serves` labels, so no
    Service or InferencePool ever picks it."""
    servers = group.servers
    indices = sorted({i for r in group.replicas for i in r.gpu_indices})
    annotations = {
        "planner.dev/nodes": ",".join(group.nodes),
        "planner.dev/gpu-indices": ",".join(str(i) for i in indices),
        "planner.dev/models": ",".join(s.model.name for s in servers),
    }
    if command is None:
        command = (
            ["/bin/bash", "-c", launcher(servers)] if len(servers) > 1 else serve_args(servers[0])
        )
    ports = [
        k8s.V1ContainerPort(name=port_name(s.model.name), container_port=s.port, protocol="TCP")
        for s in servers
    ]
    container = k8s.V1Container(
        name=container_name,
        image=options.vllm_image,
        # Explicit command: the image's entrypoint differs between vLLM releases.
        command=list(command),
        ports=None if worker else ports,
        env=_env(group, options),
        resources=_resources(group, options),
        # Root filesystem stays writable: vLLM's kernel JITs (Triton, FlashInfer,
        # torch.compile) write caches to paths not all under HOME.
        security_context=container_security(),
        volume_mounts=[
            k8s.V1VolumeMount(name="cache", mount_path=CACHE_DIR),
            k8s.V1VolumeMount(name="shm", mount_path="/dev/shm"),
        ],
    )
    if not worker:
        # Startup allows 30 min for weight download and CUDA graph capture; readiness and
        # liveness then cover every server of the pod.
        container.startup_probe = _http_probe(servers[-1], period=10, failures=180)
        container.readiness_probe = _all_servers_probe(servers, period=10)
        container.liveness_probe = _all_servers_probe(servers, period=30)
    return k8s.V1PodTemplateSpec(
        metadata=k8s.V1ObjectMeta(labels=pod_labels(group, not worker), annotations=annotations),
        spec=k8s.V1PodSpec(
            containers=[container],
            affinity=node_affinity(group.pool, group.nodes, gpus),
            tolerations=[
                k8s.V1Toleration(
                    key=options.gpu_toleration_key, operator="Exists", effect="NoSchedule"
                )
            ],
            automount_service_account_token=False,
            enable_service_links=False,
            security_context=pod_security(options.run_as_user),
            termination_grace_period_seconds=60,
            volumes=[_cache_volume(options), _shm_volume(group, options)],
        ),
    )


def serve_args(server: Server, extra: Sequence[str] = ()) -> list[str]:
    m = server.model
    parallel = ["--tensor-parallel-size", str(server.tp)]
    if server.pipeline_parallel > 1:
        parallel += ["--pipeline-parallel-size", str(server.pipeline_parallel)]
    if server.data_parallel > 1:
        # Data-parallel attention: one API server front-ends the ranks (vLLM balances
        # requests over them); each rank is an engine with its own KV cache.
        parallel += ["--data-parallel-size", str(server.data_parallel)]
    if server.expert_parallel:
        parallel.append("--enable-expert-parallel")
    return [
        "vllm",
        "serve",
        m.hf_id,
        "--served-model-name",
        m.served_name,
        "--host",
        "0.0.0.0",
        "--port",
        str(server.port),
        *parallel,
        "--gpu-memory-utilization",
        f"{server.memory_utilization:g}",
        # vLLM's default, stated so the manifest carries the plan's assumption.
        *(["--enable-prefix-caching"] if server.prefix_caching else []),
        *extra,
        *m.vllm_args,
    ]


def launcher(servers: Sequence[Server]) -> str:
    """Bash that starts each server after the previous one is healthy, then supervises.

    If any server exits, the script exits non-zero so the kubelet restarts the container.
    """
    lines = [
        "set -euo pipefail",
        "ready() { python3 -c 'import sys, urllib.request; "
        f'urllib.request.urlopen("http://127.0.0.1:" + sys.argv[1] + "{HEALTH_PATH}", '
        'timeout=5)\' "$1" >/dev/null 2>&1; }',
    ]
    for s in servers:
        lines.append(f"{shlex.join(serve_args(s))} &")
        lines.append(f"pid=$!; until ready {s.port}; do kill -0 $pid || exit 1; sleep 5; done")
    lines.append("wait -n; exit 1")
    return "\n".join(lines) + "\n"


def _resources(group: ServingGroup, options: RenderOptions) -> k8s.V1ResourceRequirements:
    g = group.gpus_per_pod
    # The memory-backed /dev/shm is charged to the container: the limit includes it.
    memory = f"{(options.memory_per_gpu_gib + options.shm_per_gpu_gib) * g}Gi"
    limits = {"nvidia.com/gpu": str(g), "memory": memory, **dict(group.extra_limits)}
    requests = {"cpu": _times(options.cpu_per_gpu, g), "memory": memory}
    return k8s.V1ResourceRequirements(limits=limits, requests=requests)


def _env(group: ServingGroup, options: RenderOptions) -> list[k8s.V1EnvVar]:
    env = [
        k8s.V1EnvVar(name="HOME", value=CACHE_DIR),
        k8s.V1EnvVar(name="HF_HOME", value=f"{CACHE_DIR}/huggingface"),
    ]
    if options.hf_token_secret:
        env.append(
            k8s.V1EnvVar(
                name="HF_TOKEN",
                value_from=k8s.V1EnvVarSource(
                    secret_key_ref=k8s.V1SecretKeySelector(
                        name=options.hf_token_secret,
                        key=options.hf_token_key,
                        # A gated model cannot start without it: fail the pod visibly.
                        optional=not any(s.model.gated for s in group.servers),
                    )
                ),
            )
        )
    if options.api_key_secret:
        env.append(
            k8s.V1EnvVar(
                name="VLLM_API_KEY",  # vLLM's OpenAI server then requires `Authorization: Bearer`
                value_from=k8s.V1EnvVarSource(
                    secret_key_ref=k8s.V1SecretKeySelector(
                        name=options.api_key_secret, key=API_KEY_KEY
                    )
                ),
            )
        )
    return env


def _cache_volume(options: RenderOptions) -> k8s.V1Volume:
    if options.model_cache_claim:
        return k8s.V1Volume(
            name="cache",
            persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
                claim_name=options.model_cache_claim
            ),
        )
    if options.model_cache_host_path:
        return k8s.V1Volume(
            name="cache",
            host_path=k8s.V1HostPathVolumeSource(
                path=options.model_cache_host_path, type="DirectoryOrCreate"
            ),
        )
    return k8s.V1Volume(name="cache", empty_dir=k8s.V1EmptyDirVolumeSource())


def _shm_volume(group: ServingGroup, options: RenderOptions) -> k8s.V1Volume:
    size = f"{options.shm_per_gpu_gib * group.gpus_per_pod}Gi"
    return k8s.V1Volume(
        name="shm", empty_dir=k8s.V1EmptyDirVolumeSource(medium="Memory", size_limit=size)
    )


def _all_servers_probe(servers: Sequence[Server], period: int) -> k8s.V1Probe:
    """One server: its /health over HTTP. Several: every server's /health, so a pod whose
    second server is down (or hung) is not ready, and is restarted."""
    if len(servers) == 1:
        return _http_probe(servers[0], period=period, failures=3)
    ports = ",".join(str(s.port) for s in servers)
    check = (
        "import urllib.request\n"
        f"for port in ({ports},):\n"
        f'    urllib.request.urlopen(f"http://127.0.0.1:{{port}}{HEALTH_PATH}", timeout=4)\n'
    )
    return k8s.V1Probe(
        _exec=k8s.V1ExecAction(command=["python3", "-c", check]),
        period_seconds=period,
        failure_threshold=3,
        timeout_seconds=10,
    )


def _http_probe(server: Server, period: int, failures: int) -> k8s.V1Probe:
    return k8s.V1Probe(
        http_get=k8s.V1HTTPGetAction(path=HEALTH_PATH, port=port_name(server.model.name)),
        period_seconds=period,
        failure_threshold=failures,
        timeout_seconds=5,
    )


def node_affinity(
    pool: NodePool,
    nodes: Sequence[str],
    gpus: Mapping[GpuType, GpuSpec],
) -> k8s.V1Affinity:
    """Pin to the placed nodes when the cluster names its nodes, else to the pool's nodes."""
    if pool.node_names:
        exprs = [
            k8s.V1NodeSelectorRequirement(
                key="kubernetes.io/hostname", operator="In", values=sorted(nodes)
            )
        ]
    elif pool.labels:
        exprs = [
            k8s.V1NodeSelectorRequirement(key=key, operator="In", values=[value])
            for key, value in sorted(pool.labels.items())
        ]
    else:
        products = gpus[pool.gpu_type].product_labels if pool.gpu_type in gpus else ()
        exprs = [
            k8s.V1NodeSelectorRequirement(
                key="nvidia.com/gpu.product",
                operator="In",
                values=sorted(products) or [pool.gpu_type],
            )
        ]
    return k8s.V1Affinity(
        node_affinity=k8s.V1NodeAffinity(
            required_during_scheduling_ignored_during_execution=k8s.V1NodeSelector(
                node_selector_terms=[k8s.V1NodeSelectorTerm(match_expressions=exprs)]
            )
        )
    )


def _times(quantity: str, n: int) -> str:
    """'4' * 2 -> '8' (integer quantities with an optional suffix)."""
    digits = quantity.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return f"{int(digits) * n}{quantity[len(digits) :]}"
