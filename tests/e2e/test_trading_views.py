"""The whole platform with the engine, started through `trading start`: after a short run of the demo
strategies, `trading positions --json` agrees with the venue's own positions, the `fills` table holds
exactly the venue's fills, and orders / pnl / strategies / status show the running engine."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cli import trading, trading_json
from tests.support.platform import TestPlatform
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(300)

ENGINE_ON: dict[str, Any] = {
    "simulator": {"rate": 400},
    "engine": {"checkpoint_interval_s": 1.0, "recon_interval_s": 1.0},
    "supervisor": {"components": {"engine": {"enabled": True}}},
}


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[TestPlatform]:
    built = TestPlatform(tmp_path, ENGINE_ON)
    trading(built, "start", timeout=120, check=True)
    try:
        yield built
    finally:
        trading(built, "stop", "--timeout", "10", timeout=180)


def venue(platform: TestPlatform, path: str) -> Any:
    response = httpx.get(platform.config.rest_base_url + path, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def stored_fills(platform: TestPlatform) -> tuple[int, set[tuple[str, int]]]:
    url = platform.config.recorder_query_url + "/query"
    body = httpx.post(url, json={"sql": "SELECT symbol, trade_id FROM fills"}, timeout=30).json()
    rows = [(str(s), int(t)) for s, t in body["rows"]]
    return len(rows), set(rows)


def quiet(platform: TestPlatform, seen: list[int]) -> bool:
    """No new venue fill since the last look (the market is paused: resting orders can no longer cross)."""
    count = len(venue(platform, "/admin/fills")["fills"])
    seen.append(count)
    return len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3]


def test_positions_and_fills_match_the_venue_after_a_short_run(platform: TestPlatform) -> None:
    symbols = platform.config.venue.symbols
    code, report = trading_json(platform, "strategies")
    assert code == 0, report
    assert {s["id"] for s in report["strategies"]} == {"mm1", "mom1"}
    assert all(s["class"].startswith("hftops.engine.strategies.") and s["params"] for s in report["strategies"])
    wait_for(
        lambda: len(venue(platform, "/admin/fills")["fills"]) >= 6,
        timeout_s=90,
        interval_s=1.0,
        what="the demo strategies traded at the venue",
    )
    for symbol in symbols:  # freeze the market: no more ticks, quotes or crosses
        trading(platform, "venue", "fault", "pause_symbol", "--symbol", symbol, check=True)
    seen: list[int] = []
    wait_for(lambda: quiet(platform, seen), timeout_s=60, interval_s=1.0, what="no new fills at the venue")

    def agreed() -> dict[str, Any] | None:
        code, report = trading_json(platform, "positions")
        return report if code == 0 and report["all_match"] else None

    report = wait_for(agreed, timeout_s=30, interval_s=1.0, what="engine and broker agree on every symbol")
    at_venue = venue(platform, "/admin/positions")["positions"]
    for symbol in symbols:
        row = report["symbols"][symbol]
        assert Decimal(row["engine_qty"]) == Decimal(row["broker_qty"]) == Decimal(at_venue[symbol]["qty"]), symbol
        strategies = [p for p in report["positions"] if p["symbol"] == symbol]
        assert sum(Decimal(p["qty"]) for p in strategies) == Decimal(row["engine_qty"])
        assert all({"avg_price", "realized_pnl", "unrealized_pnl"} <= set(p) for p in strategies)
    assert any(Decimal(v["engine_qty"]) != 0 for v in report["symbols"].values()) or report["positions"]

    fills = {(f["symbol"], int(f["id"])) for f in venue(platform, "/admin/fills")["fills"]}
    wait_for(
        lambda: stored_fills(platform) == (len(fills), fills),
        timeout_s=30,
        interval_s=0.5,
        what="the fills table holds exactly the venue's fills",
    )

    code, orders = trading_json(platform, "orders")
    assert code == 0 and orders["recent"]["available"] and orders["recent"]["orders"]
    assert {o["strategy"] for o in orders["recent"]["orders"]} <= {"mm1", "mom1"}
    code, pnl = trading_json(platform, "pnl")
    assert code == 0 and Decimal(pnl["pnl"]["peak_equity"]) >= Decimal(pnl["pnl"]["equity"]) - Decimal("1e-9")
    code, status = trading_json(platform, "status", "--no-ledger")
    engine = status["engine"]
    assert engine["running"] and {s["id"] for s in engine["strategies"]} == {"mm1", "mom1"}
    assert engine["open_orders"] == len(trading_json(platform, "orders", "--open")[1]["open"])
    assert "engine" in trading(platform, "status", "--no-ledger").stdout
