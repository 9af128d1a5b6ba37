"""A plan's output directory (plan.yaml, placement.yaml, manifests/), all or nothing.

`write_plan_outputs` (and the general `write_output`) writes every file into a sibling
staging directory, checks it (each file reads back; the caller's validator re-reads the
plan), and swaps it for the old output in one step: Linux `renameat2(RENAME_EXCHANGE)`,
or two renames with signals deferred where that call is missing. The old output stays
untouched until the swap and is removed after it. On any error or interrupt the staging
directory is removed and the old output is what it was. Files are created with the
process's umask (0644/0755 under the usual 022).

Entries in an existing output directory that planner did not write are never deleted:
`write_output` refuses (OutputError) and names them. Planner's entries are plan.yaml,
placement.yaml and manifests/ holding only `kustomization.yaml` and the files it lists.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import secrets
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from planner.errors import PlannerError
from planner.io.signals import check_interrupted, note_change, signals_deferred

if TYPE_CHECKING:
    from planner.catalog import Catalog
    from planner.types.cluster import Cluster

OUTPUT_ENTRIES = ("plan.yaml", "placement.yaml", "manifests")
MANIFESTS_DIR = "manifests"
KUSTOMIZATION = "kustomization.yaml"
_STAGING = ".planner-staging-"
# Test hook: seconds to sleep after each file written to staging, so tests can interrupt
# a write in progress (tests/test_output_safety.py).
WRITE_DELAY_ENV = "PLANNER_TEST_WRITE_DELAY_S"


class OutputError(PlannerError):
    """The output directory cannot be written as asked."""


def write_output(
    directory: Path,
    files: Mapping[str, str],
    validate: Callable[[Path], None] | None = None,
) -> Path:
    """Replace `directory` with exactly `files` (relative path -> text), in one step.

    Args:
        directory: the output directory (created if missing).
        files: every file of the new output, by path relative to `directory`.
        validate: called on the complete staging directory before the swap; raising
            keeps the old output.

    Returns:
        `directory`.

    Raises:
        OutputError: `directory` is a file, holds entries planner did not write, or
            cannot be created or written (permission, disk full).
    """
    directory = Path(directory)
    _check_target(directory)
    parent = directory.absolute().parent
    _remove_stale_staging(parent, directory.name)
    staging = parent / f".{directory.name}{_STAGING}{os.getpid()}-{secrets.token_hex(4)}"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(staging)  # mode 0777 & ~umask, like any directory the user creates
    except OSError as exc:
        raise _os_error(exc, directory) from None
    try:
        _write_all(staging, files)
        _check_staged(staging, files)
        if validate is not None:
            validate(staging)
        with signals_deferred():
            check_interrupted()  # one that a library swallowed still stops the swap
            _swap(staging, directory)
            note_change(f"{directory} holds the complete new output")
    except OSError as exc:
        raise _os_error(exc, directory) from None
    finally:
        with signals_deferred():
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return directory


def foreign_entries(directory: Path) -> list[str]:
    """Entries of an existing output directory that planner did not write, sorted."""
    foreign = [p.name for p in directory.iterdir() if p.name not in OUTPUT_ENTRIES]
    manifests = directory / MANIFESTS_DIR
    if manifests.is_symlink() or manifests.is_file():
        foreign.append(MANIFESTS_DIR)
    elif manifests.is_dir():
        listed = _kustomization_resources(manifests / KUSTOMIZATION)
        for path in manifests.iterdir():
            if path.name != KUSTOMIZATION and (path.name not in listed or not path.is_file()):
                foreign.append(f"{MANIFESTS_DIR}/{path.name}")
    for name in ("plan.yaml", "placement.yaml"):
        path = directory / name
        if path.exists() and not path.is_file():
            foreign.append(name)
    return sorted(foreign)


def _kustomization_resources(path: Path) -> set[str]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return set()
    resources = data.get("resources") if isinstance(data, dict) else None
    return {str(r) for r in resources} if isinstance(resources, list) else set()


def _check_target(directory: Path) -> None:
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        kind = "a symbolic link" if directory.is_symlink() else "a file"
        raise OutputError(
            f"{directory}: the output path is {kind}, not a directory; pass a directory "
            "path to -o/--output"
        )
    if not directory.exists():
        return
    here = Path.cwd().resolve()
    if directory.resolve() in (here, *here.parents):
        # Swapping it would leave the shell in a deleted directory.
        raise OutputError(
            f"{directory}: the output directory is replaced whole, so it cannot be the current "
            "directory or one above it; pass a subdirectory, e.g. -o out"
        )
    try:
        foreign = foreign_entries(directory)
    except OSError as exc:
        raise _os_error(exc, directory) from None
    if foreign:
        shown = ", ".join(foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        raise OutputError(
            f"{directory}: holds {shown}, which planner did not write; the output directory "
            "is replaced whole, so move them elsewhere or pass another -o/--output"
        )


def _write_all(staging: Path, files: Mapping[str, str]) -> None:
    delay_s = float(os.environ.get(WRITE_DELAY_ENV) or 0)
    for name, text in sorted(files.items()):
        path = staging / name
        if path.parent != staging:
            path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="utf-8", newline="") as handle:
            handle.write(text)
        if delay_s:
            time.sleep(delay_s)


def _check_staged(staging: Path, files: Mapping[str, str]) -> None:
    """Every file reads back as written, and the kustomization lists exactly the manifests."""
    for name, text in files.items():
        if (staging / name).read_bytes() != text.encode("utf-8"):
            raise OutputError(f"{staging / name}: read back differently; check the disk")
    manifests = staging / MANIFESTS_DIR
    if manifests.is_dir():
        listed = _kustomization_resources(manifests / KUSTOMIZATION)
        present = {p.name for p in manifests.iterdir()} - {KUSTOMIZATION}
        if listed != present:
            # The renderer and the writer disagree: a bug, not the user's input.
            raise RuntimeError(f"kustomization lists {sorted(listed ^ present)} wrongly")


def _swap(staging: Path, directory: Path) -> None:
    """Put `staging` at `directory`; the old directory ends up at `staging`."""
    if not directory.exists():
        os.rename(staging, directory)
        return
    if _exchange(staging, directory):
        return
    # No renameat2 (non-Linux, old libc, some filesystems): two renames with signals
    # deferred by the caller; a crash between them leaves the old output at `old`.
    old = staging.with_name(staging.name + "-old")
    os.rename(directory, old)
    os.rename(staging, directory)
    os.rename(old, staging)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2); False when unsupported."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(
        _AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), ctypes.c_uint(_RENAME_EXCHANGE)
    )
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _remove_stale_staging(parent: Path, name: str) -> None:
    """Staging directories left by a planner process that no longer runs (killed -9)."""
    prefix = f".{name}{_STAGING}"
    with suppress(OSError):
        for path in parent.glob(f"{prefix}*"):
            pid_text = path.name[len(prefix) :].split("-", 1)[0]
            if pid_text.isdigit() and not _alive(int(pid_text)):
                shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _os_error(exc: OSError, directory: Path) -> OutputError:
    where = exc.filename or directory
    if isinstance(exc, PermissionError):
        return OutputError(
            f"{where}: permission denied writing the output; choose a writable -o/--output"
        )
    if exc.errno == errno.ENOSPC:
        return OutputError(f"{where}: no space left on the device; free space or pass another -o")
    return OutputError(f"{where}: cannot write the output ({exc.strerror or exc})")


def write_plan_outputs(
    output: Path,
    files: Mapping[str, str],
    objects: Sequence[object],
    check: Callable[[Path], None] | None = None,
) -> Path:
    """Replace `output` with the top-level `files` (name -> text: plan.yaml,
    placement.yaml) and manifests/ holding one file per object, in one step.

    Before the swap the staged manifests are read back through their kustomization and
    `check` (see `plan_check`) runs on the staged directory.

    Returns:
        The manifests directory.

    Raises:
        OutputError: see `write_output`.
        ConfigError: two objects would be written under one file name.
    """
    from planner.io.manifests import manifest_files, read_manifests

    def validate(staging: Path) -> None:
        read_manifests(staging / MANIFESTS_DIR)
        if check is not None:
            check(staging)

    every = dict(files)
    every.update(
        {f"{MANIFESTS_DIR}/{name}": text for name, text in manifest_files(objects).items()}
    )
    write_output(output, every, validate)
    return output / MANIFESTS_DIR


def plan_check(catalog: Catalog, cluster: Cluster) -> Callable[[Path], None]:
    """A staged-output check: plan.yaml reads back and passes the plan validator."""

    def check(staging: Path) -> None:
        from planner.io.plan_file import PLAN_FILE, read_plan
        from planner.search.validate import validate_plan

        validate_plan(read_plan(staging / PLAN_FILE), catalog, cluster, PLAN_FILE)

    return check
