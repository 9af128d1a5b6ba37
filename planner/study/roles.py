"""Agent roles: per-role calls, tokens and latency share, and role path patterns.

A workflow's role path is its LLM calls' agent names in start order, with consecutive
calls of the same role collapsed into one step with a repeat count
(`explorer explorer explorer` -> `explorer{3}`). Workflows with the same sequence of steps
share a pattern; the pattern's repeat range per step is the smallest and largest count
seen (`explorer{3,4}`; `{n}` when always n, nothing when always 1). Only workflows whose
every LLM call names its agent take part.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from planner.aggregate.indexed import Indexed
from planner.study.types import PatternStep, RolePattern, RoleStats

# Patterns reported per workflow type, most common first.
MAX_PATTERNS = 5


def role_stats(ix: Indexed, frame: pd.DataFrame, t: int) -> tuple[RoleStats, ...]:
    """Per agent role of workflow type `t`, sorted by role; empty without agent names."""
    agents = frame["agent"].array
    codes = np.asarray(agents.codes)[ix.llm_rows]
    in_type = ix.wf_type[ix.llm_wf] == t
    named = in_type & (codes >= 0)
    if not named.any():
        return ()
    k = len(agents.categories)
    role = codes[named]
    inputs = frame["input_tokens"].to_numpy()[ix.llm_rows][named].astype(np.float64)
    outputs = frame["output_tokens"].to_numpy()[ix.llm_rows][named].astype(np.float64)
    duration = (ix.llm_end - ix.llm_start)[named]
    calls = np.bincount(role, minlength=k)
    total_calls = int(in_type.sum())
    all_in = frame["input_tokens"].to_numpy()[ix.llm_rows][in_type].sum()
    all_out = frame["output_tokens"].to_numpy()[ix.llm_rows][in_type].sum()
    all_time = float(np.sum((ix.llm_end - ix.llm_start)[in_type])) if ix.timed else 0.0
    in_sum = np.bincount(role, weights=inputs, minlength=k)
    out_sum = np.bincount(role, weights=outputs, minlength=k)
    time_sum = np.bincount(role, weights=np.nan_to_num(duration), minlength=k)
    workflows = int(np.sum(ix.wf_type == t))
    model_codes = ix.llm_model[named]
    pairs = np.unique(role.astype(np.int64) * ix.n_models + model_codes)
    order = np.argsort(role, kind="stable")
    sorted_role, sorted_out = role[order], outputs[order]
    bounds = np.searchsorted(sorted_role, np.arange(k + 1))
    out = []
    for r in np.flatnonzero(calls):
        lengths = np.sort(sorted_out[bounds[r] : bounds[r + 1]])
        p10, p90 = np.percentile(lengths, [10.0, 90.0])
        served = pairs[pairs // ix.n_models == r] % ix.n_models
        out.append(
            RoleStats(
                role=str(agents.categories[r]),
                calls=int(calls[r]),
                calls_per_workflow=float(calls[r] / workflows),
                call_share=float(calls[r] / total_calls),
                input_token_share=_share(in_sum[r], all_in),
                output_token_share=_share(out_sum[r], all_out),
                latency_share=_share(time_sum[r], all_time) if ix.timed else None,
                models=tuple(sorted(ix.model_names[m] for m in served)),
                output_tokens_p10=float(p10),
                output_tokens_p90=float(p90),
            )
        )
    return tuple(sorted(out, key=lambda s: s.role))


def _share(part: float, whole: float) -> float:
    return float(part / whole) if whole > 0 else 0.0


def role_patterns(ix: Indexed, frame: pd.DataFrame, t: int) -> tuple[RolePattern, ...]:
    """The most common role paths of workflow type `t` (see the module docstring)."""
    agents = frame["agent"].array
    codes = np.asarray(agents.codes)[ix.llm_rows]
    in_type = ix.wf_type[ix.llm_wf] == t
    unnamed = np.bincount(ix.llm_wf[in_type & (codes < 0)], minlength=ix.n_workflows)
    keep = in_type & (unnamed[ix.llm_wf] == 0)
    if not keep.any():
        return ()
    wf, start, role = ix.llm_wf[keep], ix.llm_start[keep], codes[keep]
    order = np.lexsort((start, wf))
    wf, role = wf[order], role[order]
    new_run = np.ones(len(wf), dtype=bool)
    new_run[1:] = (wf[1:] != wf[:-1]) | (role[1:] != role[:-1])
    heads = np.flatnonzero(new_run)
    run_wf, run_role = wf[heads], role[heads].astype(np.int64)
    run_length = np.diff(np.append(heads, len(wf)))
    # Workflow boundaries among the runs; each workflow's step roles as one bytes key
    # (one Python step per workflow, not per row), factorised into skeleton ids.
    first_run = np.flatnonzero(np.r_[True, run_wf[1:] != run_wf[:-1]])
    bounds = np.append(first_run, len(run_wf))
    step = np.arange(len(run_wf)) - np.repeat(first_run, np.diff(bounds))
    packed = run_role.astype(np.int32)  # role codes fit 31 bits: one key per sequence
    keys = [packed[lo:hi].tobytes() for lo, hi in itertools.pairwise(bounds)]
    skeleton, uniques = pd.factorize(pd.Series(keys, dtype=object), sort=False)
    counts = np.bincount(skeleton, minlength=len(uniques))
    names = [str(c) for c in agents.categories]
    sequences = [
        tuple(names[r] for r in np.frombuffer(u, dtype=np.int32)) for u in uniques
    ]  # one per distinct path
    ranked = sorted(range(len(uniques)), key=lambda k: (-counts[k], sequences[k]))
    total = len(keys)
    run_skeleton = np.repeat(skeleton, np.diff(bounds))
    out = []
    for k in ranked[:MAX_PATTERNS]:
        mine = run_skeleton == k
        n_steps = len(sequences[k])
        lo = np.full(n_steps, np.iinfo(np.int64).max)
        hi = np.zeros(n_steps, dtype=np.int64)
        np.minimum.at(lo, step[mine], run_length[mine])
        np.maximum.at(hi, step[mine], run_length[mine])
        steps = tuple(
            PatternStep(name, int(a), int(b))
            for name, a, b in zip(sequences[k], lo, hi, strict=True)
        )
        out.append(
            RolePattern(
                pattern=pattern_text(steps),
                steps=steps,
                workflows=int(counts[k]),
                coverage=float(counts[k] / total),
            )
        )
    return tuple(out)


def pattern_text(steps: tuple[PatternStep, ...]) -> str:
    """`planner -> explorer{3,4} -> reviewer`: `{n}` for a fixed repeat n > 1."""

    def one(s: PatternStep) -> str:
        if s.min_repeat == s.max_repeat:
            return s.role if s.min_repeat == 1 else f"{s.role}{{{s.min_repeat}}}"
        return f"{s.role}{{{s.min_repeat},{s.max_repeat}}}"

    return " -> ".join(one(s) for s in steps)
