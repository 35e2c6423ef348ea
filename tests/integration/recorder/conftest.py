"""A real recorder process against real valkey and chDB, and helpers to feed it stream entries."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from hftops.model.market import BATCH_ENCODER, BboRow, TradeRow
from hftops.model.streams import MdKind, md_stream
from tests.support.platform import TestPlatform
from tests.support.waiting import wait_for

FAST = {"recorder": {"batch_max_ms": 20, "trim_interval_s": 0.2, "db_retry_s": 0.2, "claim_idle_ms": 1000}}


class RecorderProcess:
    """`python -m hftops.pipeline.recorder` with a NOTIFY_SOCKET of our own, as the supervisor runs it."""

    def __init__(self, platform: TestPlatform) -> None:
        self.platform = platform
        self.url = platform.config.recorder_query_url
        self._dir = Path(tempfile.mkdtemp(prefix="rec"))  # AF_UNIX paths must stay short
        self.notify_path = self._dir / "notify"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        self.notify.settimeout(0.1)
        self.proc: subprocess.Popen[bytes] | None = None
        self.messages: list[str] = []
        self.log_path = platform.root / "recorder.out"

    def start(self, wait: bool = True) -> RecorderProcess:
        env = self.platform.env(NOTIFY_SOCKET=str(self.notify_path))
        self.messages.clear()
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hftops.pipeline.recorder"], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        if wait:
            self.wait_ready()
        return self

    def _drain(self) -> None:
        while True:
            try:
                self.messages.append(self.notify.recv(4096).decode())
            except (TimeoutError, BlockingIOError):
                return

    def wait_ready(self, timeout_s: float = 30) -> None:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"recorder exited {self.proc.returncode}:\n{self.output()}")
            self._drain()
            return any("READY=1" in m for m in self.messages)

        wait_for(ready, timeout_s=timeout_s, what="recorder READY=1")

    def watchdog_pings(self) -> int:
        self._drain()
        return sum("WATCHDOG=1" in m for m in self.messages)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    def stop(self, timeout_s: float = 10) -> tuple[int, float]:
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout_s)
        return code, time.monotonic() - started

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.notify.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    # -- HTTP ------------------------------------------------------------------------------------

    def get(self, path: str) -> Any:
        return httpx.get(self.url + path, timeout=10).json()

    def query(self, sql: str) -> list[list[Any]]:
        response = httpx.post(self.url + "/query", json={"sql": sql}, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()["rows"]

    def counts(self, table: str = "market_trades", id_column: str = "trade_id") -> tuple[int, int]:
        (row,) = self.query(f"SELECT count(), uniqExact(venue, symbol, {id_column}) FROM {table}")
        return int(row[0]), int(row[1])


@pytest.fixture
def rec_platform(platform: TestPlatform, valkey: Any) -> TestPlatform:
    platform.update({"redis": {"url": valkey.url}, **FAST})
    return platform


@pytest.fixture
def recorder(rec_platform: TestPlatform) -> Iterator[RecorderProcess]:
    handle = RecorderProcess(rec_platform)
    try:
        yield handle
    finally:
        handle.close()


def trade_rows(ids: list[int], now_ms: int | None = None) -> list[TradeRow]:
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    return [TradeRow(i, f"{100 + i % 7}.25", "0.5", i % 3 == 0, now_ms, now_ms, time.time_ns(), i, i) for i in ids]


def bbo_rows(ids: list[int]) -> list[BboRow]:
    now_ms = int(time.time() * 1000)
    return [BboRow(i, "100.1", "2", "100.2", "3", now_ms, now_ms, time.time_ns()) for i in ids]


def entry(rows: list[TradeRow] | list[BboRow]) -> dict[str, Any]:
    ids = [r.trade_id if isinstance(r, TradeRow) else r.update_id for r in rows]
    return {
        "v": b"1",
        "n": len(rows),
        "lo": min(ids),
        "hi": max(ids),
        "d": BATCH_ENCODER.encode(rows),
        "t": time.time_ns(),
    }


def xadd_trades(client: redis.Redis, symbol: str, ids: list[int], per_entry: int = 50, venue: str = "sim") -> int:
    stream = md_stream(venue, MdKind.TRADE, symbol)
    with client.pipeline(transaction=False) as pipe:
        for start in range(0, len(ids), per_entry):
            pipe.xadd(stream, entry(trade_rows(ids[start : start + per_entry])))
        pipe.execute()
    return (len(ids) + per_entry - 1) // per_entry


def pending(client: redis.Redis, stream: str, group: str = "recorder") -> int:
    try:
        return int(client.xpending(stream, group)["pending"])
    except redis.ResponseError:
        return 0


def lag(client: redis.Redis, stream: str, group: str = "recorder") -> int:
    for info in client.xinfo_groups(stream):
        if info["name"] == group.encode():
            return int(info.get("lag") or 0) + int(info.get("pending") or 0)
    return -1


os.environ.setdefault("PYTHONUNBUFFERED", "1")
