import socket
import time
from pathlib import Path

import pytest

from hftops import lifecycle


def test_notify_reaches_the_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "n.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert lifecycle.notify_ready("up")
        assert server.recv(4096).startswith(b"READY=1\nSTATUS=up")


def test_notify_never_blocks_when_nobody_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "n.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        started = time.monotonic()
        results = [lifecycle.notify_watchdog() for _ in range(2000)]
        assert time.monotonic() - started < 2.0
        assert False in results  # the queue filled: later sends were dropped, not waited on


def test_no_socket_is_a_noop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert lifecycle.notify_watchdog() is False
