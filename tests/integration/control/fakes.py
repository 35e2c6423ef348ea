"""Test-only component overrides and a platform that is always torn down (no leaked processes)."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hftops.config.paths import DataPaths
from hftops.control.pidfiles import PidFiles, signal_process
from hftops.control.registry import TEST_ARGV_ENV_PREFIX
from hftops.model.components import COMPONENT_NAMES
from tests.support.cli import trading
from tests.support.platform import TestPlatform

FAKE = str(Path(__file__).with_name("fake_component.py"))


def fake_argv(name: str, *args: str) -> list[str]:
    return [sys.executable, FAKE, name, *args]


def fake_env(**components: list[str]) -> dict[str, str]:
    """collector=["--mode", "crash"] -> the test-only argv override of that component."""
    return {
        TEST_ARGV_ENV_PREFIX + name.upper(): json.dumps(fake_argv(name, *args)) for name, args in components.items()
    }


ALL_FAKE = {"venue": [], "collector": [], "recorder": []}


@contextmanager
def managed_platform(
    root: Path, overrides: dict[str, Any] | None = None, **components: list[str]
) -> Iterator[tuple[TestPlatform, dict[str, str]]]:
    """A platform whose venue/collector/recorder are the fake component (modes per component), with the
    real valkey-server and the real supervisor; everything it started is stopped afterwards."""
    platform = TestPlatform(root, overrides or {})
    env = platform.env(**fake_env(**{**ALL_FAKE, **components}))
    try:
        yield platform, env
    finally:
        trading(platform, "stop", "--timeout", "2", env=env, timeout=60)
        pidfiles = PidFiles(DataPaths(platform.config.data_dir).run)
        for name in (*COMPONENT_NAMES, "supervisor"):
            record = pidfiles.live(name)
            if record is not None:
                signal_process(record, signal.SIGKILL)
