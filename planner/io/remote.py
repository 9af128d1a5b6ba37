"""Traces from a mounted path or an object-store URL, for `planner replan` in its CronJob.

URLs (`s3://bucket/prefix`, `gs://...`, `abfs://...`, `hdfs://...`, `file:///...`) are
opened with `pyarrow.fs.FileSystem.from_uri`, so credentials come from the usual
environment (AWS_* variables, GOOGLE_APPLICATION_CREDENTIALS, instance roles), and
copied into a local directory that the trace reader then reads like any other.
"""

from __future__ import annotations

from pathlib import Path

from planner.errors import InputError


def is_url(location: str) -> bool:
    return "://" in location


def fetch_traces(location: str, scratch: Path) -> Path:
    """A local path holding the traces at `location` (copied under `scratch` if remote).

    Raises:
        InputError: the URL cannot be opened or holds no files.
    """
    if not is_url(location):
        path = Path(location)
        if not path.exists():
            raise InputError(f"{path}: no such trace file or directory")
        return path
    import pyarrow as pa
    import pyarrow.fs as pafs

    try:
        fs, root = pafs.FileSystem.from_uri(location)
        info = fs.get_file_info(root)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise InputError(f"{location}: cannot open ({exc})") from None
    if info.type == pafs.FileType.NotFound:
        raise InputError(f"{location}: not found")
    dest = scratch / "traces"
    dest.mkdir(parents=True, exist_ok=True)
    if info.type == pafs.FileType.File:
        target = dest / Path(root).name
        pafs.copy_files(root, str(target), source_filesystem=fs)
        return target
    pafs.copy_files(root, str(dest), source_filesystem=fs)
    if not any(p.is_file() for p in dest.rglob("*")):
        raise InputError(f"{location}: the directory holds no files")
    return dest
