"""Shared fixtures: paths to the repository and to the real public data beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data: real traces and measured vLLM points (present in CI)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"needs the real public data at {SHARED_DATA} (the shared/ folder beside the "
            "repository; CI has it, a user's clone does not)"
        )
    return SHARED_DATA
