"""`python -m hftops.pipeline.collector` as a real process: readiness and watchdog, stats, SIGTERM (exit 0,
everything flushed), and kill -9 followed by a restart that resumes from the cursor without a missing id."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest

from tests.conftest import ValkeyHandle
from tests.integration.collector.fake_venue import ThreadedVenue
from tests.integration.collector.helpers import cursor, trade_ids
from tests.support.platform import TestPlatform as Platform
from tests.support.waiting import wait_for


class NotifySocket:
    """Receives the READY=1 / WATCHDOG=1 datagrams a component sends to $NOTIFY_SOCKET."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="hn", dir="/tmp")  # AF_UNIX paths must stay short
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.messages: list[str] = []

    def poll(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.messages

    def saw(self, prefix: str) -> bool:
        return any(m.startswith(prefix) for m in self.poll())

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def venue() -> Iterator[ThreadedVenue]:
    v = ThreadedVenue()
    yield v
    v.close()


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    n = NotifySocket()
    yield n
    n.close()


def configure(platform: Platform, venue: ThreadedVenue, valkey: ValkeyHandle, **collector: object) -> None:
    platform.update(
        {
            "venue": {"ws_url": venue.venue.ws_url, "rest_url": venue.venue.rest_url},
            "redis": {"url": valkey.url},
            "collector": {"reconnect_initial_s": 0.05, "reconnect_max_s": 0.2, **collector},
        }
    )


def start(platform: Platform, notify: NotifySocket) -> subprocess.Popen[bytes]:
    out = open(platform.root / "collector.out", "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        [sys.executable, "-m", "hftops.pipeline.collector"],
        env=platform.env(NOTIFY_SOCKET=notify.path),
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def stats(valkey: ValkeyHandle) -> dict:
    raw = valkey.client().hget("ops:stats", "collector")
    return json.loads(raw) if raw else {}


def all_ids(valkey: ValkeyHandle, venue: ThreadedVenue) -> bool:
    client = valkey.client()
    for symbol in venue.venue.symbols:
        last = venue.do(venue.venue.last_id, symbol)
        if not set(trade_ids(client, symbol)) >= set(range(1, last + 1)):
            return False
    return True


def test_the_hop_counts_the_batch_age_and_the_transaction(
    platform: Platform, venue: ThreadedVenue, valkey: ValkeyHandle, notify: NotifySocket
) -> None:
    """A row's hop runs from its frame to the reply of the transaction that stored it: with batches flushed
    by age (120 ms) the oldest batch's hop includes that age (a younger batch rides along in the same
    transaction, so it may be shorter); the write round trip and the flush lag are published beside it."""
    configure(platform, venue, valkey, flush_ms=120, flush_max=100_000)
    proc = start(platform, notify)
    try:
        wait_for(lambda: notify.saw("READY=1"), 10, what="READY=1")
        venue.do(venue.venue.publish, "BTCUSDT", 50)
        venue.do(venue.venue.publish, "ETHUSDT", 50)

        def hops() -> list[int]:
            return list(stats(valkey).get("hop_histogram", {}).get("counts", []))

        wait_for(lambda: sum(hops()) >= 2, 10, what="two live batches acknowledged")
        counts, bounds = hops(), stats(valkey)["hop_histogram"]["le_ms"]
        waited = sum(n for bound, n in zip(bounds, counts, strict=True) if bound is None or bound > 100)
        assert waited >= 1, f"no hop includes the 120 ms batch age: {dict(zip(bounds, counts, strict=True))}"
        assert all(ids == list(range(1, 51)) for ids in (trade_ids(valkey.client(), s) for s in ("BTCUSDT", "ETHUSDT")))
        snap = stats(valkey)
        assert {"p50", "p99", "samples"} <= snap["write_ms"].keys() and {"p50", "p99"} <= snap["flush_lag_ms"].keys()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_ready_watchdog_stats_and_sigterm_flushes_and_exits_0(
    platform: Platform, venue: ThreadedVenue, valkey: ValkeyHandle, notify: NotifySocket
) -> None:
    configure(platform, venue, valkey, flush_ms=1000, flush_max=100_000)
    proc = start(platform, notify)
    try:
        wait_for(lambda: notify.saw("READY=1"), 10, what="READY=1")
        venue.do(venue.venue.publish, "BTCUSDT", 300)
        venue.do(venue.venue.publish, "ETHUSDT", 30)
        wait_for(lambda: stats(valkey).get("totals", {}).get("received", 0) >= 660, 5, what="frames received")
        snap = stats(valkey)
        connections = snap["connections"]
        assert snap["ready"] is True and (connections["total"], connections["connected"]) == (1, 1)
        assert connections["read_slices_cut"] >= 0  # a burst of 660 frames may or may not span two slices
        assert set(snap["symbols"]) == {"BTCUSDT", "ETHUSDT"} and "p99" in snap["hop_ms"]
        assert notify.saw("WATCHDOG=1")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - sent < 1.0, "exit within a second of SIGTERM"
    finally:
        if proc.poll() is None:
            proc.kill()
    client = valkey.client()
    assert trade_ids(client, "BTCUSDT") == list(range(1, 301))
    assert trade_ids(client, "ETHUSDT") == list(range(1, 31))
    assert cursor(client) == {"BTCUSDT": 300, "ETHUSDT": 30}
    assert stats(valkey)["state"] == "stopped"


def test_kill_9_and_restart_resumes_from_the_cursor_with_no_missing_id(
    platform: Platform, venue: ThreadedVenue, valkey: ValkeyHandle, notify: NotifySocket
) -> None:
    configure(platform, venue, valkey)
    venue.do(venue.venue.start_pump, 2000)
    proc = start(platform, notify)
    try:
        wait_for(lambda: notify.saw("READY=1"), 10, what="first READY=1")
        wait_for(lambda: cursor(valkey.client()).get("BTCUSDT", 0) > 200, 5, what="data flowing")
        proc.kill()  # kill -9: no flush, no goodbye
        proc.wait(timeout=5)
        before = cursor(valkey.client())
        time.sleep(0.3)  # the venue trades on while nobody listens: ~600 trades to backfill
        notify.messages.clear()
        proc = start(platform, notify)
        wait_for(lambda: notify.saw("READY=1"), 10, what="second READY=1")
        wait_for(lambda: cursor(valkey.client())["BTCUSDT"] > before["BTCUSDT"] + 600, 5, what="resumed")
        venue.call(venue.venue.stop_pump())
        wait_for(lambda: all_ids(valkey, venue), 10, what="every id stored")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    client = valkey.client()
    for symbol in venue.venue.symbols:
        assert cursor(client)[symbol] == venue.do(venue.venue.last_id, symbol)
    assert stats(valkey)["totals"]["backfilled"] > 0
