"""What a replay sends: the traced workflows as templates, and each call's prompt tokens.

The workflow structure (dependencies, fan-out, tool and think gaps) is the simulator's
compiled `Workload`; this module adds what a live replay needs beyond it: per call, the
prompt's prefix group and how many of its tokens come from that group.

Prompts are lists of token ids (the OpenAI completions API accepts them), so every call
sends exactly its recorded input length without a tokenizer. Calls that shared a prefix
in the trace draw that prefix from one deterministic token stream:

- a call with a `prefix_hash` shares its group's stream (across workflow instances, as a
  system prompt or a shared document would); the shared length is the call's recorded
  `cached_input_tokens` when known, else the shortest prompt of the group (what every
  member can share), and the rest of the prompt is the call's own;
- any other call belongs to its session (workflow instance + agent, or + model when the
  trace names no agent) and takes its whole prompt from the session's stream, so a call
  shares with the session's earlier calls as much as a growing conversation would (the
  shorter prompt's length). Sessions are per replayed instance: two replays of one traced
  workflow share nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from planner.simulate.workload import TOOL, Workload
from planner.types.calls import CallTable

# Token ids prompts are drawn from: ids in this range are ordinary vocabulary entries in
# every model family we serve (Llama/Qwen/Mistral put special tokens below 300 or at the
# end of their vocabulary) and exist in the 1,024-token test models.
PROMPT_TOKEN_LOW = 300
PROMPT_TOKEN_HIGH = 1000
_BLOCK = 256  # streams are built in fixed blocks so any prefix of a stream is stable

SCOPE_GLOBAL = "global"  # shared by every instance (a prefix hash)
SCOPE_SESSION = "session"  # shared inside one replayed workflow instance


@dataclass(frozen=True)
class PrefixPlan:
    """Per node of a Workload: the prefix group and how much of the prompt it supplies.

    Attributes:
        group: per node, the group key ("" for tool rows).
        scope: per node, SCOPE_GLOBAL or SCOPE_SESSION.
        shared_tokens: per node, the leading prompt tokens drawn from the group's stream.
    """

    group: tuple[str, ...]
    scope: tuple[str, ...]
    shared_tokens: np.ndarray

    def shared_fraction(self, workload: Workload) -> float:
        """Share of all prompt tokens that come from a group stream."""
        llm = workload.node_model != TOOL
        total = float(workload.node_input_tokens[llm].sum())
        return float(self.shared_tokens[llm].sum()) / total if total > 0 else 0.0


def plan_prefixes(calls: CallTable, workload: Workload) -> PrefixPlan:
    """Prefix groups of every node of `workload` (compiled from `calls`)."""
    frame = calls.frame
    rows = workload.node_row
    hashes = frame["prefix_hash"].astype(object).to_numpy()[rows]
    cached = frame["cached_input_tokens"].to_numpy(dtype=np.float64)[rows]
    agents = frame["agent"].astype(object).to_numpy()[rows]
    workflows = frame["workflow_id"].astype(str).to_numpy()[rows]
    inputs = workload.node_input_tokens.astype(np.int64)
    is_llm = workload.node_model != TOOL
    models = workload.models

    group: list[str] = []
    scope: list[str] = []
    for i in range(workload.nodes):
        if not is_llm[i]:
            group.append("")
            scope.append(SCOPE_SESSION)
        elif not pd.isna(hashes[i]):
            group.append(f"hash:{hashes[i]}")
            scope.append(SCOPE_GLOBAL)
        else:
            who = agents[i] if not pd.isna(agents[i]) else models[workload.node_model[i]]
            group.append(f"session:{workflows[i]}:{who}")
            scope.append(SCOPE_SESSION)

    shared = np.where(is_llm, inputs, 0).astype(np.int64)
    global_nodes = np.array([s == SCOPE_GLOBAL for s in scope], dtype=bool)
    if global_nodes.any():
        keys = pd.Series(group)[global_nodes]
        group_min = pd.Series(inputs[global_nodes], index=keys.index).groupby(keys).transform("min")
        fallback = group_min.to_numpy(dtype=np.int64)
        known = ~np.isnan(cached[global_nodes])
        recorded = np.nan_to_num(cached[global_nodes], nan=0.0).astype(np.int64)
        shared[global_nodes] = np.minimum(np.where(known, recorded, fallback), inputs[global_nodes])
    return PrefixPlan(tuple(group), tuple(scope), np.maximum(shared, 0))


def _stream(key: str, length: int) -> list[int]:
    """The first `length` tokens of the deterministic stream named `key`."""
    out: list[int] = []
    block = 0
    while len(out) < length:
        digest = hashlib.blake2b(f"{key}#{block}".encode(), digest_size=8).digest()
        rng = np.random.default_rng(int.from_bytes(digest, "little"))
        out += rng.integers(PROMPT_TOKEN_LOW, PROMPT_TOKEN_HIGH, size=_BLOCK).tolist()
        block += 1
    return out[:length]


def prompt_tokens(prefixes: PrefixPlan, workload: Workload, node: int, instance: int) -> list[int]:
    """The prompt of `node` when replayed as workflow instance `instance`.

    Its length is the node's recorded input tokens (at least 1): the group's stream for
    the shared part, then tokens of the call's own stream.
    """
    length = max(1, int(workload.node_input_tokens[node]))
    shared = min(int(prefixes.shared_tokens[node]), length)
    group = prefixes.group[node]
    if prefixes.scope[node] == SCOPE_SESSION:
        group = f"{group}@{instance}"
    own = _stream(f"call:{node}@{instance}", length - shared) if shared < length else []
    return _stream(group, shared) + own
