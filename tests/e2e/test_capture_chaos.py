"""Zero-loss capture under chaos: kill -9, database outage, Redis restart, venue faults.

Every test ends the same way: the venue stops publishing, the pipeline drains, and `trading verify`
must find the ledger balanced with zero missing and zero duplicates.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from tests.support.cli import component_pid, kill9, trading, trading_json, wait_restarted
from tests.support.platform import TestPlatform
from tests.support.waiting import wait_for

# The watchdog must keep restarting through every round: a short backoff and a start limit above the rounds.
RATE = {
    "simulator": {"rate": 5000, "seed": 7},
    "venue": {"symbols": ["BTCUSDT", "ETHUSDT", "SOLUSDT"]},
    "supervisor": {"start_limit_burst": 50, "backoff_initial_s": 0.2, "backoff_max_s": 2.0},
}
ROUNDS = int(os.environ.get("HFT_CHAOS_ROUNDS", "5"))


def stored_rows(platform: TestPlatform) -> int:
    code, out = trading_json(platform, "query", "SELECT count() AS n FROM market_trades")
    return int(out["rows"][0][0]) if code == 0 else 0


def assert_ledger_balanced(platform: TestPlatform) -> dict:
    trading(platform, "venue", "pause", check=True)
    code, ledger = trading_json(platform, "verify", "--wait", "90", timeout=150)
    totals = ledger["totals"]
    assert ledger["balanced"], f"ledger not balanced: {totals} {ledger['symbols']}"
    assert totals["missing"] == 0 and totals["duplicates"] == 0
    assert totals["published"] == totals["stored"] + totals["pending"] + totals["wal"] + totals["dlq"]
    assert totals["published"] > 0
    assert code == 0
    return ledger


def progress(platform: TestPlatform, at_least: int) -> None:
    wait_for(
        lambda: stored_rows(platform) >= at_least,
        timeout_s=60,
        interval_s=0.5,
        what=f"at least {at_least} trades stored",
    )


@pytest.mark.parametrize("running_platform", [RATE], indirect=True)
def test_kill9_collector_and_venue_faults(running_platform: TestPlatform) -> None:
    platform = running_platform
    rng = random.Random(1234)
    progress(platform, 1000)
    for _ in range(ROUNDS):
        time.sleep(rng.uniform(0.2, 1.5))  # a random moment, seeded: when the kill lands is the test input
        pid = component_pid(platform, "collector")
        assert pid, "collector not running"
        kill9(pid)
        wait_restarted(platform, "collector", pid)
    trading(platform, "venue", "fault", "drop_connections", check=True)
    trading(platform, "venue", "fault", "skip_ids", "--symbol", "ETHUSDT", "--count", "250", check=True)
    trading(platform, "venue", "fault", "malformed", "--kind", "nan_price", "--count", "5", check=True)
    progress(platform, stored_rows(platform) + 2000)
    ledger = assert_ledger_balanced(platform)
    assert ledger["symbols"]["sim:ETHUSDT"]["stored"] > 0


@pytest.mark.parametrize("running_platform", [RATE], indirect=True)
def test_kill9_recorder_and_redis_restart(running_platform: TestPlatform) -> None:
    platform = running_platform
    rng = random.Random(4321)
    progress(platform, 1000)
    for _ in range(ROUNDS):
        time.sleep(rng.uniform(0.2, 1.5))
        pid = component_pid(platform, "recorder")
        assert pid, "recorder not running"
        kill9(pid)
        wait_restarted(platform, "recorder", pid)
    redis_pid = component_pid(platform, "redis")
    assert redis_pid
    os.kill(redis_pid, 15)  # a Redis restart: SIGTERM flushes the AOF, the watchdog starts it again
    wait_restarted(platform, "redis", redis_pid)
    progress(platform, stored_rows(platform) + 2000)
    assert_ledger_balanced(platform)


@pytest.mark.parametrize("running_platform", [RATE], indirect=True)
def test_database_outage_30s(running_platform: TestPlatform) -> None:
    platform = running_platform
    progress(platform, 1000)
    trading(platform, "db", "fault", "down", check=True)
    outage_end = time.monotonic() + 30
    wal_seen = wait_for(
        lambda: trading_json(platform, "status")[1].get("wal", {}).get("records", 0) or _wal_bytes(platform),
        timeout_s=30,
        what="the WAL to take the batches",
    )
    assert wal_seen
    time.sleep(max(0.0, outage_end - time.monotonic()))  # the outage lasts 30 s: that duration is the test
    trading(platform, "db", "fault", "up", check=True)
    progress(platform, stored_rows(platform) + 2000)
    assert_ledger_balanced(platform)  # rows still in the WAL count as kept: replay may not be over yet
    archive = platform.data_dir / "wal" / "archive"
    wait_for(
        lambda: (
            archive.is_dir()
            and any(archive.iterdir())
            and trading_json(platform, "status")[1].get("wal", {}).get("records", 0) == 0
        ),
        timeout_s=60,
        interval_s=1.0,
        what="the WAL replayed and its segments archived",
    )
    assert_ledger_balanced(platform)  # and, replayed, every row is stored once


def _wal_bytes(platform: TestPlatform) -> int:
    wal = platform.data_dir / "wal"
    return sum(p.stat().st_size for p in wal.glob("*") if p.is_file())
