"""Typed configuration: schema, loader (YAML + HFT_* environment), data-dir layout.

The names below load on first use: importing `hftops.config.paths` or `.locate` must not build the whole
pydantic schema (the `trading` CLI reaches a running supervisor without it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hftops.config.loader import ConfigError, load_config
    from hftops.config.paths import DataPaths
    from hftops.config.schema import Config

__all__ = ["Config", "ConfigError", "DataPaths", "load_config"]

_HOMES = {"Config": "schema", "ConfigError": "loader", "DataPaths": "paths", "load_config": "loader"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'hftops.config' has no attribute {name!r}")
    return getattr(importlib.import_module(f"hftops.config.{home}"), name)
