"""placement.yaml: where each replica of a plan runs, for review and for `planner replan`."""

from __future__ import annotations

from typing import Any

import yaml

from planner.place import Placement

PLACEMENT_FILE = "placement.yaml"


def placement_document(placement: Placement) -> dict[str, Any]:
    """Replicas (node and GPU indices) and the fragmentation report, as plain data."""
    f = placement.fragmentation
    return {
        "schema_version": 1,
        "kind": "placement",
        "fragmentation": {
            "partly_used_gpus": f.partly_used_gpus,
            "free_gpus": f.free_gpus,
            "free_nodes": f.free_nodes,
            # whole GPUs as an integer (0, not 0.0), shares as a fraction
            "unused_share_gpus": f.unused_share_gpus
            if f.unused_share_eighths % 8
            else f.unused_share_eighths // 8,
        },
        "replicas": [
            {
                "model": r.model,
                "gpu_type": r.gpu_type,
                "tensor_parallel": r.tp,
                "gpu_fraction": r.gpu_fraction,
                "replica": r.replica,
                "node": r.node,
                "gpus": list(r.gpu_indices),
                # A replica spanning nodes: its further pipeline stages, in order.
                **({"pipeline_parallel": r.pipeline_parallel} if r.pipeline_parallel > 1 else {}),
                # ...or the further nodes of a TP group across a multi-node NVLink domain.
                **({"more_nodes": list(r.other_nodes)} if r.other_nodes else {}),
                **({"expert_parallel": True} if r.expert_parallel else {}),
                **({"data_parallel": r.dp} if r.dp > 1 else {}),
            }
            for r in placement.replicas
        ],
    }


def placement_yaml(placement: Placement) -> str:
    return yaml.safe_dump(placement_document(placement), sort_keys=False, width=100)
