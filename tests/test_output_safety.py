"""Output is all or nothing: staged, validated and swapped; interrupts change nothing.

The interrupt tests run the real CLI in a subprocess and send SIGINT or SIGTERM while it
writes (the PLANNER_TEST_WRITE_DELAY_S hook slows the staging writes down) or while it
ingests and solves, then check that the old output is byte for byte intact and no staging
directory is left.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli import app
from planner.errors import PlannerError
from planner.io.outputs import WRITE_DELAY_ENV, OutputError, write_output

REPO = Path(__file__).resolve().parents[1]
PLAN_ARGS = ["plan", str(REPO / "traces"), "--gpus", "8"]


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def old_output(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A first plan's output (8 GPUs), the 'old' output the interrupted runs must keep."""
    out = tmp_path_factory.mktemp("first") / "out"
    result = CliRunner().invoke(app, [*PLAN_ARGS, "-o", str(out)])
    assert result.exit_code == 0, result.output
    return snapshot(out)


def restore(old: dict[str, bytes], out: Path) -> None:
    for name, data in old.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)


def start(out: Path, *extra: str, delay_s: float = 0.0) -> subprocess.Popen[str]:
    env = {**os.environ, WRITE_DELAY_ENV: str(delay_s)}
    # --gpus 16 changes the plan, so a completed run would change the output.
    return subprocess.Popen(
        [sys.executable, "-m", "planner", *PLAN_ARGS[:-1], "16", "-o", str(out), *extra],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_staging(parent: Path, proc: subprocess.Popen[str], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        staged = [p for p in parent.iterdir() if ".planner-staging-" in p.name]
        if staged and any(staged[0].rglob("*.yaml")):
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("the planner never started writing its staging directory")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_during_write_keeps_old_output(
    tmp_path: Path, old_output: dict[str, bytes], signum: int
) -> None:
    out = tmp_path / "out"
    restore(old_output, out)
    proc = start(out, delay_s=0.3)
    wait_for_staging(tmp_path, proc)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, stderr
    assert stderr.strip() == "interrupted, nothing changed"
    assert "Traceback" not in stderr
    assert snapshot(out) == old_output
    assert leftovers(tmp_path) == []


def wait_for_handlers(proc: subprocess.Popen[str], timeout_s: float = 60) -> None:
    """Until the process catches SIGTERM: planner's first instruction (planner/entry.py)
    installs its handlers; before that the interpreter itself is still starting."""
    status = Path(f"/proc/{proc.pid}/status")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            caught = next(
                int(line.split()[1], 16)
                for line in status.read_text().splitlines()
                if line.startswith("SigCgt:")
            )
        except (OSError, StopIteration):
            caught = 0
        if caught & (1 << (signal.SIGTERM - 1)):
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.005)
    raise AssertionError("planner never installed its signal handlers")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("after_s", [0.0, 0.5, 1.5, 2.5, 4.0])
def test_interrupt_early_or_during_solve_keeps_old_output(
    tmp_path: Path, old_output: dict[str, bytes], after_s: float
) -> None:
    """At start-up (importing the CLI), while reading traces, or while solving (whatever
    the timing hits on this machine), counted from planner's first instruction."""
    out = tmp_path / "out"
    restore(old_output, out)
    proc = start(out, delay_s=0.3)
    wait_for_handlers(proc)
    time.sleep(after_s)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert "Traceback" not in stderr
    assert proc.returncode == 130, (proc.returncode, stderr)
    assert stderr.strip() == "interrupted, nothing changed"
    assert snapshot(out) == old_output
    assert leftovers(tmp_path) == []


def test_failed_validation_keeps_old_output_and_no_staging(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(out, {"plan.yaml": "old\n"})

    def reject(staging: Path) -> None:
        raise OutputError("rejected")

    with pytest.raises(OutputError):
        write_output(out, {"plan.yaml": "new\n", "placement.yaml": "x\n"}, reject)
    assert snapshot(out) == {"plan.yaml": b"old\n"}
    assert leftovers(tmp_path) == []


def test_swap_replaces_the_whole_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(
        out,
        {
            "plan.yaml": "a\n",
            "manifests/kustomization.yaml": "resources: [deployment-a.yaml]\n",
            "manifests/deployment-a.yaml": "a\n",
        },
    )
    write_output(
        out,
        {
            "plan.yaml": "b\n",
            "manifests/kustomization.yaml": "resources: [deployment-b.yaml]\n",
            "manifests/deployment-b.yaml": "b\n",
        },
    )
    assert sorted(snapshot(out)) == [
        "manifests/deployment-b.yaml",
        "manifests/kustomization.yaml",
        "plan.yaml",
    ]
    assert leftovers(tmp_path) == []


def test_foreign_files_are_refused_not_deleted(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(out, {"plan.yaml": "a\n"})
    (out / "notes.txt").write_text("mine")
    result = CliRunner().invoke(app, [*PLAN_ARGS, "-o", str(out)])
    assert result.exit_code == 2
    assert "notes.txt" in result.output and "did not write" in result.output
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "plan.yaml").read_text() == "a\n"


def test_output_path_that_is_a_file_is_one_error_line(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("x")
    result = CliRunner().invoke(app, [*PLAN_ARGS, "-o", str(target)])
    assert result.exit_code == 2
    assert result.output.startswith("Error: ") and "not a directory" in result.output
    assert target.read_text() == "x"


def test_unwritable_parent_is_a_permission_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    parent = tmp_path / "ro"
    parent.mkdir(mode=0o500)
    with pytest.raises(PlannerError, match="permission denied"):
        write_output(parent / "out", {"plan.yaml": "x\n"})


def test_output_modes_follow_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_output(
            tmp_path / "out", {"plan.yaml": "x\n", "manifests/kustomization.yaml": "y: 1\n"}
        )
    finally:
        os.umask(old)
    mode = stat.S_IMODE
    assert mode((tmp_path / "out").stat().st_mode) == 0o750
    assert mode((tmp_path / "out" / "manifests").stat().st_mode) == 0o750
    assert mode((tmp_path / "out" / "plan.yaml").stat().st_mode) == 0o640


def test_stale_staging_of_a_dead_process_is_removed(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = tmp_path / f".out.planner-staging-{dead.stdout.strip()}-abcd"
    (stale / "manifests").mkdir(parents=True)
    write_output(tmp_path / "out", {"plan.yaml": "x\n"})
    assert leftovers(tmp_path) == []


def test_atomic_single_files_follow_umask(tmp_path: Path) -> None:
    from planner.io.atomic import write_text_atomic

    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "apl.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "apl.json").stat().st_mode) == 0o644


def test_interrupt_message_says_what_changed() -> None:
    from planner.io.signals import Interrupted, interrupts_raise, note_change

    with pytest.raises(Interrupted) as first, interrupts_raise():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
    assert first.value.message == "interrupted, nothing changed"
    assert first.value.exit_code == 143
    with pytest.raises(Interrupted) as second, interrupts_raise():
        note_change("some cluster changes may already be applied")
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
    assert second.value.message == "interrupted; some cluster changes may already be applied"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_current_directory_is_never_swapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputError, match="cannot be the current directory"):
        write_output(Path("."), {"plan.yaml": "x\n"})
    assert list(tmp_path.iterdir()) == []
