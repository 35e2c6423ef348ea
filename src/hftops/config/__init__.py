"""Typed configuration: schema, loader (YAML + HFT_* environment), data-dir layout."""

from hftops.config.loader import ConfigError, load_config
from hftops.config.paths import DataPaths
from hftops.config.schema import Config

__all__ = ["Config", "ConfigError", "DataPaths", "load_config"]
