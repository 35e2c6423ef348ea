"""A per-test platform layout: data dir, free ports, a YAML config and the environment for child processes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hftops.config import Config, load_config
from tests.support.ports import free_port


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@dataclass
class TestPlatform:
    __test__ = False  # a fixture helper, not a test class

    root: Path
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir = self.root / "var"
        base = {
            "data_dir": str(self.data_dir),
            "venue": {"symbols": ["BTCUSDT", "ETHUSDT"]},
            "simulator": {"ws_port": free_port(), "rest_port": free_port(), "rate": 500},
            "redis": {"port": free_port()},
            "recorder": {"query_port": free_port(), "disk_free_min_bytes": 0},
            "api": {"port": free_port()},
            # The engine trades and loads the box; tests that want it enable it (tests/integration/engine).
            "supervisor": {"components": {"engine": {"enabled": False}}},
        }
        self.write(_merge(base, self.overrides))

    def write(self, tree: dict[str, Any]) -> None:
        self.tree = tree
        self.config_path = self.root / "hftops.yaml"
        self.config_path.write_text(yaml.safe_dump(tree))
        self.config: Config = load_config(self.config_path, environ={})

    def update(self, override: dict[str, Any]) -> None:
        self.write(_merge(self.tree, override))

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HFT_") and k != "NOTIFY_SOCKET"}
        env.pop("XDG_RUNTIME_DIR", None)
        env["HFT_CONFIG"] = str(self.config_path)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra)
        return env
