"""What a rendering may vary: target stack, routing, autoscaling, images, pod hardening,
and the re-planning CronJob's inputs. Defaults live here and nowhere else.

Everything here is stored beside the plan (`render.yaml` in the plan ConfigMap), so the
re-planning CronJob renders its next step exactly as the first one was rendered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from planner import __version__
from planner.defaults import GPU_MEMORY_UTILIZATION
from planner.render.schedule import check_namespace, check_schedule

# process: one pod holds the GPU and runs the co-located vLLM servers (stock cluster).
# hami: one pod per share, with HAMi's enforced memory/compute slices.
Sharing = Literal["process", "hami"]
SHARING_BACKENDS: tuple[Sharing, ...] = ("process", "hami")

# deployments: Deployments, and a LeaderWorkerSet only for a replica that spans nodes.
# lws: every serving group is a LeaderWorkerSet (groups of size 1 on one node).
# kserve: a KServe LLMInferenceService per serving group (shared-GPU pods stay Deployments:
#   KServe runs one model per pod).
Target = Literal["deployments", "lws", "kserve"]
TARGETS: tuple[Target, ...] = ("deployments", "lws", "kserve")

Autoscaler = Literal["none", "hpa", "keda"]
AUTOSCALERS: tuple[Autoscaler, ...] = ("none", "hpa", "keda")

# The image `make image` builds from this repository's Dockerfile (tag = package version).
PLANNER_IMAGE = f"planner:{__version__}"


@dataclass(frozen=True)
class ReplanInputs:
    """What the re-planning CronJob plans toward: the planning request as `planner replan`
    flags (`planner.jobs.requests.replan_flags`, which parse back to the same request) and
    the text of the trace mapping the plan used ("" = none). `render.control.replan_args`
    builds the CronJob's arguments from it."""

    planning_flags: tuple[str, ...] = ()
    mapping_text: str = ""


@dataclass(frozen=True)
class ReplayJobSettings:
    """The in-cluster replay Job (`planner render --replay-job`); see render.replay_job."""

    rate_per_s: float
    duration_s: float = 300.0
    warmup_s: float = 30.0
    drain_s: float = 120.0


@dataclass(frozen=True)
class RenderOptions:
    namespace: str = "llm-serving"
    create_namespace: bool = True  # render a Namespace object (kubectl apply -k on a fresh cluster)
    sharing: Sharing = "process"
    target: Target = "deployments"
    # The vLLM release the measured profiler was built and tested against (REFERENCE.md 1).
    vllm_image: str = "vllm/vllm-openai:v0.32.0"
    planner_image: str = PLANNER_IMAGE
    port: int = 8000  # model ports count up from here, one per model of the plan
    # --gpu-memory-utilization of a whole GPU; a share f gets f * this, so co-located
    # servers leave the same headroom per GPU (the value the profiles' memory fit assumes).
    memory_utilization: float = GPU_MEMORY_UTILIZATION
    # Secret holding the Hugging Face token (key `hf_token_key`), referenced by every vLLM
    # container. A gated model (catalog `gated: true`) cannot start without it, so an empty
    # name with a gated model fails at render time, not at pod start.
    hf_token_secret: str = "hf-token"
    hf_token_key: str = "token"
    # Secret whose key `api-key` becomes VLLM_API_KEY: the servers then demand a bearer key.
    api_key_secret: str = ""
    cpu_per_gpu: str = "4"
    memory_per_gpu_gib: int = 32  # host memory per GPU: weights pass through it while loading
    # /dev/shm per GPU: NCCL and vLLM's multiprocessing exchange tensors there. It is a
    # memory-backed emptyDir, so it counts toward the memory limit and is added to it.
    shm_per_gpu_gib: int = 2
    # Model weights cache (HF_HOME): an emptyDir unless a PVC (shared, ReadWriteMany) or a
    # node hostPath (opt-in; survives pod restarts on the node) is named.
    model_cache_claim: str = ""
    model_cache_host_path: str = ""
    # Taints GPU nodes commonly carry (NVIDIA GPU operator, GKE, AKS): key nvidia.com/gpu.
    gpu_toleration_key: str = "nvidia.com/gpu"
    network_policy: bool = False  # only this namespace (and the gateway's) reaches the servers
    run_as_user: int = 1000  # the vLLM image has no non-root user; any uid works with HOME set
    # Gateway API Inference Extension: per model an InferencePool, its endpoint picker (EPP)
    # and an HTTPRoute on the user's Gateway.
    gateway: bool = False
    gateway_name: str = "inference-gateway"
    gateway_namespace: str = ""  # "" = the serving namespace
    epp_image: str = "registry.k8s.io/gateway-api-inference-extension/epp:v1.0.0"
    # The prefix-cache scorer sends a session's calls to the pod that cached its prefix.
    # Off by default: the plan's predictions assume load-balanced routing.
    prefix_routing: bool = False
    # Autoscaler per serving group: min = planned replicas, max = planned plus the copies of
    # the group's shape that fit the GPUs the placement left free where the group may run.
    autoscaler: Autoscaler = "none"
    # Scale out when a pod's servers hold more than this many waiting requests on average
    # (vllm:num_requests_waiting > 0 only once a server's batch or KV cache is full).
    waiting_requests_per_pod: int = 2
    prometheus_url: str = "http://prometheus-operated.monitoring.svc:9090"  # KEDA's query target
    # The re-planning CronJob: rendered when a traces source is given (a PVC or a URL).
    replan_schedule: str = "0 * * * *"
    replan_traces_url: str = ""  # s3://bucket/prefix, gs://..., abfs://...
    replan_traces_claim: str = ""  # PVC mounted read-only at /traces
    replan_credentials_secret: str = ""  # env for the object store (AWS_*, ...), by reference
    replan_window: str = "1h"
    # A Job replaying the traces (replan_traces_url or replan_traces_claim) against the
    # plan's Services; None: no replay Job.
    replay_job: ReplayJobSettings | None = None

    @property
    def replans(self) -> bool:
        return bool(self.replan_traces_url or self.replan_traces_claim)


