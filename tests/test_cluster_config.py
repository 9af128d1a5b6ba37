from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from planner.errors import ConfigError
from planner.io.cluster_file import load_cluster, write_cluster
from planner.types.cluster import Cluster, NodePool


def test_shipped_example_parses(repo: Path) -> None:
    cluster = load_cluster(repo / "configs" / "cluster.yaml")
    assert [p.name for p in cluster.pools] == ["h100", "a100", "l40s"]
    assert cluster.pools[1].names() == ("gpu-a100-a", "gpu-a100-b")
    assert cluster.pools[2].nvlink_domain_size == 1
    assert cluster.gpus == 16 + 16 + 8


def test_round_trip(tmp_path: Path) -> None:
    cluster = Cluster(
        (
            NodePool("a", "H100-SXM-80GB", 2, 8, 4, labels={"zone": "on"}),
            NodePool("b", "L40S-48GB", 1, 4, 1, node_names=("node-x",)),
            NodePool("c", "A100-SXM-80GB", 1, 8, 8, price_per_gpu_hour=1.5, power_w_per_gpu=400),
        )
    )
    write_cluster(cluster, tmp_path / "c.yaml", header="reviewed by hand")
    assert (tmp_path / "c.yaml").read_text().startswith("# reviewed by hand\n")
    assert load_cluster(tmp_path / "c.yaml") == cluster


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("pools: []", "schema_version"),
        ("schema_version: 1\npools: []", "'pools' is empty"),
        ("schema_version: 1\npools:\n- {name: a, gpu_type: X, gpus_per_node: 8}", "'nodes'"),
        (
            "schema_version: 1\npools:\n- {name: a, gpu_type: X, gpus_per_node: 8, node: 2}",
            'did you mean "nodes"',
        ),
        (
            "schema_version: 1\npools:\n"
            "- {name: a, gpu_type: X, gpus_per_node: 8, nodes: 1, nvlink_domain_size: 16}",
            "nvlink_domain_size",
        ),
        (
            "schema_version: 1\npools:\n"
            "- {name: a, gpu_type: X, gpus_per_node: 8, node_names: [n1]}\n"
            "- {name: b, gpu_type: X, gpus_per_node: 8, node_names: [n1]}",
            "node 'n1' is also in pool 'a'",
        ),
        ("schema_version: 1\npools: [", "not valid YAML"),
        (
            "schema_version: 1\npools:\n"
            "- {name: a, gpu_type: X, gpus_per_node: 8, nodes: 1, price_per_gpu_hour: -1}",
            "price_per_gpu_hour must be a number >= 0",
        ),
        (
            "schema_version: 1\npools:\n"
            "- {name: a, gpu_type: X, gpus_per_node: 8, nodes: 1, price_per_gpu_hour: 2}\n"
            "- {name: b, gpu_type: X, gpus_per_node: 8, nodes: 1, price_per_gpu_hour: 3}",
            "give pools of one GPU type the same price_per_gpu_hour",
        ),
    ],
)
def test_bad_cluster_files(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError) as err:
        load_cluster(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read cluster file"):
        load_cluster(tmp_path / "nope.yaml")


def test_example_gpu_types_are_in_the_catalog(repo: Path) -> None:
    from planner.io.configs import load_catalog

    gpus = load_catalog().gpus
    for pool in load_cluster(repo / "configs" / "cluster.yaml").pools:
        assert pool.gpu_type in gpus
        assert pool.nvlink_domain_size <= gpus[pool.gpu_type].nvlink_domain_size


def test_a_pool_that_does_not_share_devices_gets_whole_device_shapes_only(
    tmp_path: Path, repo: Path
) -> None:
    from planner.io.cluster_file import cluster_to_dict, load_cluster
    from planner.io.configs import load_catalog
    from planner.search.problem import candidate_shapes

    path = tmp_path / "c.yaml"
    path.write_text(
        "schema_version: 1\npools:\n"
        "  - {name: a, gpu_type: H100-SXM-80GB, nodes: 1, gpus_per_node: 8, share_gpus: false}\n"
    )
    cluster = load_cluster(path)
    assert cluster_to_dict(cluster)["pools"][0]["share_gpus"] is False
    spec = load_catalog(repo / "configs").models["Llama-3.1-8B-Instruct"]
    assert {k.share_eighths for k in candidate_shapes(spec, cluster)} == {8}
    shared = type(cluster)((replace(cluster.pools[0], share_gpus=True),))
    assert {k.share_eighths for k in candidate_shapes(spec, shared)} == set(range(1, 9))
