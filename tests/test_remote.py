from __future__ import annotations

from pathlib import Path

import pytest

from planner.errors import InputError
from planner.io.remote import fetch_traces


def test_local_path_is_used_in_place(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n")
    assert fetch_traces(str(tmp_path), tmp_path / "scratch") == tmp_path


def test_url_directory_is_copied(tmp_path: Path) -> None:
    src = tmp_path / "bucket" / "traces"
    (src / "day1").mkdir(parents=True)
    (src / "day1" / "a.csv").write_text("x\n")
    (src / "b.jsonl").write_text("{}\n")
    got = fetch_traces(f"file://{src}", tmp_path / "scratch")
    assert sorted(p.relative_to(got).as_posix() for p in got.rglob("*") if p.is_file()) == [
        "b.jsonl",
        "day1/a.csv",
    ]
    assert (got / "day1" / "a.csv").read_text() == "x\n"


def test_url_single_file(tmp_path: Path) -> None:
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    got = fetch_traces(f"file://{tmp_path}/t.parquet", tmp_path / "scratch")
    assert got.name == "t.parquet" and got.read_bytes() == b"PAR1"


@pytest.mark.parametrize("where", ["file:///nonexistent/x", "nosuchscheme://b/k"])
def test_bad_urls(tmp_path: Path, where: str) -> None:
    with pytest.raises(InputError, match=where.split(":")[0]):
        fetch_traces(where, tmp_path)


def test_missing_local(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such trace"):
        fetch_traces(str(tmp_path / "nope"), tmp_path)
