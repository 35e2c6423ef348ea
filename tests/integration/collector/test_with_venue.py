"""The collector process against the real simulated venue process (`python -m hftops.venue`): with ids
skipped on the wire, malformed frames and dropped connections, every published trade reaches its stream."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ValkeyHandle
from tests.integration.collector.helpers import dead_letters, trade_ids
from tests.integration.collector.test_process import NotifySocket, stats
from tests.support.platform import TestPlatform as Platform
from tests.support.waiting import wait_for


def spawn(module: str, platform: Platform, **env: str) -> subprocess.Popen[bytes]:
    out = open(platform.root / f"{module.rsplit('.', 1)[-1]}.out", "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        [sys.executable, "-m", module], env=platform.env(**env), stdout=out, stderr=subprocess.STDOUT
    )


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    n = NotifySocket()
    yield n
    n.close()


def test_every_published_trade_arrives_through_faults(
    platform: Platform, valkey: ValkeyHandle, notify: NotifySocket
) -> None:
    platform.update(
        {
            "simulator": {"rate": 2000},
            "redis": {"url": valkey.url},
            "collector": {"reconnect_initial_s": 0.05, "reconnect_max_s": 0.2},
        }
    )
    rest = httpx.Client(base_url=platform.config.rest_base_url, timeout=5)
    venue = spawn("hftops.venue", platform)
    collector = None
    try:

        def venue_up() -> bool:
            try:
                return rest.get("/fapi/v1/ping").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(venue_up, 15, what="venue REST")
        collector = spawn("hftops.pipeline.collector", platform, NOTIFY_SOCKET=notify.path)
        wait_for(lambda: notify.saw("READY=1"), 10, what="collector READY=1")
        for fault in (
            {"fault": "skip_ids", "symbol": "BTCUSDT", "count": 40},
            {"fault": "malformed", "kind": "nan_price", "count": 1},
            {"fault": "malformed", "kind": "oversized", "count": 1},
            {"fault": "malformed", "kind": "bad_json", "count": 1},
        ):
            assert rest.post("/admin/fault", json=fault).status_code == 200, fault

        def faults_seen() -> bool:
            totals = stats(valkey).get("totals", {})
            return totals.get("dlq_total", 0) >= 3 and totals.get("gaps_opened", 0) >= 1

        wait_for(faults_seen, 10, what="malformed frames dead-lettered and the skip detected")
        assert rest.post("/admin/fault", json={"fault": "drop_connections"}).status_code == 200
        wait_for(lambda: stats(valkey).get("totals", {}).get("reconnects", 0) >= 1, 10, what="reconnect")
        assert rest.post("/admin/publishing", json={"paused": True}).status_code == 200
        truth = rest.get("/admin/ground-truth").json()["symbols"]
        client = valkey.client()

        def complete() -> bool:
            return all(
                set(trade_ids(client, s)) >= set(range(t["first_id"], t["last_id"] + 1)) for s, t in truth.items()
            )

        wait_for(complete, 15, what="every published trade id in the streams")
        reasons = {fields[b"reason"].decode() for fields, _ in dead_letters(client)}
        assert {"bad_price", "oversized", "bad_json"} <= reasons
        assert stop(collector) == 0
    finally:
        if collector is not None:
            stop(collector)
        assert stop(venue) == 0
        rest.close()
