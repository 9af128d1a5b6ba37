"""Kernel tables collected with `planner profile kernels` answer the planner's predictions.

A collection under `<profiles>/kernels/<gpu type>/` is read (and checked) by
`load_profiles`; its tables answer that GPU type's kernel-composed predictions, families
it lacks fall back to the shipped tables or the roofline.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from cli_helpers import invoke
from tiny_model import add_tiny_spec

from planner.errors import ProfileError
from planner.io.configs import load_catalog
from planner.io.profiles import load_profiles
from planner.profiles.kernel_grid import (
    ALLREDUCE_TABLE,
    GEMM_TABLE,
    HeadShape,
    KernelGrid,
    kernel_table,
)
from planner.profiles.kernels import KernelProfiles
from planner.types.shapes import ShapeKey

pytest.importorskip("torch", reason="measuring kernels needs torch (the vllm extra)")

# The tiny test model's kernels (hidden 256, 4 heads / 2 KV heads of 64, MLP 512, vocab
# 1024): qkv (512 x 256), o_proj (256 x 256), gate_up and LM head (1024 x 256), down (256 x 512).
GRID = KernelGrid(
    gemm_m=(1, 16),
    gemm_nk=((256, 256), (512, 256), (1024, 256), (256, 512)),
    heads=(HeadShape(4, 2, 64),),
    context=((1, 32), (1, 128)),
    generation=((1, 64), (4, 64)),
    allreduce_elements=(256,),
)
TINY = "tiny-test"


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real collection on this machine's CPU (one device: no all-reduce)."""
    from planner.io.kernel_bench import collect_kernels

    out = tmp_path_factory.mktemp("kernels")
    collect_kernels("cpu", GRID, out, repeats=1, devices=1)
    return out


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> Path:
    out = tmp_path_factory.mktemp("configs") / "configs"
    shutil.copytree(repo / "configs", out)
    add_tiny_spec(out, TINY, out / "no-weights-needed")
    return out


def _profiles_with(collected: Path, tmp_path: Path, folder: str = "cpu") -> Path:
    profiles = tmp_path / "profiles"
    shutil.copytree(collected, profiles / "kernels" / folder)
    return profiles


def test_a_collection_answers_its_gpu_type(collected: Path, configs: Path, tmp_path: Path) -> None:
    catalog = load_catalog(configs)
    key = ShapeKey(TINY, "cpu", 1, 8)
    without = load_profiles(tmp_path / "none", catalog)
    assert isinstance(without, KernelProfiles) and without.source_of(key) == "roofline"
    profiles = load_profiles(_profiles_with(collected, tmp_path, "CPU"), catalog)  # an alias
    assert isinstance(profiles, KernelProfiles) and profiles.source_of(key) == "kernels"
    step = profiles.step_model(key)
    # The step's GEMMs are the collected rows: one token through qkv is the measured m=1 row.
    gemm = pq.read_table(collected / GEMM_TABLE).to_pandas()
    qkv = gemm[(gemm["m"] == 1) & (gemm["n"] == 512) & (gemm["k"] == 256)]["latency"].iloc[0]
    parts = step.layer_kernels(np.array([1.0]), np.array([True]))
    assert parts["qkv_proj"][0] == pytest.approx(2 * qkv, rel=1e-6)  # two layers
    point = profiles.at_concurrency(key, 200, 20, 1)
    assert point.source == "kernels" and point.ttft_ms > 0 and point.tpot_ms > 0
    # Steps past the small grid's token counts (16 here) are extrapolated, and say so.
    assert "gemm qkv_proj (bfloat16, n=512, k=256)" in profiles.extrapolated(key)


def test_models_needing_families_a_collection_lacks_get_the_roofline(
    collected: Path, configs: Path, tmp_path: Path
) -> None:
    profiles = load_profiles(_profiles_with(collected, tmp_path), load_catalog(configs))
    assert isinstance(profiles, KernelProfiles)
    moe = ShapeKey("Qwen3-30B-A3B", "cpu", 1, 8)
    assert profiles.source_of(moe) == "roofline"
    with pytest.raises(ProfileError, match="no moe rows, which Qwen3-30B-A3B needs"):
        profiles.step_model(moe)
    tables = profiles.tables_of("cpu")
    assert tables is not None
    model = profiles.catalog.models["Qwen3-30B-A3B"]
    # Two devices, DP attention: all-reduce and the ranks' NCCL gathers are missing too.
    assert tables.missing_for(model, 2, dp=2) == ("moe", "allreduce", "nccl")


