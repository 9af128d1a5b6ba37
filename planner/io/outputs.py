"""A plan's output directory: plan.yaml, placement.yaml and manifests/."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from planner.io.atomic import write_text_atomic
from planner.io.manifests import write_manifests

MANIFESTS_DIR = "manifests"


def write_plan_outputs(output: Path, files: Mapping[str, str], objects: Sequence[object]) -> Path:
    """Write the top-level `files` (name -> text: plan.yaml, placement.yaml) and
    OUTPUT/manifests/ with one file per object; return the manifests directory."""
    for name, text in sorted(files.items()):
        write_text_atomic(output / name, text)
    target = output / MANIFESTS_DIR
    write_manifests(target, objects)
    return target
