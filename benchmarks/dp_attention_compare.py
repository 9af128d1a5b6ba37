"""Data-parallel attention vs TP-only expert parallelism, predicted by the kernels source.

    PYTHONPATH=. python benchmarks/dp_attention_compare.py [--input-tokens 2000]
        [--output-tokens 500] [--concurrency 64 256 1024]

For large MoE models on one 8-GPU node of H100, H200 and B200: every 8-GPU shape the
search offers (TP 8, TP 8 with EP, and the data-parallel attention shapes TP t x DP d
with t d = 8 from `candidate_shapes`) with its KV capacity, the concurrency it runs at
once, its saturation capacity and, at each closed-loop concurrency, output tokens/s and
TPOT (requests beyond the running set wait for a KV slot, as in vLLM). Shapes that do
not fit the node are listed with "no fit". Predictions only: no measured DP rows exist
in ../shared/data/calibration (docs/profiles-kernels.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from planner.io.configs import load_catalog  # noqa: E402
from planner.profiles.kernels import KernelProfiles  # noqa: E402
from planner.search.problem import candidate_shapes  # noqa: E402
from planner.types.cluster import Cluster, NodePool  # noqa: E402
from planner.types.shapes import ShapeKey  # noqa: E402

MODELS = ("Qwen3-235B-A22B", "Qwen3-235B-A22B-FP8", "DeepSeek-V3", "Kimi-K2.5")
GPUS = ("H100-SXM-80GB", "H200-SXM-141GB", "B200-180GB")


def label(key: ShapeKey) -> str:
    out = f"TP{key.tp}" + (f" x DP{key.dp}" if key.dp > 1 else "")
    return out + (" EP" if key.expert_parallel else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-tokens", type=float, default=2000.0)
    parser.add_argument("--output-tokens", type=float, default=500.0)
    parser.add_argument("--concurrency", type=float, nargs="+", default=[64.0, 256.0, 1024.0])
    args = parser.parse_args()
    catalog = load_catalog()
    profiles = KernelProfiles(catalog)
    isl, osl = args.input_tokens, args.output_tokens
    conc = "| ".join(f"c={c:g} tok/s, TPOT ms " for c in args.concurrency)
    print(f"ISL {isl:g}, OSL {osl:g}; 8 GPUs per shape")
    print(f"| model | GPU | shape | KV tokens | runs at once | capacity req/s | {conc}|")
    print("|---" * (6 + len(args.concurrency)) + "|")
    for name in MODELS:
        spec = catalog.models[name]
        for gpu in GPUS:
            node = Cluster((NodePool("node", gpu, 1, 8, 8),))
            keys = [k for k in candidate_shapes(spec, node) if k.group_gpus == 8]
            for key in sorted(keys, key=lambda k: (k.dp, k.expert_parallel)):
                fit = profiles.memory(key)
                if not fit.fits:
                    print(f"| {name} | {gpu} | {label(key)} | no fit | | | |")
                    continue
                cap = profiles.capacity_per_s(key, isl, osl)
                cells = []
                for c in args.concurrency:
                    p = profiles.at_concurrency(key, isl, osl, c)
                    cells.append(f"{p.output_tokens_per_s:,.0f}, {p.tpot_ms:.1f}")
                top = profiles.at_concurrency(key, isl, osl, 1.0).max_concurrency
                print(
                    f"| {name} | {gpu} | {label(key)} | {fit.kv_cache_tokens:,} | {top:,.0f} "
                    f"| {cap:.2f} | " + " | ".join(cells) + " |"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
