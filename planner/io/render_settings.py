"""`render.yaml`: the render settings stored beside the plan in the plan ConfigMap.

`planner replan` reads them back, so its next step is rendered for the same stack
(target, gateway, autoscaler, images, hardening) as the manifests the user applied.
"""

from __future__ import annotations

import dataclasses

import yaml

from planner.config import SCHEMA_VERSION, parse_config
from planner.render.settings import RenderOptions


def settings_yaml(options: RenderOptions) -> str:
    """The settings as flat YAML with `schema_version` (keys sorted, deterministic)."""
    data = {"schema_version": SCHEMA_VERSION, **dataclasses.asdict(options)}
    # The replay Job runs once for the plan it was rendered with; a re-plan renders none.
    data.pop("replay_job")
    return yaml.safe_dump(data, sort_keys=True)


def parse_settings(text: str, where: str) -> RenderOptions:
    """Settings from `render.yaml` text.

    Raises:
        ConfigError: not YAML, unknown keys, wrong types or schema version.
    """
    from planner.errors import ConfigError

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({exc})") from None
    return parse_config(data, RenderOptions, where)
