"""A deterministic trading desk: BTCUSDT with a fixed touch, a fixed clock, events captured in a list."""

from __future__ import annotations

from decimal import Decimal
from http import HTTPStatus
from pathlib import Path
from typing import Any

from hftops.venue.hub import json_response
from hftops.venue.symbols import spec_for
from hftops.venue.trading.book import Touch
from hftops.venue.trading.faults import TradingFaults
from hftops.venue.trading.matching import NewOrder
from hftops.venue.trading.model import OrderType, Side, TimeInForce
from hftops.venue.trading.service import Trading, build_trading

BTC = spec_for("BTCUSDT")  # price 2 decimals, tick 10 units (0.10); qty 3 decimals; typical 10 units
BID, ASK = 60_000_00, 60_000_10  # 60000.00 / 60000.10
TOUCH = Touch(BID, 50, ASK, 50)  # 0.050 BTC at the touch; level i >= 1 holds 40 * (1 + i) units


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.ms = 1_700_000_000_000

    def __call__(self) -> float:
        return self.now

    def wall_ms(self) -> int:
        return self.ms


def make_trading(
    journal_dir: Path | None = None, wallet: float = 100_000.0, levels: int = 10, touch: Touch = TOUCH
) -> tuple[Trading, list[dict[str, Any]], Clock]:
    clock = Clock()

    def response(status: HTTPStatus, body: dict[str, Any]) -> Any:
        return json_response(status, body)

    trading = build_trading(
        [BTC, spec_for("ETHUSDT")],
        {},
        journal_dir,
        TradingFaults(clock),
        lambda: False,
        clock,
        clock.wall_ms,
        response,
        wallet=wallet,
        depth_levels=levels,
    )
    events: list[dict[str, Any]] = []
    trading.desk.emit = events.append
    trading.desk.on_touch("BTCUSDT", touch)
    return trading, events, clock


def order(
    side: Side,
    qty: int,
    price: int = 0,
    tif: TimeInForce = TimeInForce.GTC,
    reduce_only: bool = False,
    client_id: str | None = None,
    symbol: str = "BTCUSDT",
) -> NewOrder:
    kind = OrderType.LIMIT if price else OrderType.MARKET
    return NewOrder(symbol, side, kind, qty, price, tif, reduce_only, client_id)


def d(text: str) -> Decimal:
    return Decimal(text)
