"""A replica's shape: which model, on which GPU type, at which TP degree and GPU share,
over how many pipeline stages (nodes) and data-parallel attention ranks."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from planner.defaults import UNITS_PER_GPU
from planner.types.names import GpuType, ModelName


@dataclass(frozen=True, order=True)
class ShapeKey:
    """One way to run one replica of a model.

    `share_eighths` is the replica's share of each of its GPUs in eighths (8 = whole
    GPUs; below 8 only when tp == 1). `pp` > 1 splits the layers into that many pipeline
    stages, each a TP group of `tp` whole GPUs inside one NVLink domain (a replica that
    spans nodes: TP inside a node, PP across nodes). `dp` > 1 (MoE with expert
    parallelism only) is vLLM's data-parallel attention: `dp` engine ranks, each a TP
    group of `tp` GPUs with its own scheduler and KV cache, sharing the experts split over
    all tp x dp GPUs (EP = tp x dp); the tp x dp GPUs sit in one NVLink domain.
    """

    model: ModelName
    gpu_type: GpuType
    tp: int
    share_eighths: int = UNITS_PER_GPU
    pp: int = 1
    # MoE only: experts split across the TP GPUs (vLLM --enable-expert-parallel, EP = TP)
    # instead of each expert's intermediate dimension.
    expert_parallel: bool = False
    # Data-parallel attention ranks (vLLM --data-parallel-size); 1: none.
    dp: int = 1

    @property
    def group_gpus(self) -> int:
        """GPUs placed together in one NVLink domain: the TP group, times the DP ranks
        that share its experts (a pipeline stage of a replica spanning nodes)."""
        return self.tp * self.dp

    @property
    def stage_units(self) -> int:
        """Eighths of a GPU one pipeline stage occupies (the unit placement packs)."""
        return self.group_gpus * self.share_eighths

    @property
    def units(self) -> int:
        """Eighths of a GPU one replica occupies."""
        return self.pp * self.stage_units

    @property
    def gpu_fraction(self) -> float:
        """The share as a fraction of one GPU (for display and vLLM flags)."""
        return self.share_eighths / UNITS_PER_GPU

    @property
    def gpus(self) -> float:
        """GPUs one replica occupies."""
        return self.units / UNITS_PER_GPU


def share_eighths(gpu_fraction: float, where: str = "gpu_fraction") -> int:
    """The integer eighths of a fraction written in a file or flag.

    Raises:
        ValueError: the fraction is not k/8 for k in 1..8.
    """
    # k/8 is a dyadic fraction, exact in binary floating point: no tolerance needed.
    eighths = Fraction(gpu_fraction) * UNITS_PER_GPU
    if eighths.denominator != 1 or not 1 <= eighths <= UNITS_PER_GPU:
        raise ValueError(f"{where} {gpu_fraction!r} is not k/8 of a GPU for k in 1..8")
    return int(eighths)
