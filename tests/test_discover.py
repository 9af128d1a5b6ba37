from __future__ import annotations

from pathlib import Path

import pytest
from deploy_helpers import H100, L40S, make_catalog
from kubernetes import client as k8s

from planner.discover import discover_cluster


def node(
    name: str,
    product: str | None,
    gpus: int | None,
    count: int | None = None,
    memory: int | None = None,
    cordoned: bool = False,
) -> k8s.V1Node:
    labels = {"kubernetes.io/hostname": name}
    if product is not None:
        labels["nvidia.com/gpu.product"] = product
    if count is not None:
        labels["nvidia.com/gpu.count"] = str(count)
    if memory is not None:
        labels["nvidia.com/gpu.memory"] = str(memory)
    capacity = {"cpu": "64", "memory": "512Gi"}
    if gpus is not None:
        capacity["nvidia.com/gpu"] = str(gpus)
    return k8s.V1Node(
        api_version="v1",
        kind="Node",
        metadata=k8s.V1ObjectMeta(name=name, labels=labels),
        spec=k8s.V1NodeSpec(unschedulable=cordoned or None),
        status=k8s.V1NodeStatus(capacity=capacity),
    )


def test_groups_nodes_into_pools_by_type_and_count() -> None:
    nodes = [
        node("h100-b", "NVIDIA-H100-80GB-HBM3", 8, 8, 81559),
        node("h100-a", "NVIDIA-H100-80GB-HBM3", 8, 8, 81559),
        node("h100-half", "NVIDIA-H100-80GB-HBM3", 4, 4),
        node("l40s-1", "NVIDIA-L40S", 4),
        node("cpu-only", None, None),
    ]
    d = discover_cluster(nodes, make_catalog().gpus)
    pools = {p.name: p for p in d.cluster.pools}
    assert sorted(pools) == ["h100-sxm-80gb-x4", "h100-sxm-80gb-x8", "l40s-48gb-x4"]
    big = pools["h100-sxm-80gb-x8"]
    assert big.gpu_type == H100
    assert big.node_names == ("h100-a", "h100-b")
    assert (big.nodes, big.gpus_per_node, big.nvlink_domain_size) == (2, 8, 8)
    assert pools["h100-sxm-80gb-x4"].nvlink_domain_size == 4
    l40s = pools["l40s-48gb-x4"]
    assert (l40s.gpu_type, l40s.nvlink_domain_size) == (L40S, 1)
    assert d.cluster.gpus == 16 + 4 + 4
    assert d.notes == ("1 node(s) without NVIDIA GPUs left out",)


def test_skips_and_doubts_are_reported() -> None:
    nodes = [
        node("mystery", "Tesla-T4", 1),
        node("nolabel", None, 8),
        node("cordoned", "NVIDIA-H100-80GB-HBM3", 8, cordoned=True),
        # time-slicing: 4 replicas per GPU inflate the capacity; the label tells the truth
        node("sliced", "NVIDIA-H100-80GB-HBM3-SHARED", 32, 8),
        node("wrongmem", "NVIDIA-L40S", 4, 4, 16384),
    ]
    d = discover_cluster(nodes, make_catalog().gpus)
    text = "\n".join(d.notes)
    assert "mystery: skipped, GPU product 'Tesla-T4' is not in the catalog" in text
    assert "nolabel: skipped, no nvidia.com/gpu.product label" in text
    assert "cordoned: skipped, cordoned" in text
    assert "sliced: nvidia.com/gpu capacity 32 but nvidia.com/gpu.count 8; planning with 8" in text
    assert "wrongmem: nvidia.com/gpu.memory 16384 MiB" in text
    assert [(p.name, p.node_names) for p in d.cluster.pools] == [
        ("h100-sxm-80gb-x8", ("sliced",)),
        ("l40s-48gb-x4", ("wrongmem",)),
    ]


def test_shipped_catalog_maps_gfd_products(repo: object) -> None:
    from planner.io.configs import load_catalog

    gpus = load_catalog().gpus
    nodes = [
        node("a", "NVIDIA-H100-80GB-HBM3", 8, 8, 81559),
        node("b", "NVIDIA-A100-SXM4-80GB", 8, 8, 81920),
    ]
    d = discover_cluster(nodes, gpus)
    assert [(p.gpu_type, p.node_names) for p in d.cluster.pools] == [
        ("A100-SXM-80GB", ("b",)),
        ("H100-SXM-80GB", ("a",)),
    ]
    assert d.notes == ()


def test_discover_cli_writes_a_reviewable_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI wiring, with the one live call (listing Nodes) answered by typed V1Nodes."""
    from typer.testing import CliRunner

    import planner.io.kube
    from planner.cli import app
    from planner.io.cluster_file import load_cluster

    nodes = [
        node("gpu-a", "NVIDIA-H100-80GB-HBM3", 8, 8),
        node("gpu-b", "NVIDIA-H100-80GB-HBM3", 8, 8),
        node("odd", "Tesla-T4", 1),
    ]
    monkeypatch.setattr(planner.io.kube, "list_nodes", lambda: nodes)
    out = tmp_path / "cluster.yaml"
    result = CliRunner().invoke(app, ["cluster", "discover", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "16 GPUs in h100-sxm-80gb-x8 (2x8)" in result.output
    text = out.read_text()
    assert text.startswith("# Discovered by `planner cluster discover`.")
    assert "# note: odd: skipped, GPU product 'Tesla-T4' is not in the catalog" in text
    (pool,) = load_cluster(out).pools
    assert pool.node_names == ("gpu-a", "gpu-b") and pool.nvlink_domain_size == 8
