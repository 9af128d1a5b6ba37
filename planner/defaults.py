"""Planning defaults and grids, in one place.

Every command, the jobs layer, the search and the manifests read these; nothing else
defines them.
"""

from __future__ import annotations

from planner.types.names import GpuType

DEFAULT_GPU_TYPE: GpuType = "H100-SXM-80GB"
DEFAULT_GPUS_PER_NODE = 8

#: A GPU share is an integer count of eighths of a GPU (1..8); whole GPUs are 8.
UNITS_PER_GPU = 8
#: Shares a replica may take when TP is 1, largest first: any k/8 of a GPU. The search
#: packs shares onto GPUs exactly with share patterns (search/packing.py), and placement
#: uses the same packer, so a plan the search accepts is always placed.
SHARE_EIGHTHS: tuple[int, ...] = (8, 7, 6, 5, 4, 3, 2, 1)
TP_DEGREES: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
#: Pipeline stages a replica may span (one TP group per stage, stages across nodes). Only
#: offered for a model that no single-NVLink-domain shape of a GPU type can hold.
PP_DEGREES: tuple[int, ...] = (2, 4, 8)
#: Data-parallel attention ranks the search offers MoE models (vLLM --data-parallel-size).
DP_DEGREES: tuple[int, ...] = (2, 4, 8)

#: Replicas run below this fraction of their saturation capacity.
UTILISATION_CAP = 0.85
#: The default objective accepts plans within this fraction of the lowest latency and
#: among them takes the fewest GPUs (or the lowest cost when prices are known).
LATENCY_TOLERANCE = 0.01
#: CP-SAT budget of one `plan`, in deterministic seconds (machine-independent work units).
TIME_LIMIT_S = 30.0
#: CP-SAT workers; one keeps plans byte-identical across runs.
NUM_WORKERS = 1
RANDOM_SEED = 0

#: `--gpu-memory-utilization` of a whole GPU (vLLM's current default, REFERENCE.md 2). The
#: analytic memory fit assumes it and the manifests deploy it (a share gets its part of it),
#: so the KV cache the plan counts on is the one the cluster gets.
GPU_MEMORY_UTILIZATION = 0.92
