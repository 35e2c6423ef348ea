"""Small builders shared by the engine unit tests: a controllable clock, books, fills, orders."""

from __future__ import annotations

from decimal import Decimal

from hftops.engine.state import EngineState
from hftops.model.orders import Bbo, Fill, OrderStatus, OrderType, OrderUpdate, Side

D = Decimal


class FakeClock:
    def __init__(self, ns: int = 1_000_000_000) -> None:
        self.ns = ns

    def __call__(self) -> int:
        return self.ns

    def advance(self, seconds: float) -> None:
        self.ns += int(seconds * 1e9)


def bbo(symbol: str, bid: str, ask: str, update_id: int = 1) -> Bbo:
    return Bbo(
        symbol=symbol, update_id=update_id, bid_price=D(bid), bid_qty=D(1), ask_price=D(ask), ask_qty=D(1), time_ms=0
    )


def fill(strategy: str, symbol: str, side: Side, qty: str, price: str, fee: str = "0") -> Fill:
    return Fill(strategy_id=strategy, symbol=symbol, side=side, qty=D(qty), price=D(price), fee=D(fee))


def order(
    strategy: str,
    symbol: str,
    cid: str,
    side: Side,
    qty: str,
    price: str | None = "100",
    status: OrderStatus = OrderStatus.ACK,
    filled: str = "0",
) -> OrderUpdate:
    return OrderUpdate(
        strategy_id=strategy,
        symbol=symbol,
        client_order_id=cid,
        status=status,
        side=side,
        order_type=OrderType.LIMIT,
        qty=D(qty),
        price=D(price) if price is not None else None,
        filled_qty=D(filled),
    )


def state_with_mid(clock: FakeClock, symbol: str = "BTCUSDT", bid: str = "99.9", ask: str = "100.1") -> EngineState:
    state = EngineState(clock)
    state.on_bbo(bbo(symbol, bid, ask))
    return state
