"""The committed example output in manifests/ is exactly what `make examples` produces."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli import app

# Keep in step with the Makefile's `examples` target.
_COMMON = ["--hf-token-secret", "hf-token", "--replan-traces-claim", "planner-traces"]
EXAMPLES = {
    "h100x8": ["--gpus", "8", *_COMMON],
    "cluster": [
        "--cluster",
        "configs/cluster.yaml",
        *_COMMON,
        "--gateway",
        "--autoscaler",
        "hpa",
    ],
}


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_committed_example_matches_a_fresh_plan(
    name: str, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)  # the documented command runs from the repository root
    out = tmp_path / name
    result = CliRunner().invoke(app, ["plan", "traces/", *EXAMPLES[name], "-o", str(out)])
    assert result.exit_code == 0, result.output
    committed = _files(repo / "manifests" / name)
    fresh = _files(out)
    assert sorted(committed) == sorted(fresh), "run `make examples` and commit manifests/"
    for path, data in fresh.items():
        assert committed[path] == data, f"manifests/{name}/{path} differs: run `make examples`"
