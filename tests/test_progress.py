"""Progress: stage timings logged (shown with -v); a rich status line only on a terminal
and never with --json or into a pipe."""

from __future__ import annotations

import logging
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from planner.progress import listening, stage

REPO = Path(__file__).resolve().parents[1]


def test_stage_logs_its_time_and_tells_listeners(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[str, float | None]] = []
    with (
        caplog.at_level(logging.INFO, logger="planner.progress"),
        listening(lambda name, s: seen.append((name, s))),
        stage("search"),
    ):
        pass
    assert seen[0] == ("search", None) and seen[1][0] == "search" and seen[1][1] is not None
    assert caplog.records[-1].getMessage().startswith("search: ")


def run_on_terminal(*args: str, cwd: Path) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal; stdout stays a pipe."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "planner", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "120"},
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    stdout, _ = proc.communicate(timeout=120)
    os.close(master)
    return proc.returncode, stdout.decode(), b"".join(chunks).decode(errors="replace")


def test_terminal_shows_a_status_line(tmp_path: Path) -> None:
    code, stdout, terminal = run_on_terminal("plan", "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert code == 0, terminal
    assert "planner: " in terminal  # the rich status line
    assert "Plan (min-latency) written" in stdout


def test_json_and_pipes_stay_quiet(tmp_path: Path) -> None:
    code, stdout, terminal = run_on_terminal(
        "plan", "--json", "-o", str(tmp_path / "out"), cwd=tmp_path
    )
    assert code == 0, terminal
    assert "planner: " not in terminal
    import json

    json.loads(stdout)
    piped = subprocess.run(
        [sys.executable, "-m", "planner", "plan", "-o", str(tmp_path / "out2")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert piped.stderr == ""


def test_verbose_logs_each_stage_time(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "planner", "-v", "plan", "-o", str(tmp_path / "out")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    for name in ("ingest", "aggregate", "profiles", "search", "place and render", "write"):
        assert f"planner.progress: {name}: " in proc.stderr
