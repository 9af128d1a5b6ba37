"""Build hook: the wheel ships the catalog and the example traces as package data.

The repository's `configs/` and `traces/` stay the one editable source; building copies
them into `planner/_shipped/` inside the wheel, where `planner.io.shipped` finds them
through importlib.resources when the package is installed without the repository.
Everything else is declared in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# folder -> the files of it that ship (the generator script and notes stay in the repo)
SHIPPED = {
    "configs": ("**/*.yaml",),
    "traces": ("*.parquet", "*.csv.gz", "*.jsonl.gz", "README.md", "mappings/*.yaml"),
}


class BuildWithData(build_py):
    """build_py, then copy the shipped folders into build_lib/planner/_shipped/."""

    def run(self) -> None:
        super().run()
        for folder, patterns in SHIPPED.items():
            target = Path(self.build_lib) / "planner" / "_shipped" / folder
            for pattern in patterns:
                for source in sorted((ROOT / folder).glob(pattern)):
                    dest = target / source.relative_to(ROOT / folder)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, dest)


setup(cmdclass={"build_py": BuildWithData})
