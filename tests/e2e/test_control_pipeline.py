"""The control plane with the real venue, collector and recorder."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.support.cli import trading
from tests.support.platform import TestPlatform as Platform
from tests.support.waiting import wait_for


def _stored(platform: Platform, env: dict[str, str]) -> int:
    status = json.loads(trading(platform, "status", "--json", "--no-ledger", env=env).stdout)
    return int((status["tables"].get("market_trades") or {}).get("rows", 0))


def test_emergency_stop_start_then_pre_reboot_and_post_reboot_check(tmp_path: Path) -> None:
    """Emergency stop then start ingests everything exactly once; pre-reboot drains, verifies and
    snapshots; post-reboot-check (which starts nothing) finds the database as the snapshot left it."""
    platform = Platform(tmp_path, {"simulator": {"rate": 2000}})
    env = platform.env()
    try:
        started = trading(platform, "start", env=env, timeout=120)
        assert started.returncode == 0, started.stderr
        wait_for(lambda: _stored(platform, env) > 500, timeout_s=30, interval_s=0.5, what="trades stored")

        halted = trading(platform, "emergency-stop", "--yes", env=env)
        assert halted.returncode == 0, halted.stderr
        status = json.loads(trading(platform, "status", "--json", "--no-ledger", env=env).stdout)
        assert status["components"]["redis"]["state"] == "running"
        assert status["components"]["recorder"]["state"] == "emergency_stopped"
        resumed = trading(platform, "start", env=env, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        before = _stored(platform, env)
        wait_for(lambda: _stored(platform, env) > before, timeout_s=30, interval_s=0.5, what="ingest resumed")

        t0 = time.monotonic()
        result = trading(platform, "pre-reboot", "--json", env=env, timeout=180)
        data = json.loads(result.stdout)
        checklist = {item: verdict for verdict, item, _ in data["checklist"]}
        assert result.returncode == 0, data["checklist"]
        assert time.monotonic() - t0 < 30
        ledger = data["stop"]["ledger_after"]
        assert ledger["available"] and ledger["balanced"], ledger.get("summary")
        assert ledger["totals"]["duplicates"] == 0 and ledger["totals"]["missing"] == 0
        assert checklist["streams drained by the recorder"] == "ok"
        assert checklist["config backup exists"] == "ok" and checklist["audit chain intact"] == "ok"
        assert [s["component"] for s in data["stop"]["steps"]][:1] == ["collector"]  # producer first
        after = data["stop"]["after"]
        assert after["totals"]["pending"] == 0 and after["totals"]["lag"] == 0

        check = trading(platform, "post-reboot-check", "--json", env=env, timeout=60)
        report = json.loads(check.stdout)
        assert check.returncode == 0, report
        assert report["tables_now"]["market_trades"]["rows"] == after["tables"]["market_trades"]["rows"]
        assert trading(platform, "status", "--no-ledger", env=env).returncode == 2  # it started nothing
    finally:
        trading(platform, "stop", "--timeout", "5", env=env, timeout=120)


def test_start_stop_restart_cycles_under_load_keep_the_ledger_balanced(tmp_path: Path) -> None:
    """Each stop happens while data flows at 5,000 msg/s; every stop's own ledger check and the final
    `trading verify` must balance: the venue continues its ids across cycles and the collector backfills
    whatever was published while it was down."""
    platform = Platform(tmp_path, {"simulator": {"rate": 5000}, "venue": {"symbols": ["BTCUSDT", "ETHUSDT"]}})
    env = platform.env()
    try:
        assert trading(platform, "start", env=env, timeout=120).returncode == 0
        for cycle, how in enumerate(("stop", "restart", "drain")):
            floor = _stored(platform, env) + 1000
            wait_for(
                lambda f=floor: _stored(platform, env) >= f,
                timeout_s=60,
                interval_s=0.5,
                what=f"cycle {cycle}: trades flowing before the stop",
            )
            if how == "restart":
                result = trading(platform, "restart", env=env, timeout=180)
                assert result.returncode == 0, result.stdout + result.stderr
                continue
            args = ["stop", "--json"] + (["--drain"] if how == "drain" else [])
            result = trading(platform, *args, env=env, timeout=180)
            report = json.loads(result.stdout)
            assert result.returncode == 0, report
            assert report["ledger_after"]["balanced"], report["ledger_after"]
            assert report["forced"] == []
            assert trading(platform, "start", env=env, timeout=120).returncode == 0
        trading(platform, "venue", "pause", env=env, check=True)
        verify = trading(platform, "verify", "--json", "--wait", "60", env=env, timeout=120)
        ledger = json.loads(verify.stdout)
        assert verify.returncode == 0 and ledger["balanced"], ledger["totals"]
        assert ledger["totals"]["duplicates"] == 0 and ledger["totals"]["missing"] == 0
    finally:
        trading(platform, "stop", env=env, timeout=180)
