"""Flags shared by the verbs that plan (`plan`, `replan`, `evaluate`, `render`).

One definition per flag keeps names and help sentences identical across commands; the
defaults stay with `PlanningOptions` (planner/cli/plan.py) and `RenderOptions`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

GpuTypeOpt = Annotated[
    str, typer.Option("--gpu-type", help="GPU type of --gpus (catalog name or alias).")
]
GpusPerNodeOpt = Annotated[int, typer.Option("--gpus-per-node", help="GPUs per node for --gpus.")]
ClusterOpt = Annotated[
    Path | None,
    typer.Option("--cluster", help="Cluster YAML with node pools (instead of --gpus)."),
]
TargetRateOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--target-rate",
        help="Workflows/s: one total (split like the observed mix) or TYPE=RATE, "
        "repeatable. Default: observed rate x --headroom.",
    ),
]
HeadroomOpt = Annotated[
    float, typer.Option("--headroom", help="Default target = observed rate x this.")
]
SloOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--slo",
        help="Latency SLO per workflow type: TYPE=SECONDS (mean) or TYPE=SECONDS:p95; "
        "p95 is predicted as the trace's p95/mean ratio x the predicted mean.",
    ),
]
UtilisationCapOpt = Annotated[
    float,
    typer.Option("--utilisation-cap", help="Replicas stay below this fraction of capacity."),
]
PrefixCachingOpt = Annotated[
    str,
    typer.Option(
        "--prefix-caching",
        help="on: predict each model's prefix-cache hit rate per allocation option from the "
        "traces' reuse evidence and size prefill on the uncached tokens (the search also "
        "chooses balanced or session-affine routing); off: every prompt computed in full.",
    ),
]
TimeLimitOpt = Annotated[float, typer.Option("--time-limit", help="Solver time limit in seconds.")]
WorkersOpt = Annotated[
    int, typer.Option("--workers", help="CP-SAT workers (pinned for determinism).")
]
MappingOpt = Annotated[
    Path | None,
    typer.Option("--mapping", help="YAML column mapping for non-canonical trace tables."),
]
ConfigsOpt = Annotated[
    Path | None,
    typer.Option("--configs", help="Catalog folder with models/ and gpus/ (default: configs/)."),
]
ProfilesOpt = Annotated[
    Path | None,
    typer.Option("--profiles", help="Stored profiles folder (default: profiles/)."),
]
