"""Speed of the analytic ProfileTable (what the search pays per query).

    PYTHONPATH=. python benchmarks/profile_speed.py

Times uncached and cached calls over every catalog model x GPU type x TP x fraction
that fits, at a grid of token shapes and loads.
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from planner.io.configs import load_catalog  # noqa: E402
from planner.profiles.analytic import AnalyticProfiles  # noqa: E402
from planner.types.shapes import ShapeKey  # noqa: E402

SHAPES = [(512, 1), (1000, 200), (4000, 500), (8000, 1000)]
LOADS = [0.1, 0.5, 0.9]


def main() -> int:
    catalog = load_catalog()
    profiles = AnalyticProfiles(catalog)
    keys = [
        ShapeKey(m, g, tp, f)
        for m, g, tp, f in itertools.product(
            sorted(catalog.models), sorted(catalog.gpus), (1, 2, 4, 8), (1.0, 0.5, 0.25)
        )
        if tp == 1 or f == 1.0
    ]
    start = time.perf_counter()
    fitting = [k for k in keys if profiles.memory(k).fits]
    t_memory = (time.perf_counter() - start) / len(keys)
    print(f"{len(keys)} shapes, {len(fitting)} fit; memory(): {t_memory * 1e6:.1f} us/call")

    queries = [
        (k, s)
        for k, s in itertools.product(fitting, SHAPES)
        if sum(s) <= catalog.models[k.model].max_model_len
    ]
    start = time.perf_counter()
    capacities = {(k, s): profiles.capacity_per_s(k, *s) for k, s in queries}
    t_cap = (time.perf_counter() - start) / len(queries)
    print(f"capacity_per_s (uncached): {t_cap * 1e6:.1f} us/call over {len(queries)} calls")

    start = time.perf_counter()
    n = 0
    for (k, s), cap in capacities.items():
        for load in LOADS:
            profiles.at_rate(k, *s, load * cap)
            n += 1
    t_rate = (time.perf_counter() - start) / n
    print(f"at_rate (uncached, root solve): {t_rate * 1e6:.1f} us/call over {n} calls")

    start = time.perf_counter()
    for (k, s), cap in capacities.items():
        for load in LOADS:
            profiles.at_rate(k, *s, load * cap)
    t_cached = (time.perf_counter() - start) / n
    print(f"at_rate (cached): {t_cached * 1e6:.2f} us/call")

    start = time.perf_counter()
    m = 0
    for k, s in queries:
        for c in (1, 8, 64):
            profiles.at_concurrency(k, *s, c + 0.5)  # off-grid: never cached before
            m += 1
    t_conc = (time.perf_counter() - start) / m
    print(f"at_concurrency (uncached): {t_conc * 1e6:.1f} us/call over {m} calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
