"""Prefix reuse evidence per model: CallTable -> BlockReferences (see planner/types/reuse.py).

Precedence (traces/README.md, "Prefix reuse evidence"), per model:
1. `hashes`: the calls carry `prefix_hashes` (at least half of them do); every hashed
   block of every call is a reference, weighted by the tokens it covers.
2. `session`: some agent calls the model more than once in one workflow. Its k-th call
   can reuse at most min(I_k, I_{k-1} + O_{k-1}) tokens of its previous call's context
   (an agent re-sends its growing context); those leading blocks repeat the previous
   call's block ids, the rest are new. Blocks of SESSION_BLOCK_TOKENS; output tokens are
   never referenced before the next call (conservative: vLLM also caches full output
   blocks). Prefixes shared across workflows are invisible here.
3. `provider`: only `cached_input_tokens` (a reuse potential measured on someone else's
   cache): no blocks, so the hit-rate model predicts nothing from it.
4. `none`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from planner.types.calls import KIND_LLM, CallTable
from planner.types.names import ModelName
from planner.types.reuse import BlockReferences, ReuseSource

SESSION_BLOCK_TOKENS = 64  # pseudo-block size of session-derived references
# References kept per model: beyond it, consecutive hashed blocks are grouped (the hit
# rate is then resolved to the group's tokens) so tabulating stays within seconds.
MAX_REFERENCES = 1_000_000


def prefix_references(calls: CallTable) -> dict[ModelName, BlockReferences]:
    """Every model's prefix-block references, keyed by the model name in the trace."""
    frame = calls.frame
    llm = np.flatnonzero(np.asarray(frame["kind"].array == KIND_LLM))
    if not len(llm):
        return {}
    start = frame["start_s"].to_numpy()
    origin = float(start[llm].min())
    wf_codes = np.asarray(frame["workflow_id"].array.codes, dtype=np.int64)
    wf_start = np.full(int(wf_codes.max()) + 1, np.inf)
    np.minimum.at(wf_start, wf_codes, start)
    model_codes = np.asarray(frame["model"].array.codes)[llm]
    names = frame["model"].array.categories
    out: dict[ModelName, BlockReferences] = {}
    for code in np.unique(model_codes[model_codes >= 0]):
        rows = llm[model_codes == code]
        rows = rows[np.lexsort((rows, start[rows]))]  # time order, ties by row
        out[str(names[code])] = _references(frame, rows, str(names[code]), origin, wf_start)
    return out