def check_options(options: RenderOptions) -> None:
    """Reject settings that contradict each other or cannot render a working object.

    Raises:
        InputError: one line naming the flags and how to fix them.
    """
    from planner.errors import InputError

    if options.sharing not in SHARING_BACKENDS:
        raise InputError(
            f"--sharing {options.sharing!r}: choose one of {', '.join(SHARING_BACKENDS)}"
        )
    if options.target not in TARGETS:
        raise InputError(f"--target {options.target!r}: choose one of {', '.join(TARGETS)}")
    if options.autoscaler not in AUTOSCALERS:
        raise InputError(
            f"--autoscaler {options.autoscaler!r}: choose one of {', '.join(AUTOSCALERS)}"
        )
    # Kubernetes would refuse these only at apply time, after the output was written.
    check_namespace(options.namespace)
    if options.gateway_namespace:
        check_namespace(options.gateway_namespace, "--gateway-namespace")
    check_schedule(options.replan_schedule)
    if options.target == "kserve" and options.autoscaler == "hpa":
        raise InputError(
            "--target kserve --autoscaler hpa: an LLMInferenceService has no scale "
            "subresource an HPA could drive; use --autoscaler keda (KServe's scaling field)"
        )
    if options.model_cache_claim and options.model_cache_host_path:
        raise InputError("give --model-cache-claim or --model-cache-host-path, not both")
    if options.replan_traces_url and options.replan_traces_claim:
        raise InputError("give --replan-traces URL or --replan-traces-claim PVC, not both")
    if options.replan_traces_url and "://" not in options.replan_traces_url:
        raise InputError(
            f"--replan-traces {options.replan_traces_url!r}: expected an object-store URL "
            "(s3://bucket/prefix, gs://...); for a volume use --replan-traces-claim PVC"
        )
    if options.replan_traces_url and not options.replan_credentials_secret:
        raise InputError(
            f"--replan-traces {options.replan_traces_url}: give --replan-credentials-secret "
            "NAME, a Secret whose keys become the CronJob's environment (AWS_ACCESS_KEY_ID, ...)"
        )
    if options.replay_job is not None and not options.replans:
        raise InputError(
            "--replay-job replays the traces the re-planning CronJob reads: give "
            "--replan-traces-claim PVC or --replan-traces URL"
        )
