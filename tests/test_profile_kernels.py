"""`planner profile kernels`: real torch kernels timed here, in the shipped tables' schema."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from planner.cli import app
from planner.profiles.kernel_grid import (
    ALLREDUCE_TABLE,
    CONTEXT_TABLE,
    GEMM_TABLE,
    GENERATION_TABLE,
    TABLES,
    HeadShape,
    KernelGrid,
)

pytest.importorskip("torch", reason="measuring kernels needs torch (the vllm extra)")

TINY = KernelGrid(
    gemm_m=(1, 16),
    gemm_nk=((256, 256), (512, 256)),
    heads=(HeadShape(4, 2, 64),),
    context=((1, 32),),
    generation=((2, 64),),
    allreduce_elements=(256, 4096),
)


def _shipped(shared_data: Path, table: str) -> Path:
    path = shared_data / "kernels" / "h100_sxm" / table
    if not path.exists():
        pytest.skip(f"{path} absent: the shipped kernel tables live in ../shared")
    return path


def test_tables_match_the_shipped_schema_exactly(shared_data: Path, tmp_path: Path) -> None:
    from planner.io.kernel_bench import collect_kernels

    run = collect_kernels("cpu", TINY, tmp_path, repeats=1, devices=1)
    assert run.devices == 1 and ALLREDUCE_TABLE not in run.rows  # one device: no all-reduce
    for table in (GEMM_TABLE, CONTEXT_TABLE, GENERATION_TABLE):
        ours = pq.read_schema(tmp_path / table)
        shipped = pq.read_schema(_shipped(shared_data, table))
        assert ours.remove_metadata().equals(shipped.remove_metadata()), table
        assert [f.name for f in ours] == [c for c, _ in TABLES[table]]
    gemm = pq.read_table(tmp_path / GEMM_TABLE).to_pandas()
    assert len(gemm) == 4 and set(gemm["gemm_dtype"]) == {"bfloat16"}
    assert (gemm["latency"] > 0).all()
    # More tokens through the same weights never take less time than one token's worth
    # divided by 16 (the GEMM is at worst perfectly batched).
    by = gemm.set_index(["m", "n"])["latency"]
    assert by[(16, 512)] > by[(1, 512)] / 16
    gen = pq.read_table(tmp_path / GENERATION_TABLE).to_pandas()
    assert gen[["isl", "step", "batch_size", "num_heads"]].values.tolist() == [[1, 64, 2, 4]]
    system = yaml.safe_load((tmp_path / "system.yaml").read_text())
    assert system["gpu"]["bfloat16_tc_flops"] > 0


@pytest.mark.slow
def test_allreduce_across_two_cpu_devices(shared_data: Path, tmp_path: Path) -> None:
    import os

    from planner.io.kernel_bench import collect_kernels

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPU cores")
    run = collect_kernels("cpu", TINY, tmp_path, repeats=1, devices=2)
    table = pq.read_table(tmp_path / ALLREDUCE_TABLE)
    shipped = pq.read_schema(_shipped(shared_data, ALLREDUCE_TABLE))
    assert table.schema.remove_metadata().equals(shipped.remove_metadata())
    rows = table.to_pandas()
    assert run.devices == 2 and rows["num_gpus"].tolist() == [2, 2]
    assert rows["message_size"].tolist() == [256, 4096] and (rows["latency"] > 0).all()


def test_cli_rejects_an_unknown_device(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["profile", "kernels", "--device", "tpu", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "--device must be cpu or cuda" in result.output
