"""The shell and Python a shared-GPU pod runs, executed for real against stand-in servers.

A fake `vllm` on PATH answers `/health` on the port it is given, so the rendered launcher
(start each server after the previous one is healthy, exit when any exits) and the
rendered readiness probe (every server of the pod) run exactly as written in the pod.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from deploy_helpers import H100, make_catalog, make_plan, named_cluster, plan_text

from planner.io.manifests import to_dict
from planner.place import place
from planner.render.objects import render_manifests
from planner.render.settings import RenderOptions
from planner.types.plan import Allocation

FAKE_VLLM = """#!{python}
import http.server, os, pathlib, sys
port = int(sys.argv[sys.argv.index("--port") + 1])
pathlib.Path(os.environ["FAKE_VLLM_PIDS"], str(port)).write_text(str(os.getpid()))
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""


def free_base_port() -> int:
    """A port p with p and p + 1 free (the shared pod's two servers)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base < 65000 and all(_free(base + i) for i in range(3)):
            return base
    raise RuntimeError("no two consecutive free ports")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def shared_pod(base: int) -> dict[str, Any]:
    plan = make_plan(
        Allocation("llama-3.1-8b", H100, 1, 4, 1), Allocation("bge-reranker", H100, 1, 2, 1)
    )
    cluster, catalog = named_cluster(), make_catalog()
    r = render_manifests(
        place(plan, cluster), cluster, catalog.models, plan_text(plan), RenderOptions(port=base)
    )
    (dep,) = [to_dict(o) for o in r.objects if to_dict(o)["kind"] == "Deployment"]
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    return dict(c)


def healthy(port: int) -> bool:
    import urllib.request

    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
    except OSError:
        return False
    return True


def wait_for(cond: Any, timeout_s: float = 20) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def fake_vllm(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "vllm"
    exe.write_text(FAKE_VLLM.format(python=sys.executable), encoding="utf-8")
    exe.chmod(0o755)
    # `python3` in the scripts is the test interpreter, as in the vLLM image.
    (bin_dir / "python3").symlink_to(sys.executable)
    pids = tmp_path / "pids"
    pids.mkdir()
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, "PATH": path, "FAKE_VLLM_PIDS": str(pids)}


def run_probe(command: list[str], env: dict[str, str]) -> int:
    return subprocess.run(command, env=env, capture_output=True, timeout=30, check=False).returncode


def test_launcher_starts_servers_in_turn_and_probe_needs_all(fake_vllm: dict[str, str]) -> None:
    base = free_base_port()
    c = shared_pod(base)
    ports = [p["containerPort"] for p in c["ports"]]
    probe = c["readinessProbe"]["exec"]["command"]
    assert sorted(ports) == [base, base + 1]
    # Nothing up: not ready.
    assert run_probe(probe, fake_vllm) != 0
    launcher = subprocess.Popen(
        c["command"],
        env=fake_vllm,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert wait_for(lambda: all(healthy(p) for p in ports)), "servers did not come up"
        assert run_probe(probe, fake_vllm) == 0
        # One server dies: the probe fails and the launcher exits non-zero (restart).
        _kill_server(fake_vllm, ports[-1])
        assert wait_for(lambda: not healthy(ports[-1]))
        assert run_probe(probe, fake_vllm) != 0
        assert launcher.wait(timeout=20) != 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launcher.pid, 9)  # the group this test started, by its id
        launcher.wait(timeout=10)
        for p in ports:
            _kill_server(fake_vllm, p)


def _kill_server(env: dict[str, str], port: int) -> None:
    """Stop the fake server this test's launcher started on `port` (by its pid)."""
    pid_file = Path(env["FAKE_VLLM_PIDS"]) / str(port)
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), 15)


FAKE_RAY_CLI = """#!/bin/bash
# `ray start --head` registers the head; `ray start --address=... --block` a worker that stays.
echo "$*" >> "$FAKE_RAY_NODES"
if [[ " $* " == *" --block "* ]]; then exec sleep 600; fi
"""

FAKE_RAY_MODULE = """import os
def init(address=None, logging_level=None):
    pass
def nodes():
    with open(os.environ["FAKE_RAY_NODES"]) as f:
        return [{"Alive": True} for line in f if line.strip()]
"""


def test_multi_node_leader_serves_only_once_every_worker_joined(
    fake_vllm: dict[str, str], tmp_path: Path
) -> None:
    base = free_base_port()
    plan = make_plan(Allocation("llama-3.1-70b", H100, 8, 8, 1, 2))
    cluster, catalog = named_cluster(), make_catalog()
    r = render_manifests(
        place(plan, cluster), cluster, catalog.models, plan_text(plan), RenderOptions(port=base)
    )
    (lws,) = [to_dict(o) for o in r.objects if to_dict(o)["kind"] == "LeaderWorkerSet"]
    template = lws["spec"]["leaderWorkerTemplate"]
    (leader,) = template["leaderTemplate"]["spec"]["containers"]
    (worker,) = template["workerTemplate"]["spec"]["containers"]
    bin_dir = Path(fake_vllm["PATH"].split(os.pathsep)[0])
    (bin_dir / "ray").write_text(FAKE_RAY_CLI, encoding="utf-8")
    (bin_dir / "ray").chmod(0o755)
    module_dir = tmp_path / "site"
    module_dir.mkdir()
    (module_dir / "ray.py").write_text(FAKE_RAY_MODULE, encoding="utf-8")
    env = {
        **fake_vllm,
        "FAKE_RAY_NODES": str(tmp_path / "ray-nodes"),
        "PYTHONPATH": str(module_dir),
        "LWS_GROUP_SIZE": str(template["size"]),  # injected by LeaderWorkerSet
        "LWS_LEADER_ADDRESS": "leader.example",
    }
    port = leader["ports"][0]["containerPort"]
    # Own process groups: the scripts' children (ray, vllm) stop with them.
    procs = [
        subprocess.Popen(
            leader["command"], env=env, stdout=subprocess.DEVNULL, start_new_session=True
        )
    ]
    try:
        # The head alone (1 of 2 nodes): no server yet.
        assert wait_for(lambda: (tmp_path / "ray-nodes").exists())
        time.sleep(1.5)
        assert not healthy(port)
        procs.append(
            subprocess.Popen(
                worker["command"], env=env, stdout=subprocess.DEVNULL, start_new_session=True
            )
        )
        assert wait_for(lambda: healthy(port), timeout_s=30), "leader did not start serving"
        joined = (tmp_path / "ray-nodes").read_text().splitlines()
        assert joined[0].startswith("start --head")
        assert joined[1] == "start --address=leader.example:6379 --block"
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, 9)  # the group this test started, by its id
            p.wait(timeout=10)
        _kill_server(fake_vllm, port)
