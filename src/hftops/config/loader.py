"""Loads the configuration: YAML file (HFT_CONFIG), then HFT_* environment overrides, then validation."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hftops.config.locate import resolve_data_dir
from hftops.config.schema import Config

ENV_PREFIX = "HFT_"
NESTED_DELIMITER = "__"

# Short names operators type often; each maps to one key path of the schema.
ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "HFT_DATA_DIR": ("data_dir",),
    "HFT_REDIS_URL": ("redis", "url"),
    "HFT_CLICKHOUSE_URL": ("clickhouse", "url"),
    "HFT_SYMBOLS": ("venue", "symbols"),
    "HFT_SIM_RATE": ("simulator", "rate"),
    "HFT_SIM_SEED": ("simulator", "seed"),
    "HFT_API_TOKEN": ("api", "token"),
    "HFT_API_PORT": ("api", "port"),
    "HFT_LOG_LEVEL": ("log", "level"),
    "HFT_TRACKS": ("tracks",),  # a YAML flow list: '[{name: crypto, calendar: "24/7", symbols: ["*USDT"]}]'
    "HFT_TELEGRAM_ENABLED": ("notify", "telegram", "enabled"),
    "HFT_WEBHOOK_ENABLED": ("notify", "webhook", "enabled"),
}
# Variables read elsewhere (feature flags of later components, the config path itself).
ENV_NOT_CONFIG_KEYS = frozenset({"HFT_CONFIG"})


class ConfigError(Exception):
    """A configuration that cannot be used; `problems` names each bad key and why."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def _set_path(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = tree
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[path[-1]] = value


def _parse_env_value(path: tuple[str, ...], raw: str) -> Any:
    if path == ("venue", "symbols"):
        return [s.strip() for s in raw.split(",") if s.strip()]
    # YAML scalars give ints, floats, bools and lists ("[0, 1]") the same spelling as the file.
    try:
        return yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError:
        return raw


def env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Turn HFT_SECTION__KEY=value (and the aliases) into a nested dict; unknown nested keys are errors."""
    tree: dict[str, Any] = {}
    problems: list[str] = []
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name in ENV_NOT_CONFIG_KEYS:
            continue
        if name in ENV_ALIASES:
            path = ENV_ALIASES[name]
        elif NESTED_DELIMITER in name:
            path = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split(NESTED_DELIMITER))
            if not _path_exists(path):
                problems.append(f"{name}: no config key {'.'.join(path)} (see `trading check --explain`)")
                continue
        else:
            continue  # flat feature flags (HFT_TELEGRAM_ENABLED, ...) belong to the components that read them
        _set_path(tree, path, _parse_env_value(path, raw))
    return tree, problems


def _path_exists(path: tuple[str, ...]) -> bool:
    model: Any = Config
    for i, key in enumerate(path):
        fields = getattr(model, "model_fields", None)
        if fields is None:
            # dict-valued sections (supervisor.components.<name>.<key>) accept any key at this level
            return i > 0
        if key not in fields:
            return False
        model = fields[key].annotation
        origin_args = getattr(model, "__args__", None)
        if origin_args and not hasattr(model, "model_fields"):
            model = next((a for a in origin_args if hasattr(a, "model_fields")), origin_args[-1])
    return True


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def format_validation_error(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key; remove it or check its spelling"
        value = item.get("input")
        shown = "" if item["type"] in ("extra_forbidden", "missing") or isinstance(value, dict) else f" (got {value!r})"
        problems.append(f"{key}: {message}{shown}")
    return problems


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Load and validate; raises ConfigError naming every bad key. The data dir is made absolute."""
    environ = os.environ if environ is None else environ
    source = str(path or environ.get("HFT_CONFIG") or "(defaults)")
    raw: dict[str, Any] = {}
    file_path = path or environ.get("HFT_CONFIG")
    if file_path:
        try:
            text = Path(file_path).read_text()
        except OSError as exc:
            raise ConfigError(source, [f"cannot read the config file: {exc.strerror}"]) from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(source, [f"not valid YAML: {exc}"]) from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(source, ["the file must hold a mapping of sections (venue:, redis:, ...)"])
        raw = loaded
    overrides, problems = env_overrides(environ)
    if problems:
        raise ConfigError(source, problems)
    try:
        config = Config.model_validate(_deep_merge(raw, overrides))
    except ValidationError as exc:
        raise ConfigError(source, format_validation_error(exc)) from exc
    data_dir = resolve_data_dir(config.data_dir, file_path, "data_dir" in raw)
    return config.model_copy(update={"data_dir": data_dir})
