"""Prefix reuse evidence: block hashes in every format, the fallbacks, and their precedence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from planner.aggregate import aggregate_pipeline
from planner.aggregate.reuse import SESSION_BLOCK_TOKENS, prefix_references
from planner.errors import InputError
from planner.io.traces import load_mapping, read_calls

REPO = Path(__file__).resolve().parents[1]
MOONCAKE = REPO.parent / "shared" / "data" / "traces" / "mooncake_conversation_trace.jsonl"

ROWS = [
    # workflow, start, input, hashes: the second call repeats the first two blocks.
    ("w1", 0.0, 40, [11, 12, 13, 14]),
    ("w2", 1.0, 30, [11, 12, 21]),
]


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "workflow_id": [r[0] for r in ROWS],
            "model": "m",
            "start_time": [r[1] for r in ROWS],
            "end_time": [r[1] + 1 for r in ROWS],
            "input_tokens": [r[2] for r in ROWS],
            "output_tokens": 5,
            "prefix_hashes": [r[3] for r in ROWS],
            "prefix_block_tokens": 10,
        }
    )


def _check_hashes(path: Path) -> None:
    calls = read_calls(path)
    got = [list(h) for h in calls.frame["prefix_hashes"]]
    assert got == [r[3] for r in ROWS]
    assert list(calls.frame["prefix_block_tokens"]) == [10.0, 10.0]
    (refs,) = prefix_references(calls).values()
    assert refs.source == "hashes" and refs.block_tokens == 10 and len(refs) == 7
    # Blocks 11 and 12 of the second call were sent before: 20 of 70 input tokens.
    assert refs.potential() == pytest.approx(20 / 70)


def test_hashes_read_from_jsonl_csv_and_parquet(tmp_path: Path) -> None:
    frame = _frame()
    jsonl = tmp_path / "calls.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict(orient="records")))
    _check_hashes(jsonl)
    csv = tmp_path / "calls.csv"
    frame.assign(prefix_hashes=[" ".join(map(str, r[3])) for r in ROWS]).to_csv(csv, index=False)
    _check_hashes(csv)
    parquet = tmp_path / "calls.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), parquet)
    _check_hashes(parquet)


def test_hex_string_hashes_and_a_mapping_block_size(tmp_path: Path) -> None:
    frame = _frame().drop(columns=["prefix_block_tokens"])
    frame["hashes"] = [["0a", "0b"], ["0a", "ff"]]
    frame = frame.drop(columns=["prefix_hashes"])
    path = tmp_path / "calls.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict(orient="records")))
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "schema_version: 1\nprefix_block_tokens: 16\ncolumns:\n  prefix_hashes: hashes\n"
    )
    calls = read_calls(path, load_mapping(mapping))
    assert [list(h) for h in calls.frame["prefix_hashes"]] == [[10, 11], [10, 255]]
    assert set(calls.frame["prefix_block_tokens"]) == {16.0}


def test_hashes_without_a_block_size_name_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    _frame().drop(columns=["prefix_block_tokens"]).assign(prefix_hashes="1 2").to_csv(
        path, index=False
    )
    with pytest.raises(InputError, match=r"line 2, column 'prefix_block_tokens'.*--mapping"):
        read_calls(path)


def test_unreadable_hashes_are_reported_with_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    _frame().assign(prefix_hashes=["1 2", "1 x!"]).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"line 3, column 'prefix_hashes'"):
        read_calls(path)


def _session_frame(cached: bool) -> pd.DataFrame:
    # One agent calls the model three times in w1 (its context grows); w2 calls once.
    return pd.DataFrame(
        {
            "workflow_id": ["w1", "w1", "w1", "w2"],
            "agent": ["a", "a", "a", "a"],
            "model": "m",
            "start_time": [0.0, 10.0, 20.0, 5.0],
            "end_time": [1.0, 11.0, 21.0, 6.0],
            "input_tokens": [1000, 1500, 900, 700],
            "output_tokens": [300, 100, 50, 10],
            "cached_input_tokens": [0, 1200, 800, 0] if cached else [np.nan] * 4,
        }
    )


def test_session_structure_bounds_the_reusable_prefix(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    _session_frame(cached=True).to_csv(path, index=False)
    (refs,) = prefix_references(read_calls(path)).values()
    assert refs.source == "session"  # session structure beats provider-reported tokens
    b = SESSION_BLOCK_TOKENS
    # Call 2 reuses min(1500, 1000 + 300) tokens of call 1, but only call 1's 15 full
    # input blocks were sent before (its output was never a prompt); call 3 reuses
    # min(900, 1500 + 100) = 900 tokens: 14 of call 2's blocks.
    reused = (min(1300, 1000) // b) * b + (900 // b) * b
    assert refs.potential() == pytest.approx(reused / (1000 + 1500 + 900 + 700))


def test_provider_tokens_are_the_last_resort(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    frame = _session_frame(cached=True)
    frame["agent"] = ["a", "b", "c", "a"]  # no agent calls twice: no session structure
    frame.to_csv(path, index=False)
    calls = read_calls(path)
    (refs,) = prefix_references(calls).values()
    assert refs.source == "provider" and len(refs) == 0
    assert refs.potential() == pytest.approx(2000 / 4100)
    apl = aggregate_pipeline(calls)
    (model,) = apl.workflows[0].models
    assert model.prefix_reuse_source == "provider"
    assert model.prefix_reuse_potential == pytest.approx(2000 / 4100)


def test_no_evidence_at_all(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    frame = _session_frame(cached=False)
    frame["agent"] = ["a", "b", "c", "a"]
    frame.drop(columns=["cached_input_tokens"]).to_csv(path, index=False)
    (refs,) = prefix_references(read_calls(path)).values()
    assert refs.source == "none" and refs.potential() == 0.0


def test_mooncake_hash_ids_are_prefix_hashes() -> None:
    if not MOONCAKE.exists():
        pytest.skip(f"real trace not present: {MOONCAKE} (the shared/ data beside the repo)")
    mapping = load_mapping(REPO / "traces" / "mappings" / "mooncake_conversation.yaml")
    calls = read_calls(MOONCAKE, mapping)
    (refs,) = prefix_references(calls).values()
    assert refs.source == "hashes" and refs.block_tokens == 512 and refs.calls == 12031
    # Independently: token share of blocks whose id appeared in an earlier request.
    seen: set[int] = set()
    reused = total = 0
    for line in MOONCAKE.read_text().splitlines():
        record = json.loads(line)
        length = record["input_length"]
        total += length
        for i, block in enumerate(record["hash_ids"]):
            if block in seen:
                reused += min(512, max(0, length - 512 * i))
        seen.update(record["hash_ids"])
    assert refs.potential() == pytest.approx(reused / total, rel=1e-9)


def test_many_references_are_grouped_by_their_last_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import planner.aggregate.reuse as reuse

    path = tmp_path / "calls.jsonl"
    _check_hashes(_write(path))
    monkeypatch.setattr(reuse, "MAX_REFERENCES", 4)  # 7 references: groups of 2
    (refs,) = prefix_references(read_calls(path)).values()
    assert refs.block_tokens == 20 and len(refs) == 4
    # Call 1: [11 12][13 14] -> ids of 12 and 14; call 2: [11 12][21] -> 12 and 21.
    assert list(refs.tokens) == [20.0, 20.0, 20.0, 10.0]
    assert refs.potential() == pytest.approx(20 / 70)  # the shared group still repeats


def _write(path: Path) -> Path:
    frame = _frame()
    path.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict(orient="records")))
    return path
