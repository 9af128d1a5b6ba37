"""Run-time data that ships with planner: the catalog (`configs/`) and example traces.

In a checkout or an editable install the repository's folders beside the package are
used (they are the source, edited in place). An installed wheel carries copies under
`planner/_shipped/` (see setup.py), found through importlib.resources, so
`planner plan` works from any directory without the repository.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from planner.errors import ConfigError

_REPO = Path(__file__).resolve().parents[2]


def shipped_dir(name: str) -> Path | None:
    """The folder `name` ("configs" or "traces"): the repository's, else the package's."""
    repo = _REPO / name
    if repo.is_dir() and (_REPO / "planner").is_dir():
        return repo
    packaged = resources.files("planner").joinpath("_shipped", name)
    # A wheel installs as plain files; a zipped install (no real path) ships no data.
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return None


def example_traces() -> Path:
    """The shipped example traces (`planner plan`'s default input).

    Raises:
        ConfigError: neither the repository's traces/ nor the package's copy exists.
    """
    found = shipped_dir("traces")
    if found is None:
        raise ConfigError(
            "no example traces shipped with this installation; pass a trace file or "
            "directory: planner plan TRACES"
        )
    return found
