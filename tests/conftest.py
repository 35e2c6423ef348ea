"""Shared fixtures: a real valkey-server on a free port, a per-test platform config."""

from __future__ import annotations

import faulthandler
import os
import subprocess
import sys
import threading
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, settings

# The repository root on sys.path makes `tests.support` importable from every test module.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hftops.bus.valkey_server import ValkeySpec, start_valkey, wait_until_ready
from tests.support.platform import TestPlatform
from tests.support.ports import free_port

# pytest-timeout (and pytest's own faulthandler timer) stop once a test has failed, so a hang in that test's
# teardown (a task that swallows its cancel) would hold the whole suite to CI's limit. Past this, the failure,
# then every thread's stack, go to the real stderr and the run ends.
TEARDOWN_LIMIT_S = 300.0
_REAL_STDERR = pytest.StashKey[int]()
_failures: dict[str, str] = {}  # nodeid -> the failed call's report, until its teardown ends


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_REAL_STDERR] = os.dup(sys.stderr.fileno())  # before capture swaps fd 2 per test


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.failed:
        _failures[report.nodeid] = report.longreprtext


def _end_the_run(fd: int, nodeid: str) -> None:
    failure = _failures.get(nodeid, "(the test itself passed)")
    os.write(fd, f"\n{nodeid}: teardown still running after {TEARDOWN_LIMIT_S:.0f} s\n{failure}\n".encode())
    faulthandler.dump_traceback(file=fd)
    os._exit(1)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    fd = item.config.stash[_REAL_STDERR]
    watchdog = threading.Timer(TEARDOWN_LIMIT_S, _end_the_run, (fd, item.nodeid))
    watchdog.daemon = True
    watchdog.start()
    faulthandler.dump_traceback_later(TEARDOWN_LIMIT_S + 30, exit=True, file=fd)  # should the GIL never come free
    try:
        return (yield)
    finally:
        watchdog.cancel()
        faulthandler.cancel_dump_traceback_later()
        _failures.pop(item.nodeid, None)


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
