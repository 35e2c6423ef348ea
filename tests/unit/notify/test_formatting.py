from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

from hftops.notify import exposure_rows, format_degradation, format_exposure, format_flatten, format_rearm


def test_degradation_states_scope_reason_exposure_and_rearm_effect() -> None:
    text = format_degradation(
        "platform",
        "clickhouse_unhealthy",
        "PLATFORM_REDUCE_ONLY",
        [
            {"symbol": "BTCUSDT", "qty": "0.050", "strategy": "mm1", "avg_price": "100.10"},
            {"symbol": "ETHUSDT", "qty": "-0.3", "strategy": "mom1"},
        ],
        "auto-recovers after 60 s clear; `trading rearm` returns to NORMAL now",
        detail="database writes stale 75 s",
        values={"stale_s": 75},
        thresholds={"stale_s": 60},
    )
    lines = text.splitlines()
    assert lines[0] == "DEGRADED: platform is now PLATFORM_REDUCE_ONLY"
    assert "Reason: clickhouse_unhealthy (database writes stale 75 s)" in lines
    assert "Scope: platform" in lines
    assert "Values: stale_s=75" in lines and "Thresholds: stale_s=60" in lines
    assert "Exposure: 2 open positions" in lines
    assert "  BTCUSDT +0.05 (mm1) avg 100.10" in lines and "  ETHUSDT -0.3 (mom1)" in lines
    assert lines[-1] == "Rearm: auto-recovers after 60 s clear; `trading rearm` returns to NORMAL now"


def test_flat_exposure_is_said_plainly() -> None:
    assert format_exposure([]) == "Exposure: flat (no open positions)"
    assert format_exposure([{"symbol": "BTCUSDT", "qty": "0"}]) == "Exposure: flat (no open positions)"


def test_long_exposure_is_capped() -> None:
    rows = [{"symbol": f"S{i}", "qty": "1"} for i in range(25)]
    text = format_exposure(rows)
    assert text.splitlines()[0] == "Exposure: 25 open positions" and text.endswith("… and 5 more")


def test_exposure_rows_from_position_objects_skip_flat_ones() -> None:
    book = [
        SimpleNamespace(strategy_id="mm1", symbol="BTCUSDT", qty=Decimal("0.01"), avg_price=Decimal("100")),
        SimpleNamespace(strategy_id="mm1", symbol="ETHUSDT", qty=Decimal("0"), avg_price=Decimal("0")),
    ]
    assert exposure_rows(book) == [{"symbol": "BTCUSDT", "qty": "0.01", "strategy": "mm1", "avg_price": "100"}]


def test_rearm_and_flatten_texts() -> None:
    rearm = format_rearm("alice", "db back", "platform", "HALT", "NORMAL", [], forced=True)
    assert rearm.startswith("REARMED (forced): platform HALT -> NORMAL") and "By: alice" in rearm
    failed = format_flatten(
        "all",
        "",
        "halt",
        [{"symbol": "BTCUSDT", "submitted": 3, "filled": 1, "remaining": "0.02", "failed": 1}],
        ok=False,
        deadline_s=120,
    )
    assert failed.startswith("FLATTEN FAILED: all still open at the 120 s deadline (trigger halt)")
    assert "BTCUSDT: submitted 3, filled 1, remaining 0.02, failed 1" in failed and "HALT" in failed