def _references(
    frame: pd.DataFrame,
    rows: np.ndarray,
    model: ModelName,
    origin: float,
    wf_start: np.ndarray,
) -> BlockReferences:
    inputs = frame["input_tokens"].to_numpy()[rows].astype(np.float64)
    cached = frame["cached_input_tokens"].to_numpy()[rows]
    reported = float(np.nansum(cached)) if not np.isnan(cached).all() else float("nan")
    hashes = frame["prefix_hashes"].to_numpy()[rows]
    has = np.fromiter((h is not None for h in hashes), dtype=bool, count=len(rows))
    wf = np.asarray(frame["workflow_id"].array.codes, dtype=np.int64)[rows]
    agent = np.asarray(frame["agent"].array.codes, dtype=np.int64)[rows]
    source: ReuseSource
    if has.any() and has.mean() >= 0.5:
        source = "hashes"
        block_sizes = frame["prefix_block_tokens"].to_numpy()[rows][has]
        block_tokens = int(np.median(block_sizes))
        per_call = [np.asarray(h, dtype=np.int64) for h in hashes[has]]
        call_index = np.flatnonzero(has)
        lengths = np.fromiter((len(h) for h in per_call), dtype=np.int64, count=len(per_call))
        ids = np.concatenate(per_call) if per_call else np.zeros(0, dtype=np.int64)
        call = np.repeat(call_index, lengths)
        position = np.arange(len(ids)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        sizes = np.repeat(block_sizes, lengths)
        covered = np.clip(inputs[call] - position * sizes, 0.0, sizes)
        ids, call, covered, factor = _coarsened(ids, call, position, lengths, covered)
        block_tokens *= factor
    elif _has_sessions(wf, agent):
        source = "session"
        block_tokens = SESSION_BLOCK_TOKENS
        outputs = frame["output_tokens"].to_numpy()[rows].astype(np.float64)
        ids, call = _session_blocks(wf, agent, inputs, outputs)
        covered = np.full(len(ids), float(SESSION_BLOCK_TOKENS))
    else:
        source = "provider" if not np.isnan(reported) else "none"
        block_tokens = SESSION_BLOCK_TOKENS
        ids = call = np.zeros(0, dtype=np.int64)
        covered = np.zeros(0)
    _, dense = np.unique(ids, return_inverse=True)
    time_s = frame["start_s"].to_numpy()[rows] - origin
    return BlockReferences(
        model=model,
        source=source,
        block_tokens=block_tokens,
        time_s=time_s[call],
        workflow_start_s=(wf_start[wf] - origin)[call],
        block=dense.astype(np.int64),
        session=wf[call],
        call=call.astype(np.int64),
        tokens=covered.astype(np.float64),
        input_tokens=float(inputs.sum()),
        calls=len(rows),
        reported_cached_tokens=reported,
    )


def _coarsened(
    ids: np.ndarray,
    call: np.ndarray,
    position: np.ndarray,
    lengths: np.ndarray,
    covered: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """At most about MAX_REFERENCES references: groups of k consecutive blocks of a prompt
    become one block named by its last hash (exact for chained hashes: the last hash of a
    group names the whole prefix), plus each prompt's trailing partial group."""
    factor = max(1, math.ceil(len(ids) / MAX_REFERENCES))
    if factor == 1:
        return ids, call, covered, 1
    last = np.repeat(lengths, lengths) - 1
    keep = np.flatnonzero(((position + 1) % factor == 0) | (position == last))
    totals = np.cumsum(covered)[keep]
    grouped = np.diff(np.concatenate([[0.0], totals]))
    return ids[keep], call[keep], grouped, factor


def _has_sessions(wf: np.ndarray, agent: np.ndarray) -> bool:
    """Some (workflow, agent) pair calls the model more than once."""
    key = wf * (int(agent.max()) + 2) + agent + 1
    return len(np.unique(key)) < len(key)


def _session_blocks(
    wf: np.ndarray, agent: np.ndarray, inputs: np.ndarray, outputs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-block ids per call (calls in time order): an agent's k-th call in a workflow
    repeats the ids of its previous call's leading blocks, up to min(I_k, I_{k-1} + O_{k-1})
    tokens; every other block is new."""
    b = SESSION_BLOCK_TOKENS
    chains: dict[tuple[int, int], tuple[np.ndarray, float]] = {}
    next_id = 0
    ids: list[np.ndarray] = []
    calls: list[np.ndarray] = []
    for i in range(len(inputs)):
        key = (int(wf[i]), int(agent[i]))
        blocks = int(inputs[i] // b)
        previous = chains.get(key)
        keep = 0
        if previous is not None:
            chain, context = previous
            keep = min(int(min(inputs[i], context) // b), len(chain), blocks)
        fresh = np.arange(next_id, next_id + blocks - keep, dtype=np.int64)
        next_id += blocks - keep
        chain_now = np.concatenate([previous[0][:keep], fresh]) if previous else fresh
        chains[key] = (chain_now, float(inputs[i] + outputs[i]))
        ids.append(chain_now)
        calls.append(np.full(blocks, i, dtype=np.int64))
    if not ids:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(ids), np.concatenate(calls)


def reuse_by_type(
    calls: CallTable, refs: dict[ModelName, BlockReferences]
) -> dict[tuple[str, ModelName], tuple[float, ReuseSource]]:
    """(workflow type, model) -> (reuse potential, source): the share of the type's input
    tokens to the model whose block some earlier call referenced (one infinite cache)."""
    frame = calls.frame
    llm = np.asarray(frame["kind"].array == KIND_LLM)
    wf_codes = np.asarray(frame["workflow_id"].array.codes, dtype=np.int64)
    type_codes = np.asarray(frame["workflow_type"].array.codes, dtype=np.int64)
    type_of_wf = np.zeros(int(wf_codes.max()) + 1 if len(wf_codes) else 0, dtype=np.int64)
    type_of_wf[wf_codes] = type_codes
    type_names = frame["workflow_type"].array.categories
    model = frame["model"].astype(object).to_numpy()
    inputs = frame["input_tokens"].to_numpy().astype(np.float64)
    cached = np.nan_to_num(frame["cached_input_tokens"].to_numpy())
    out: dict[tuple[str, ModelName], tuple[float, ReuseSource]] = {}
    for name, r in refs.items():
        rows = llm & (model == name)
        seen = np.ones(len(r.block), dtype=bool)
        if len(r.block):
            _, first = np.unique(r.block, return_index=True)
            seen[first] = False
        ref_type = type_of_wf[r.session]
        for t in np.unique(type_codes[rows]):
            total = float(inputs[rows & (type_codes == t)].sum())
            if r.source == "provider":
                reused = float(cached[rows & (type_codes == t)].sum())
            else:
                reused = float(r.tokens[seen & (ref_type == t)].sum())
            out[(str(type_names[t]), name)] = (reused / total if total > 0 else 0.0, r.source)
    return out
