"""How long placement, rendering and writing take as the cluster grows.

Builds a plan by hand for N nodes of 8 H100s (10 models: TP-8, TP-4, TP-2 and whole-GPU
replicas, plus 1/2, 1/4 and 1/8 shares, filling ~90 % of the GPUs), then times
`place`, `render_manifests` and `manifest_files` (serialisation), and reports the
fragmentation. Usage:

    PYTHONPATH=$PWD python benchmarks/deploy_scale.py [--nodes 10 100 200]
"""

from __future__ import annotations

import argparse
import time

from planner.catalog import ModelSpec
from planner.io.manifests import manifest_files
from planner.place import place
from planner.render.objects import render_manifests
from planner.render.settings import RenderOptions
from planner.types.cluster import Cluster, NodePool
from planner.types.plan import Allocation, Plan, SolverFacts
from planner.types.shapes import share_eighths

GPU = "H100-SXM-80GB"
# (model, tp, fraction, share of the cluster's GPUs this shape takes)
MIX = [
    ("m0", 8, 1.0, 0.20),
    ("m1", 4, 1.0, 0.20),
    ("m2", 4, 1.0, 0.10),
    ("m3", 2, 1.0, 0.10),
    ("m4", 2, 1.0, 0.05),
    ("m5", 1, 1.0, 0.10),
    ("m6", 1, 1.0, 0.05),
    ("m7", 1, 0.5, 0.04),
    ("m8", 1, 0.25, 0.03),
    ("m9", 1, 0.125, 0.03),
]


def spec(name: str) -> ModelSpec:
    return ModelSpec(name, f"org/{name}", name, 8.0, 32, 4096, 32, 8, 128, 14336, 128256)


def plan_for(gpus: int) -> Plan:
    allocs = []
    for model, tp, fraction, share in MIX:
        replicas = max(1, int(gpus * share / (tp * fraction)))
        allocs.append(Allocation(model, GPU, tp, share_eighths(fraction), replicas))
    return Plan("min-latency", tuple(allocs), (), (), SolverFacts("bench", 0, 0, 0, 0), gpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, nargs="+", default=[10, 100, 200])
    parser.add_argument("--target", default="deployments", choices=["deployments", "lws", "kserve"])
    parser.add_argument("--gateway", action="store_true", help="render the routing objects too")
    parser.add_argument("--autoscaler", default="none", choices=["none", "hpa", "keda"])
    args = parser.parse_args()
    options = RenderOptions(
        target=args.target,
        gateway=args.gateway,
        autoscaler=args.autoscaler,
        replan_traces_claim="planner-traces",
    )
    models = {m: spec(m) for m, *_ in MIX}
    print(
        f"{'nodes':>6} {'gpus':>6} {'replicas':>9} {'objects':>8} "
        f"{'place s':>8} {'render s':>9} {'yaml s':>7} {'MB':>6} {'free gpus':>9} {'partly':>7}"
    )
    for n in args.nodes:
        names = tuple(f"gpu-node-{i:04d}" for i in range(n))
        cluster = Cluster((NodePool("h100", GPU, n, 8, 8, node_names=names),))
        plan = plan_for(n * 8)
        t0 = time.perf_counter()
        placement = place(plan, cluster)
        t1 = time.perf_counter()
        rendered = render_manifests(placement, cluster, models, "plan", options)
        t2 = time.perf_counter()
        files = manifest_files(rendered.objects)
        t3 = time.perf_counter()
        size = sum(len(v) for v in files.values()) / 1e6
        f = placement.fragmentation
        print(
            f"{n:>6} {n * 8:>6} {len(placement.replicas):>9} {len(rendered.objects):>8} "
            f"{t1 - t0:>8.3f} {t2 - t1:>9.3f} {t3 - t2:>7.3f} {size:>6.2f} "
            f"{f.free_gpus:>9} {f.partly_used_gpus:>7}"
        )


if __name__ == "__main__":
    main()
