"""The engine's view for `trading positions|orders|pnl|strategies` and the `engine` section of status:
engine vs broker per symbol, exit codes, and a clear sentence when the engine cannot answer."""

from __future__ import annotations

from typing import Any

from hftops.control.engine_view import (
    EXIT_DEGRADED,
    EXIT_NOT_RUNNING,
    EXIT_OK,
    EngineReading,
    engine_problem,
    engine_section,
    positions_report,
)

NOW = 1_800_000_000.0
STATS: dict[str, Any] = {
    "time_ns": int((NOW - 0.5) * 1e9),
    "state": "running",
    "ready_to_trade": True,
    "refusing_reason": None,
    "strategies": [{"id": "mm1", "state": "running", "symbols": ["BTCUSDT"], "open_orders": 2, "params": {}}],
    "open_orders": 2,
    "orders": [],
    "positions": [
        {
            "strategy": "mm1",
            "symbol": "BTCUSDT",
            "qty": "0.02",
            "avg_price": "100",
            "realized_pnl": "0",
            "unrealized_pnl": "0.1",
            "fees": "0",
            "mark_price": "100.05",
            "cost_known": True,
        },
        {
            "strategy": "mom1",
            "symbol": "ETHUSDT",
            "qty": "0",
            "avg_price": "0",
            "realized_pnl": "1",
            "unrealized_pnl": "0",
            "fees": "0",
            "mark_price": None,
            "cost_known": True,
        },
    ],
    "net": {"BTCUSDT": "0.02", "ETHUSDT": "0"},
    "realized_pnl": "1",
    "unrealized_pnl": "0.1",
    "fees": "0",
    "equity": "100001.1",
    "peak_equity": "100001.1",
}


def live() -> EngineReading:
    return EngineReading(True, 42, STATS, 0.5, "")


def broker(**qty: str) -> dict[str, Any]:
    return {"available": True, "error": None, "positions": {s: {"qty": q} for s, q in qty.items()}}


def test_positions_match_when_engine_and_broker_agree_on_every_symbol() -> None:
    report, code = positions_report(live(), broker(BTCUSDT="0.020", ETHUSDT="0"), None)
    assert code == EXIT_OK and report["all_match"]
    assert report["symbols"] == {
        "BTCUSDT": {"engine_qty": "0.02", "broker_qty": "0.020", "match": True},
        "ETHUSDT": {"engine_qty": "0", "broker_qty": "0", "match": True},
    }
    assert report["positions"][0]["avg_price"] == "100" and report["source"] == "engine"


def test_a_mismatch_or_a_silent_broker_is_degraded() -> None:
    report, code = positions_report(live(), broker(BTCUSDT="0.01"), None)
    assert code == EXIT_DEGRADED and report["symbols"]["BTCUSDT"]["match"] is False
    assert report["symbols"]["ETHUSDT"] == {"engine_qty": "0", "broker_qty": "0", "match": True}
    silent = {"available": False, "error": "broker at x: timeout", "positions": {}}
    report, code = positions_report(live(), silent, None)
    assert code == EXIT_DEGRADED and report["symbols"]["BTCUSDT"]["match"] is None


def test_without_an_engine_the_broker_and_the_checkpoint_are_shown() -> None:
    down = EngineReading(False, None, None, None, engine_problem(None, False, None, None))
    checkpoint = {
        "available": True,
        "path": "p",
        "written_at": "t",
        "positions": [
            {
                "strategy": "mm1",
                "symbol": "BTCUSDT",
                "qty": "0.03",
                "avg_price": "99",
                "realized_pnl": "0",
                "fees": "0",
                "cost_known": True,
            }
        ],
    }
    report, code = positions_report(down, broker(BTCUSDT="0.03"), checkpoint)
    assert code == EXIT_NOT_RUNNING and "not running" in report["engine"]["problem"]
    assert report["source"] == "checkpoint"
    assert report["symbols"]["BTCUSDT"] == {
        "engine_qty": None,
        "broker_qty": "0.03",
        "match": None,
        "checkpoint_qty": "0.03",
    }


def test_engine_problems_name_the_cause_and_the_fix() -> None:
    assert "supervisor.components.engine.enabled" in engine_problem("disabled in config", False, None, None)
    assert "trading start" in engine_problem(None, False, None, None)
    assert "no stats yet" in engine_problem(None, True, None, None)
    assert "12s old" in engine_problem(None, True, STATS, 12.0)
    assert engine_problem(None, True, STATS, 0.5) == ""


def test_status_engine_section() -> None:
    running = {"engine": {"state": "running"}}
    section = engine_section(running, {"stats": {"engine": STATS}}, now=NOW)
    assert section["open_orders"] == 2 and section["equity"] == "100001.1"
    assert [p["symbol"] for p in section["positions"]] == ["BTCUSDT"]  # flat ones are left out
    assert section["strategies"] == [{"id": "mm1", "state": "running", "symbols": ["BTCUSDT"], "open_orders": 2}]
    stale = engine_section(running, {"stats": {"engine": STATS}}, now=NOW + 60)
    assert stale["state"] == "not answering" and "old" in stale["detail"]
    stopped = engine_section({"engine": {"state": "disabled", "detail": "off"}}, {"stats": {}})
    assert stopped == {"running": False, "state": "disabled", "detail": "off"}
