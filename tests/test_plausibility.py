"""Implausible traces are caught: time units, duplicates, absurd token counts, context
limits; real causes are named (ISO timestamps with zones, permissions, 2^63 tokens)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from planner.cli import app
from planner.errors import InputError
from planner.io.trace_common import unreadable
from planner.io.traces import read_calls, trace_files

HEADER = "workflow_id,call_id,model,start_time,end_time,input_tokens,output_tokens\n"
MODEL = "Qwen3-32B"


def trace(rows: list[tuple[str, str, float, float, int, int]], model: str = MODEL) -> str:
    lines = [f"{w},{c},{model},{s},{e},{i},{o}\n" for w, c, s, e, i, o in rows]
    return HEADER + "".join(lines)


def seconds_rows(
    scale: float = 1.0, offset: float = 0.0
) -> list[tuple[str, str, float, float, int, int]]:
    """Twenty workflows of two LLM calls, ~1.5 s each for 150 tokens (times x scale)."""
    rows = []
    for w in range(20):
        t = offset + 10.0 * w
        rows.append((f"w{w}", "a", t * scale, (t + 1.5) * scale, 800, 150))
        rows.append((f"w{w}", "b", (t + 2) * scale, (t + 3.2) * scale, 900, 120))
    return rows


def test_milliseconds_read_as_seconds_is_an_error_naming_file_and_unit(tmp_path: Path) -> None:
    path = tmp_path / "ms.csv"
    path.write_text(trace(seconds_rows(scale=1000.0)))
    with pytest.raises(InputError, match=r"ms.csv: times look like milliseconds, not seconds") as e:
        read_calls(path)
    assert "time_unit: ms" in str(e.value)


def test_epoch_milliseconds_are_recognised(tmp_path: Path) -> None:
    path = tmp_path / "epoch.csv"
    path.write_text(trace(seconds_rows(scale=1000.0, offset=1.7e9)))
    with pytest.raises(InputError, match=r"milliseconds.*Unix time"):
        read_calls(path)


def test_the_right_unit_in_a_mapping_reads_the_same_trace(tmp_path: Path) -> None:
    path = tmp_path / "ms.csv"
    path.write_text(trace(seconds_rows(scale=1000.0)))
    mapping = tmp_path / "m.yaml"
    mapping.write_text("schema_version: 1\ntime_unit: ms\n")
    from planner.io.traces import load_mapping

    frame = read_calls(path, load_mapping(mapping)).frame
    assert (frame["end_s"] - frame["start_s"]).max() == pytest.approx(1.5)


def test_a_directory_mixing_units_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a_seconds.csv").write_text(trace(seconds_rows()))
    ms_rows = [(f"x{w}", c, s, e, i, o) for w, c, s, e, i, o in seconds_rows(scale=1000.0)]
    (tmp_path / "b_millis.csv").write_text(trace(ms_rows))
    with pytest.raises(
        InputError, match=r"b_millis.csv: times look like milliseconds while .*a_seconds.csv"
    ):
        read_calls(tmp_path)


def test_plausible_seconds_pass(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(trace(seconds_rows(offset=1.7e9)))
    assert len(read_calls(path)) == 40


def test_exact_duplicate_rows_are_an_error_or_skipped_with_counts(tmp_path: Path) -> None:
    rows = seconds_rows()
    path = tmp_path / "dup.csv"
    path.write_text(trace([*rows, rows[3], rows[7]]))
    with pytest.raises(InputError, match=r"2 duplicated call\(s\).*workflow 'w1', call 'b'"):
        read_calls(path)
    calls = read_calls(path, skip_bad_rows=True)
    assert len(calls) == 40
    assert calls.skipped_rows == {"duplicate: exact repeat of an earlier row": 2}


def test_repeated_call_ids_are_an_error(tmp_path: Path) -> None:
    rows = seconds_rows()
    w, c, s, e, i, o = rows[0]
    path = tmp_path / "ids.csv"
    path.write_text(trace([*rows, (w, c, s + 5, e + 5, i, o)]))
    with pytest.raises(
        InputError, match=r"1 call_id repeated within a workflow.*workflow 'w0', call 'a'"
    ):
        read_calls(path)


def test_same_file_twice_through_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(trace(seconds_rows()))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "again.csv").symlink_to(tmp_path / "t.csv")
    with pytest.raises(InputError, match=r"again.csv \(the same file as .*t.csv, through a link\)"):
        read_calls(tmp_path)
    calls = read_calls(tmp_path, skip_bad_rows=True)
    assert len(calls) == 40 and any("through a link" in n for n in calls.notes)


def test_unreadable_subdirectory_is_named(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every directory")
    (tmp_path / "t.csv").write_text(trace(seconds_rows()))
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "more.csv").write_text(trace(seconds_rows()))
    locked.chmod(0)
    try:
        with pytest.raises(InputError, match="permission denied"):
            trace_files(tmp_path)
        skipped: list[str] = []
        assert trace_files(tmp_path, skipped=skipped) == [tmp_path / "t.csv"]
        assert "locked" in skipped[0]
    finally:
        locked.chmod(0o755)


def test_unreadable_file_is_a_permission_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.csv"
    path.write_text(trace(seconds_rows()))
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if Path(p) == path else real_access(p, m))
    with pytest.raises(InputError, match=r"t.csv: permission denied"):
        read_calls(path)
    message = str(unreadable(path, PermissionError(13, "Permission denied")))
    assert "permission denied" in message and "corrupt" not in message


@pytest.mark.parametrize(
    "tokens", ["1000000000000", "1e12", "9223372036854775808", "18446744073709551616"]
)
def test_absurd_token_count_names_the_row_and_column(tmp_path: Path, tokens: str) -> None:
    rows = seconds_rows()
    path = tmp_path / "t.csv"
    text = trace(rows).splitlines(keepends=True)
    fields = text[5].split(",")
    fields[5] = tokens  # input_tokens of line 6 (the header is line 1)
    text[5] = ",".join(fields)
    path.write_text("".join(text))
    with pytest.raises(
        InputError, match=r"t.csv, line 6, column 'input_tokens': implausibly large"
    ):
        read_calls(path)


@pytest.mark.parametrize(
    "stamp",
    [
        "2025-03-01T10:00:00+02:00",
        "2025-03-01T10:00:00Z",
        "2025-03-01 10:00:00-0800",
        "2025-03-01T10:00:00,250+01:00",
        "2025-03-01T10:00:00+01:00[Europe/Paris]",
        "2025-03-01T10:00:00 UTC",
    ],
)
def test_iso_timestamps_with_zones_are_read(tmp_path: Path, stamp: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "workflow_id,model,start_time,latency_s,input_tokens,output_tokens\n"
        f'w,m,"{stamp}",1.5,10,20\n'
    )
    start = read_calls(path).frame["start_s"].iloc[0]
    expected = pd.Timestamp(stamp.split("[")[0].replace(",", ".").replace(" UTC", "Z"))
    assert start == pytest.approx(expected.timestamp())


def test_requests_over_max_model_len_are_counted_in_one_note(tmp_path: Path) -> None:
    rows = seconds_rows(offset=1.7e9)
    long = [(w, c, s, e, 40_000 if w in ("w1", "w2") else i, o) for w, c, s, e, i, o in rows]
    (tmp_path / "t.csv").write_text(trace(long))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["plan", str(tmp_path / "t.csv"), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    import json

    notes = json.loads(result.output)["notes"]
    over = [n for n in notes if "max_model_len" in n]
    assert len(over) == 1
    assert over[0].startswith("Qwen3-32B: 4 of 40 requests (10.0%) exceed max_model_len 32,768")


def test_linked_subdirectory_is_read_and_a_link_loop_is_named(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "t.csv").write_text(trace(seconds_rows()))
    traces = tmp_path / "traces"
    traces.mkdir()
    (traces / "linked").symlink_to(elsewhere, target_is_directory=True)
    assert trace_files(traces) == [traces / "linked" / "t.csv"]
    (elsewhere / "loop").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(InputError, match=r"loop \(already read, through a link\)"):
        trace_files(traces)


def test_plan_with_skip_bad_rows_reads_a_linked_duplicate_once(tmp_path: Path) -> None:
    traces = tmp_path / "traces"
    traces.mkdir()
    (traces / "t.csv").write_text(trace(seconds_rows(offset=1.7e9)))
    (traces / "again.csv").symlink_to(traces / "t.csv")
    out = tmp_path / "out"
    failed = CliRunner().invoke(app, ["plan", str(traces), "-o", str(out)])
    assert failed.exit_code == 2 and "through a link" in failed.output
    args = ["plan", str(traces), "--skip-bad-rows", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "through a link" in result.output  # the note, in the summary
