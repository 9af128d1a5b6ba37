"""Speed of predicting every search option with the kernels source.

    PYTHONPATH=. python benchmarks/profile_options_speed.py [--models 50]

Builds 50 models (the shipped catalog plus every supported Hugging Face config in
../shared/data/models; 46 distinct today, padded with renamed copies to 50) and, for
3 GPU types (H100, H200, B200), does what candidate generation does for every shape
the search may pick (TP 1-8, the GPU shares of TP 1, expert parallelism and
data-parallel attention for MoE): the
memory fit, the capacity and the 16-point latency ladder of `planner.search.problem`
at one token shape (2,000 prompt, 300 output tokens). Prints the wall and CPU time,
from a cold start (no curve or grid cached).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from planner.catalog import Catalog  # noqa: E402
from planner.errors import ConfigError  # noqa: E402
from planner.io.configs import load_catalog  # noqa: E402
from planner.model_import import hf_id_from_file_name, model_spec_from_hf  # noqa: E402
from planner.profiles.kernels import KernelProfiles  # noqa: E402
from planner.search.problem import DEFAULT_LADDER, _profile_shape, candidate_shapes  # noqa: E402
from planner.types.cluster import Cluster, NodePool  # noqa: E402

MODELS_DIR = REPO.parent / "shared" / "data" / "models"
GPUS = ("H100-SXM-80GB", "H200-SXM-141GB", "B200-180GB")


def fifty_models(catalog: Catalog, count: int) -> Catalog:
    models = dict(catalog.models)
    for path in sorted(MODELS_DIR.glob("*_config.json")):
        if len(models) >= count:
            break
        if "hf_quant" in path.name:
            continue
        hf_id = hf_id_from_file_name(path.name)
        quant = path.with_name(path.name.replace("_config.json", "_hf_quant_config.json"))
        try:
            spec = model_spec_from_hf(
                json.loads(path.read_text()),
                hf_id or path.stem,
                quant_config=json.loads(quant.read_text()) if quant.exists() else None,
            )
        except ConfigError:
            continue  # unsupported architecture
        if spec.name not in models:
            models[spec.name] = replace(spec, aliases=())
    # Fewer supported configs than `count`: pad with renamed copies (their own cache
    # entries, as distinct models with the same architecture would have).
    base = sorted(models.values(), key=lambda m: m.name)
    copy = 0
    while len(models) < count:
        spec = base[copy % len(base)]
        copy += 1
        name = f"{spec.name}-copy{copy}"
        models[name] = replace(spec, name=name, hf_id=f"copies/{name}", served_name=name,
                               aliases=())  # fmt: skip
    chosen = dict(sorted(models.items())[:count])
    return Catalog(chosen, catalog.gpus)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=50)
    args = parser.parse_args()
    catalog = fifty_models(load_catalog(), args.models)
    cluster = Cluster(tuple(NodePool(g.lower(), g, 1, 8, 8) for g in GPUS))
    profiles = KernelProfiles(catalog)
    keys = [k for m in catalog.models.values() for k in candidate_shapes(m, cluster)]
    moe = sum(m.is_moe for m in catalog.models.values())
    print(
        f"{len(catalog.models)} models ({moe} MoE) x {len(GPUS)} GPU types: "
        f"{len(keys)} shapes ({sum(k.expert_parallel for k in keys)} expert-parallel, "
        f"{sum(k.dp > 1 for k in keys)} of them with data-parallel attention)"
    )
    start, cpu = time.perf_counter(), time.process_time()
    fitting = [k for k in keys if profiles.memory(k).fits]
    t_memory = time.perf_counter() - start
    start2 = time.perf_counter()
    for k in fitting:
        _profile_shape(profiles, k, 2000.0, 300.0, DEFAULT_LADDER)
    t_options = time.perf_counter() - start2
    t_cpu = time.process_time() - cpu
    print(f"memory fit of all shapes: {t_memory:.2f} s ({len(fitting)} fit)")
    print(
        f"capacity + {len(DEFAULT_LADDER)}-point latency ladder of the fitting shapes: "
        f"{t_options:.2f} s"
    )
    # CPU time of this process: what the work costs on a machine shared with others.
    print(f"total: {t_memory + t_options:.2f} s wall, {t_cpu:.2f} s CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
