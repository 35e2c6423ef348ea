"""Shared fixtures: a real valkey-server on a free port, a per-test platform config."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, settings

# The repository root on sys.path makes `tests.support` importable from every test module.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hftops.bus.valkey_server import ValkeySpec, start_valkey, wait_until_ready
from tests.support.platform import TestPlatform
from tests.support.ports import free_port


class ValkeyHandle:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.process = start_valkey(
            ValkeySpec(port=self.port, data_dir=self.data_dir), log_path=self.data_dir / "valkey.log"
        )
        wait_until_ready(self.url)

    def stop(self, kill: bool = False) -> None:
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()  # valkey flushes its AOF on SIGTERM
        self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


@pytest.fixture
def valkey(tmp_path: Path) -> Iterator[ValkeyHandle]:
    handle = ValkeyHandle(tmp_path / "valkey")
    try:
        yield handle
    finally:
        handle.stop(kill=True)


@pytest.fixture
def platform(tmp_path: Path) -> TestPlatform:
    return TestPlatform(tmp_path)


# Generated inputs are derandomized so a run is repeatable; deadlines off because CI shares 2 cores.
settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