def test_families_a_collection_lacks_come_from_the_shipped_tables(
    collected: Path, configs: Path, tmp_path: Path
) -> None:
    h100 = "H100-SXM-80GB"
    profiles = load_profiles(_profiles_with(collected, tmp_path, h100), load_catalog(configs))
    assert isinstance(profiles, KernelProfiles)
    tables = profiles.tables_of(h100)
    assert tables is not None and tables.system.endswith(h100)
    gemm = tables.frame("gemm")
    assert set(gemm["gemm_dtype"]) == {"bfloat16"} and len(gemm) == 8  # collected, not shipped
    assert not tables.frame("moe").empty  # shipped h100_sxm rows
    assert profiles.source_of(ShapeKey("Qwen3-30B-A3B", h100, 1, 8)) == "kernels"


def test_a_torch_all_reduce_answers_both_vllm_backends(
    collected: Path, configs: Path, tmp_path: Path
) -> None:
    profiles_dir = _profiles_with(collected, tmp_path)
    folder = profiles_dir / "kernels" / "cpu"
    rows = [
        {"framework": "torch", "version": "2", "device": "cpu", "op_name": "all_reduce",
         "kernel_source": "torch.distributed.gloo", "allreduce_dtype": "bfloat16",
         "num_gpus": 2, "message_size": size, "latency": ms, "backend": "torch_gloo"}
        for size, ms in ((256, 2.0), (65536, 8.0))
    ]  # fmt: skip
    (folder / ALLREDUCE_TABLE).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(kernel_table(ALLREDUCE_TABLE, rows), folder / ALLREDUCE_TABLE)
    profiles = load_profiles(profiles_dir, load_catalog(configs))
    assert isinstance(profiles, KernelProfiles)
    tables = profiles.tables_of("cpu")
    assert tables is not None
    for graph in (True, False):
        ms, extrapolated = tables.allreduce(2, np.array([256.0, 65536.0]), graph=graph)
        assert ms == pytest.approx([2.0, 8.0]) and not extrapolated.any()
    # More devices than measured: the largest measured count, flagged.
    ms, extrapolated = tables.allreduce(4, np.array([256.0]))
    assert ms == pytest.approx([2.0]) and extrapolated.all()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("drop-gemm", r"incomplete kernel tables, no gemm/gemm_perf\.parquet"),
        ("drop-column", r"gemm_perf\.parquet: lacks column\(s\) m;"),
        ("zero-latency", r"gemm_perf\.parquet: has latencies that are not positive numbers;"),
        ("not-parquet", r"gemm_perf\.parquet: not a readable Parquet table"),
        ("backend", r"custom_allreduce_perf\.parquet: names all-reduce backend\(s\) mpi;"),
        ("unknown-gpu", r"kernel tables of an unknown GPU type: unknown GPU type 'tpu-v9'"),
    ],
)
def test_a_malformed_collection_is_one_clear_error(
    collected: Path, configs: Path, tmp_path: Path, damage: str, message: str
) -> None:
    profiles = _profiles_with(collected, tmp_path)
    folder = profiles / "kernels" / "cpu"
    gemm = folder / GEMM_TABLE
    frame = pq.read_table(gemm).to_pandas()
    if damage == "drop-gemm":
        gemm.unlink()
    elif damage == "drop-column":
        frame.drop(columns=["m"]).to_parquet(gemm)
    elif damage == "zero-latency":
        frame.assign(latency=0.0).to_parquet(gemm)
    elif damage == "not-parquet":
        gemm.write_text("latency\n1.0\n")
    elif damage == "backend":
        rows = [
            {"framework": "torch", "version": "2", "device": "cpu", "op_name": "all_reduce",
             "kernel_source": "mpi", "allreduce_dtype": "bfloat16", "num_gpus": 2,
             "message_size": 256, "latency": 1.0, "backend": "mpi"}
        ]  # fmt: skip
        (folder / ALLREDUCE_TABLE).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(kernel_table(ALLREDUCE_TABLE, rows), folder / ALLREDUCE_TABLE)
    elif damage == "unknown-gpu":
        folder.rename(folder.parent / "tpu-v9")
    with pytest.raises(ProfileError, match=message) as info:
        load_profiles(profiles, load_catalog(configs))
    assert "\n" not in str(info.value)
    if damage != "unknown-gpu":
        assert "re-collect with `planner profile kernels -o " in str(info.value)
    # The CLI says it in one line with exit code 2.
    code, _, err = invoke("profile", "show", "--profiles", str(profiles), "--configs", str(configs))
    assert code == 2 and err.count("Error:") == 1
