"""Agent roles: per-role calls, tokens and latency share, and role path patterns.

A workflow's role path is its LLM calls' agent names in start order, with consecutive
calls of the same role collapsed into one step with a repeat count
(`explorer explorer explorer` -> `explorer{3}`). Loops are then folded: a sequence of two
or three distinct roles that some workflow of the type runs at least twice in a row
(`engineer reviewer engineer reviewer`) is a loop body of the type, and every run of it,
in any workflow of the type, once or more, becomes one loop step
(`(engineer -> reviewer){2}`); bodies are tried shortest first, then by role names, left
to right. Workflows with the same sequence of steps share a pattern; its ranges are the
smallest and largest repeat counts and loop iterations seen (`explorer{3,4}`,
`(engineer -> reviewer){1,3}`; `{n}` when always n, nothing when always 1). Only
workflows whose every LLM call names its agent take part.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from planner.aggregate.indexed import Indexed
from planner.study.types import PatternLoop, PatternStep, RolePattern, RoleStats

# Patterns reported per workflow type, most common first.
MAX_PATTERNS = 5
# Longest loop body folded (roles per iteration).
MAX_LOOP_PERIOD = 3

# A folded path: ("role", code) or ("loop", body codes), per item.
_Item = tuple[str, tuple[int, ...]]


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
    sequences = [tuple(int(r) for r in np.frombuffer(u, dtype=np.int32)) for u in uniques]
    bodies = _loop_bodies(sequences, names)
    # Per distinct path: its folded form, and per step the item and position in the item.
    folded = [_fold(seq, bodies) for seq in sequences]
    forms: dict[tuple[_Item, ...], list[int]] = {}
    for k, (items, _, _, _) in enumerate(folded):
        forms.setdefault(items, []).append(k)
    offsets = np.concatenate([[0], np.cumsum([len(seq) for seq in sequences])])
    flat_item = np.concatenate([f[1] for f in folded])
    flat_inner = np.concatenate([f[2] for f in folded])
    run_skeleton = np.repeat(skeleton, np.diff(bounds))
    run_slot = offsets[run_skeleton] + step
    run_key = flat_item[run_slot] * MAX_LOOP_PERIOD + flat_inner[run_slot]

    def text(items: tuple[_Item, ...]) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(names[r] for r in codes) for _, codes in items)

    ranked = sorted(forms.items(), key=lambda kv: (-int(counts[kv[1]].sum()), text(kv[0])))[
        :MAX_PATTERNS
    ]
    total = len(keys)
    out = []
    for items, members in ranked:
        mine = np.isin(run_skeleton, members)
        width = len(items) * MAX_LOOP_PERIOD
        lo = np.full(width, np.iinfo(np.int64).max)
        hi = np.zeros(width, dtype=np.int64)
        np.minimum.at(lo, run_key[mine], run_length[mine])
        np.maximum.at(hi, run_key[mine], run_length[mine])
        steps: list[PatternStep | PatternLoop] = []
        for j, (kind, codes) in enumerate(items):
            inner = tuple(
                PatternStep(
                    names[r], int(lo[j * MAX_LOOP_PERIOD + i]), int(hi[j * MAX_LOOP_PERIOD + i])
                )
                for i, r in enumerate(codes)
            )
            if kind == "role":
                steps.append(inner[0])
            else:
                turns = [folded[k][3][j] for k in members]
                steps.append(PatternLoop(inner, min(turns), max(turns)))
        workflows = int(counts[members].sum())
        out.append(
            RolePattern(
                pattern=pattern_text(tuple(steps)),
                steps=tuple(steps),
                workflows=workflows,
                coverage=float(workflows / total),
            )
        )
    return tuple(out)


def _loop_bodies(sequences: list[tuple[int, ...]], names: list[str]) -> list[tuple[int, ...]]:
    """Bodies of 2..MAX_LOOP_PERIOD distinct roles run at least twice in a row somewhere,
    shortest first, then by role names (one pass per distinct path, not per row)."""
    bodies: set[tuple[int, ...]] = set()
    for seq in sequences:
        for period in range(2, MAX_LOOP_PERIOD + 1):
            for i in range(len(seq) - 2 * period + 1):
                body = seq[i : i + period]
                if seq[i + period : i + 2 * period] == body and len(set(body)) == period:
                    bodies.add(body)
    return sorted(bodies, key=lambda b: (len(b), [names[r] for r in b]))


def _fold(
    seq: tuple[int, ...], bodies: list[tuple[int, ...]]
) -> tuple[tuple[_Item, ...], np.ndarray, np.ndarray, list[int]]:
    """Folded items of a path; per step its item index and position inside the item; per
    item its iterations (1 for a plain role)."""
    items: list[_Item] = []
    step_item: list[int] = []
    step_inner: list[int] = []
    turns: list[int] = []
    i = 0
    while i < len(seq):
        for body in bodies:
            p = len(body)
            if seq[i : i + p] == body:
                k = 1
                while seq[i + k * p : i + (k + 1) * p] == body:
                    k += 1
                step_item += [len(items)] * (k * p)
                step_inner += list(range(p)) * k
                items.append(("loop", body))
                turns.append(k)
                i += k * p
                break
        else:
            step_item.append(len(items))
            step_inner.append(0)
            items.append(("role", (seq[i],)))
            turns.append(1)
            i += 1
    return tuple(items), np.array(step_item, dtype=np.int64), np.array(step_inner), turns


def pattern_text(steps: tuple[PatternStep | PatternLoop, ...]) -> str:
    """`planner -> explorer{3,4} -> (engineer -> reviewer){1,3}`: `{n}` for a fixed count
    n > 1, nothing for always 1."""

    def count(lo: int, hi: int) -> str:
        if lo == hi:
            return "" if lo == 1 else f"{{{lo}}}"
        return f"{{{lo},{hi}}}"

    def one(s: PatternStep | PatternLoop) -> str:
        if isinstance(s, PatternLoop):
            inner = " -> ".join(one(x) for x in s.loop)
            return f"({inner}){count(s.min_iterations, s.max_iterations)}"
        return f"{s.role}{count(s.min_repeat, s.max_repeat)}"

    return " -> ".join(one(s) for s in steps)
