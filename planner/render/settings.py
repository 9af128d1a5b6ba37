"""What a rendering may vary: namespace, images, sharing backend, replan schedule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from planner.defaults import GPU_MEMORY_UTILIZATION

# process: one pod holds the GPU and runs the co-located vLLM servers (stock cluster).
# hami: one pod per share, with HAMi's enforced memory/compute slices.
Sharing = Literal["process", "hami"]
SHARING_BACKENDS: tuple[Sharing, ...] = ("process", "hami")


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
    sharing: Sharing = "process"
    # The vLLM release the measured profiler was built and tested against (REFERENCE.md 1).
    vllm_image: str = "vllm/vllm-openai:v0.32.0"
    planner_image: str = "ghcr.io/planner/planner:0.1.0"
    port: int = 8000  # first vLLM port in a pod; co-located servers count up from it
    # --gpu-memory-utilization of a whole GPU; a share f gets f * this, so co-located
    # servers leave the same headroom per GPU (the value the profiles' memory fit assumes).
    memory_utilization: float = GPU_MEMORY_UTILIZATION
    hf_token_secret: str = "hf-token"  # Secret name; key `hf_token_key` holds the token
    hf_token_key: str = "token"
    cpu_per_gpu: str = "4"
    memory_per_gpu: str = "32Gi"
    run_as_user: int = 1000  # the vLLM image has no non-root user; any uid works with HOME set
    replan_schedule: str = "0 * * * *"
    replan_traces: str = "/traces"  # a path inside the pod or an object-store URL (s3://...)
    replan_traces_claim: str = ""  # PVC mounted read-only at /traces when set
    replan_window: str = "1h"
    replan_args: tuple[str, ...] = ()  # extra `planner replan` flags (margin, caps, ...)
    # A Job replaying the traces (replan_traces, replan_traces_claim) against the plan's
    # Services; None: no replay Job.
    replay_job: ReplayJobSettings | None = None
