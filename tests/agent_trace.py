"""A small two-model agentic trace for replays against tiny vLLM models (tests, benchmarks).

Each workflow: a planner call (model A) -> a tool gap -> 2-3 parallel worker calls
(model B, sharing a system-prompt prefix hash) -> a planner call that sees the workers'
results (same planner session, so it extends the first planner prompt). Token lengths
fit a 1,024-token context. Deterministic for a seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def write_agent_trace(
    path: Path,
    planner_model: str,
    worker_model: str,
    workflows: int = 40,
    seed: int = 3,
    tool_s: float = 0.05,
) -> Path:
    """Write the trace as CSV to `path`; return it."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, object]] = []
    t = 0.0
    for w in range(workflows):
        wf = f"wf{w:04d}"
        t += float(rng.exponential(2.0))
        plan_in = int(rng.integers(150, 250))
        plan_out = int(rng.integers(16, 33))
        start = t
        end = start + 0.5
        rows.append(
            _row(wf, planner_model, "planner", f"{wf}-p1", "", start, end, plan_in, plan_out)
        )
        tool_end = end + tool_s
        rows.append(_tool(wf, f"{wf}-t1", f"{wf}-p1", end, tool_end))
        workers = int(rng.integers(2, 4))
        w_end = tool_end
        for k in range(workers):
            w_in = int(rng.integers(200, 400))
            w_out = int(rng.integers(8, 25))
            e = tool_end + 0.3 + 0.05 * k
            rows.append(
                _row(wf, worker_model, "worker", f"{wf}-w{k}", f"{wf}-t1", tool_end, e,
                     w_in, w_out, prefix_hash="worker-system")
            )  # fmt: skip
            w_end = max(w_end, e)
        final_in = plan_in + plan_out + int(rng.integers(60, 120))
        rows.append(
            _row(wf, planner_model, "planner", f"{wf}-p2", "", w_end, w_end + 0.5,
                 final_in, int(rng.integers(16, 33)))
        )  # fmt: skip
    frame = pd.DataFrame(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def _row(
    wf: str, model: str, agent: str, call: str, parent: str, start: float, end: float,
    isl: int, osl: int, prefix_hash: str = "",
) -> dict[str, object]:  # fmt: skip
    return {
        "workflow_id": wf,
        "workflow_type": "agent",
        "kind": "llm",
        "model": model,
        "agent": agent,
        "call_id": call,
        "parent_call_id": parent,
        "start_time": round(start, 4),
        "end_time": round(end, 4),
        "input_tokens": isl,
        "output_tokens": osl,
        "prefix_hash": prefix_hash,
    }


def _tool(wf: str, call: str, parent: str, start: float, end: float) -> dict[str, object]:
    return {
        "workflow_id": wf,
        "workflow_type": "agent",
        "kind": "tool",
        "model": "",
        "agent": "search",
        "call_id": call,
        "parent_call_id": parent,
        "start_time": round(start, 4),
        "end_time": round(end, 4),
        "input_tokens": "",
        "output_tokens": "",
        "prefix_hash": "",
    }
