"""The CLI shell, error reporting and the config parser."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest
from typer.testing import CliRunner

from planner import __version__
from planner.cli import app
from planner.config import parse_config
from planner.errors import ConfigError, did_you_mean


def test_version_flag_prints_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"planner {__version__}"


def test_help_lists_ingest() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "ingest" in result.output


def test_expected_error_is_one_line_with_exit_code(tmp_path) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "nope"
    proc = subprocess.run(
        [sys.executable, "-m", "planner", "ingest", str(missing)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "Traceback" not in proc.stderr


@dataclass(frozen=True)
class _Inner:
    size: int


@dataclass(frozen=True)
class _Conf:
    name: str
    ratio: float
    inner: _Inner
    tags: tuple[str, ...] = ()
    maybe: int | None = None


def test_parse_config_builds_nested_dataclasses() -> None:
    conf = parse_config(
        {"schema_version": 1, "name": "a", "ratio": 1, "inner": {"size": 3}, "tags": ["x"]},
        _Conf,
        "c.yaml",
    )
    assert conf == _Conf("a", 1.0, _Inner(3), ("x",), None)


def test_parse_config_unknown_key_suggests_the_close_name() -> None:
    with pytest.raises(
        ConfigError, match=r"c.yaml: unknown key 'ratoi' \(did you mean \"ratio\"\?\)"
    ):
        parse_config(
            {"schema_version": 1, "name": "a", "ratoi": 1, "inner": {"size": 3}}, _Conf, "c.yaml"
        )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "a", "ratio": 1, "inner": {"size": 3}}, "schema_version must be 1"),
        ({"schema_version": 1, "ratio": 1, "inner": {"size": 3}}, "missing required key 'name'"),
        (
            {"schema_version": 1, "name": "a", "ratio": "x", "inner": {"size": 3}},
            "must be a number",
        ),
        ({"schema_version": 1, "name": "a", "ratio": 1, "inner": {"size": 1.5}}, "whole number"),
        (
            {"schema_version": 1, "name": "a", "ratio": 1, "inner": {"sise": 1}},
            'did you mean "size"',
        ),
    ],
)
def test_parse_config_rejects_bad_values(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data, _Conf, "c.yaml")


def test_did_you_mean() -> None:
    assert did_you_mean("input_tokns", ["input_tokens", "output_tokens"]) == (
        ' (did you mean "input_tokens"?)'
    )
    assert did_you_mean("zzz", ["input_tokens"]) == ""
