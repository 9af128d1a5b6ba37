"""vLLM Deployments and per-model Services from a Placement.

Replica groups:
- whole GPUs (TP >= 1): replicas of one allocation on one node form a Deployment whose
  pods request `nvidia.com/gpu: TP`.
- shares with `--sharing process`: every shared GPU is one Deployment whose single pod
  requests one GPU and starts its co-located vLLM servers one after another (concurrent
  starts mis-size each other's KV cache), each with its own port and memory share.
- shares with `--sharing hami`: replicas of one allocation on one node form a Deployment
  whose pods request a HAMi slice (`nvidia.com/gpumem-percentage`, `nvidia.com/gpucores`).

Every pod carries `serves.planner.dev/<model>: "true"` for each model it serves and names
the model's container port `port_name(model)`, so one Service per model reaches all of its
replicas whatever port they listen on.
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kubernetes import client as k8s

from planner.catalog import GpuSpec, ModelSpec
from planner.defaults import UNITS_PER_GPU
from planner.place import Placement, ReplicaPlacement
from planner.render.common import (
    DEPLOYMENT_LABEL,
    MANAGED_BY,
    MANAGER,
    PART_OF,
    SERVES_PREFIX,
    container_security,
    dns_name,
    metadata,
    pod_security,
    port_name,
)
from planner.render.settings import RenderOptions
from planner.types.cluster import Cluster, NodePool
from planner.types.names import GpuType, ModelName

HEALTH_PATH = "/health"  # vLLM's OpenAI server answers 200 once the engine is up
CACHE_DIR = "/cache"  # writable HOME and HF cache for a non-root user


@dataclass(frozen=True)
class _Server:
    """One `vllm serve` process inside a pod."""

    model: ModelSpec
    tp: int
    memory_utilization: float
    port: int


def service_name(model: ModelName) -> str:
    """A DNS-1035 label (Service names must start with a letter)."""
    name = dns_name(model)
    return name if name[0].isalpha() else dns_name("m", model)


def model_service(model: ModelSpec, options: RenderOptions, plan_hash: str) -> k8s.V1Service:
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
        ),
    )


def model_deployments(
    placement: Placement,
    cluster: Cluster,
    models: Mapping[ModelName, ModelSpec],
    gpus: Mapping[GpuType, GpuSpec],
    options: RenderOptions,
    plan_hash: str,
) -> list[k8s.V1Deployment]:
    pools = {p.name: p for p in cluster.pools}
    out: list[k8s.V1Deployment] = []
    whole: dict[tuple[str, str, int, str], list[ReplicaPlacement]] = defaultdict(list)
    shared_gpu: dict[tuple[str, int], list[ReplicaPlacement]] = defaultdict(list)
    sliced: dict[tuple[str, int, str], list[ReplicaPlacement]] = defaultdict(list)
    for r in placement.replicas:
        if r.share_eighths == UNITS_PER_GPU:
            whole[(r.model, r.gpu_type, r.tp, r.node)].append(r)
        elif options.sharing == "process":
            shared_gpu[(r.node, r.gpu_indices[0])].append(r)
        else:
            sliced[(r.model, r.share_eighths, r.node)].append(r)

    for (model, _gpu_type, tp, node), reps in sorted(whole.items()):
        server = _Server(models[model], tp, options.memory_utilization, options.port)
        name = dns_name(model, f"tp{tp}", node)
        out.append(
            _deployment(name, reps, [server], pools[reps[0].pool], gpus, options, plan_hash, tp)
        )
    for (node, index), reps in sorted(shared_gpu.items()):
        # Shares of one model on one GPU run as one server with their summed share: one
        # port per model keeps the Service simple, and one larger KV cache serves at least
        # as well as two halves.
        share: dict[ModelName, int] = defaultdict(int)  # eighths
        for r in reps:
            share[r.model] += r.share_eighths
        # Largest share starts first: it profiles memory while the GPU is emptiest.
        ordered = sorted(share.items(), key=lambda kv: (-kv[1], kv[0]))
        servers = [
            _Server(
                models[model],
                1,
                round(eighths / UNITS_PER_GPU * options.memory_utilization, 4),
                options.port + i,
            )
            for i, (model, eighths) in enumerate(ordered)
        ]
        name = dns_name("shared", node, f"gpu{index}")
        out.append(
            _deployment(name, [reps[0]], servers, pools[reps[0].pool], gpus, options, plan_hash, 1)
        )
    for (model, eighths, node), reps in sorted(sliced.items()):
        # HAMi shows the slice as the whole device, so vLLM keeps its usual utilisation.
        server = _Server(models[model], 1, options.memory_utilization, options.port)
        percent = max(1, round(eighths * 100 / UNITS_PER_GPU))
        name = dns_name(model, f"{percent}pct", node)
        extra = {
            "nvidia.com/gpumem-percentage": str(percent),
            "nvidia.com/gpucores": str(percent),
        }
        out.append(
            _deployment(
                name, reps, [server], pools[reps[0].pool], gpus, options, plan_hash, 1, extra
            )
        )
    return out


def _deployment(
    name: str,
    replicas: Sequence[ReplicaPlacement],
    servers: Sequence[_Server],
    pool: NodePool,
    gpus: Mapping[GpuType, GpuSpec],
    options: RenderOptions,
    plan_hash: str,
    gpu_count: int,
    extra_limits: Mapping[str, str] | None = None,
) -> k8s.V1Deployment:
    node = replicas[0].node
    pod_labels = {
        MANAGED_BY: MANAGER,
        PART_OF: "planner",
        DEPLOYMENT_LABEL: name,
        "app.kubernetes.io/name": "vllm",
    }
    for s in servers:
        pod_labels[SERVES_PREFIX + dns_name(s.model.name)] = "true"
    limits = {"nvidia.com/gpu": str(gpu_count), **(extra_limits or {})}
    requests = {
        "cpu": _times(options.cpu_per_gpu, gpu_count),
        "memory": _times(options.memory_per_gpu, gpu_count),
    }
    indices = sorted({i for r in replicas for i in r.gpu_indices})
    annotations = {
        "planner.dev/node": node,
        "planner.dev/gpu-indices": ",".join(str(i) for i in indices),
        "planner.dev/models": ",".join(s.model.name for s in servers),
    }
    container = k8s.V1Container(
        name="vllm",
        image=options.vllm_image,
        # Explicit command: the image's entrypoint differs between vLLM releases.
        command=["/bin/bash", "-c", _launcher(servers)]
        if len(servers) > 1
        else _serve_args(servers[0]),
        ports=[
            k8s.V1ContainerPort(name=port_name(s.model.name), container_port=s.port, protocol="TCP")
            for s in servers
        ],
        env=_env(options),
        resources=k8s.V1ResourceRequirements(limits=limits, requests=requests),
        # Startup allows 30 min for weight download and CUDA graph capture, then the
        # readiness and liveness probes take over on the last server started.
        startup_probe=_probe(servers[-1], period=10, failures=180),
        readiness_probe=_probe(servers[-1], period=10, failures=3),
        liveness_probe=_liveness(servers),
        # Root filesystem stays writable: vLLM's kernel JITs (Triton, FlashInfer,
        # torch.compile) write caches to paths not all under HOME.
        security_context=container_security(),
        volume_mounts=[
            k8s.V1VolumeMount(name="cache", mount_path=CACHE_DIR),
            k8s.V1VolumeMount(name="shm", mount_path="/dev/shm"),
        ],
    )
    meta = metadata(name, options.namespace, plan_hash, **{DEPLOYMENT_LABEL: name})
    return k8s.V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=meta,
        spec=k8s.V1DeploymentSpec(
            replicas=len(replicas),
            selector=k8s.V1LabelSelector(match_labels={DEPLOYMENT_LABEL: name}),
            # The GPUs are all planned: a surge pod would sit Pending, so replace in place.
            strategy=k8s.V1DeploymentStrategy(
                type="RollingUpdate",
                rolling_update=k8s.V1RollingUpdateDeployment(max_surge=0, max_unavailable=1),
            ),
            # The plan hash stays off the pod template so an unchanged group is not restarted.
            template=k8s.V1PodTemplateSpec(
                metadata=k8s.V1ObjectMeta(labels=pod_labels, annotations=annotations),
                spec=k8s.V1PodSpec(
                    containers=[container],
                    affinity=_node_affinity(pool, node, gpus),
                    automount_service_account_token=False,
                    enable_service_links=False,
                    security_context=pod_security(options.run_as_user),
                    termination_grace_period_seconds=60,
                    volumes=[
                        k8s.V1Volume(name="cache", empty_dir=k8s.V1EmptyDirVolumeSource()),
                        k8s.V1Volume(
                            name="shm", empty_dir=k8s.V1EmptyDirVolumeSource(medium="Memory")
                        ),
                    ],
                ),
            ),
        ),
    )


def _serve_args(server: _Server) -> list[str]:
    m = server.model
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
        "--tensor-parallel-size",
        str(server.tp),
        "--gpu-memory-utilization",
        f"{server.memory_utilization:g}",
        *m.vllm_args,
    ]


def _launcher(servers: Sequence[_Server]) -> str:
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
        lines.append(f"{shlex.join(_serve_args(s))} &")
        lines.append(f"pid=$!; until ready {s.port}; do kill -0 $pid || exit 1; sleep 5; done")
    lines.append("wait -n; exit 1")
    return "\n".join(lines) + "\n"


def _env(options: RenderOptions) -> list[k8s.V1EnvVar]:
    return [
        k8s.V1EnvVar(name="HOME", value=CACHE_DIR),
        k8s.V1EnvVar(name="HF_HOME", value=f"{CACHE_DIR}/huggingface"),
        k8s.V1EnvVar(
            name="HF_TOKEN",
            value_from=k8s.V1EnvVarSource(
                # optional: public models need no token, and the pod still starts.
                secret_key_ref=k8s.V1SecretKeySelector(
                    name=options.hf_token_secret, key=options.hf_token_key, optional=True
                )
            ),
        ),
    ]


def _liveness(servers: Sequence[_Server]) -> k8s.V1Probe:
    """One server: its /health. Several: every server's /health, so a hung (not exited)
    co-located server also gets the container restarted."""
    if len(servers) == 1:
        return _probe(servers[0], period=30, failures=3)
    ports = ",".join(str(s.port) for s in servers)
    check = (
        "import urllib.request\n"
        f"for port in ({ports},):\n"
        f'    urllib.request.urlopen(f"http://127.0.0.1:{{port}}{HEALTH_PATH}", timeout=4)\n'
    )
    return k8s.V1Probe(
        _exec=k8s.V1ExecAction(command=["python3", "-c", check]),
        period_seconds=30,
        failure_threshold=3,
        timeout_seconds=10,
    )


def _probe(server: _Server, period: int, failures: int) -> k8s.V1Probe:
    return k8s.V1Probe(
        http_get=k8s.V1HTTPGetAction(path=HEALTH_PATH, port=port_name(server.model.name)),
        period_seconds=period,
        failure_threshold=failures,
        timeout_seconds=5,
    )


def _node_affinity(pool: NodePool, node: str, gpus: Mapping[GpuType, GpuSpec]) -> k8s.V1Affinity:
    """Pin to the placed node when the cluster names its nodes, else to the pool's nodes."""
    if pool.node_names:
        exprs = [
            k8s.V1NodeSelectorRequirement(
                key="kubernetes.io/hostname", operator="In", values=[node]
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
    """'32Gi' * 2 -> '64Gi' (integer quantities with an optional suffix)."""
    digits = quantity.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return f"{int(digits) * n}{quantity[len(digits) :]}"
