"""The one YAML writer for Kubernetes manifests, and the reader `planner apply` uses.

Typed `kubernetes.client` objects are turned into plain dicts by
`ApiClient.sanitize_for_serialization`, dumped with sorted keys, and strings that a
YAML 1.1 reader (kubectl, PyYAML) would take for booleans or null (`y`, `n`, `on`,
`off`, `yes`, `no`, `true`, `null`, ...) are quoted. Multi-line strings (the plan, the
launcher script) use literal blocks so they stay readable in review.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from planner.errors import ConfigError, InputError
from planner.io.atomic import staged_directory

KUSTOMIZATION = "kustomization.yaml"

# Every plain scalar a YAML 1.1 reader resolves to bool or null (PyYAML's own resolver
# misses the one-letter y/Y/n/N forms).
_YAML11_SPECIAL = re.compile(
    r"^(y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE"
    r"|on|On|ON|off|Off|OFF|null|Null|NULL|~)$"
)


class _Dumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if _YAML11_SPECIAL.match(value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="'")
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _represent_str)


def to_dict(obj: object) -> dict[str, Any]:
    """A typed V1 object (or an already plain dict) as a plain, JSON-like dict."""
    from kubernetes.client import ApiClient

    if not isinstance(obj, dict) and not hasattr(obj, "to_dict"):
        raise TypeError(f"not a Kubernetes object: {type(obj).__name__}")  # a bug, not input
    data = obj if isinstance(obj, dict) else ApiClient().sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
    if not isinstance(data, dict):
        raise TypeError(f"not a Kubernetes object: {type(obj).__name__}")
    return data


def dump_yaml(document: Mapping[str, Any]) -> str:
    """One YAML document, deterministic: sorted keys, block style, quoted 1.1 booleans."""
    return yaml.dump(
        dict(document),
        Dumper=_Dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )


def file_name(obj: Mapping[str, Any]) -> str:
    """`<kind>-<name>.yaml`, lower case: unique within one namespace."""
    return f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


def kustomization(files: Iterable[str]) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": sorted(files),
    }


def manifest_files(objects: Sequence[object]) -> dict[str, str]:
    """File name -> YAML text for every object, plus `kustomization.yaml`."""
    files: dict[str, str] = {}
    for obj in objects:
        data = to_dict(obj)
        name = file_name(data)
        if name in files:
            raise ConfigError(
                f"two Kubernetes objects would be written to {name}: their names (models, "
                "pools or nodes) differ only in case or punctuation; rename one of them"
            )
        files[name] = dump_yaml(data)
    files[KUSTOMIZATION] = dump_yaml(kustomization(files))
    return dict(sorted(files.items()))


def write_manifests(directory: Path, objects: Sequence[object]) -> list[str]:
    """Replace `directory` with one file per object and a kustomization, all or nothing.

    Returns the file names written.
    """
    files = manifest_files(objects)
    with staged_directory(Path(directory)) as staging:
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8")
    return list(files)


def read_manifests(directory: Path) -> list[dict[str, Any]]:
    """The objects a manifests directory holds, following its kustomization.yaml.

    Accepts a directory written by `planner plan -o DIR` (DIR or DIR/manifests).

    Raises:
        InputError: no kustomization, a listed file missing, or a file that is not YAML.
    """
    directory = Path(directory)
    if not (directory / KUSTOMIZATION).is_file() and (directory / "manifests").is_dir():
        directory = directory / "manifests"
    kfile = directory / KUSTOMIZATION
    if not kfile.is_file():
        raise InputError(
            f"{directory}: no {KUSTOMIZATION}; pass the directory `planner plan -o DIR` wrote"
        )
    resources = _load(kfile).get("resources") or []
    objects: list[dict[str, Any]] = []
    for name in resources:
        path = directory / str(name)
        if not path.is_file():
            raise InputError(f"{kfile}: lists '{name}' but {path} does not exist")
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is None:
                continue
            if not isinstance(doc, dict) or "kind" not in doc or "metadata" not in doc:
                raise InputError(f"{path}: not a Kubernetes object (needs kind and metadata)")
            objects.append(doc)
    return objects


def _load(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping")
    return data
