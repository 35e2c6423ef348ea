"""What the gates and strategies read: positions, open orders, book tops and the clock, in one object."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from hftops.engine.orders import OpenOrders
from hftops.engine.positions import PositionBook
from hftops.model.orders import Bbo, Tick


class EngineState:
    """The engine's live state. The engine mutates it from events; gates and strategies only read it."""

    __slots__ = ("books", "clock", "last_trade", "mids", "orders", "positions")

    def __init__(
        self,
        clock: Callable[[], int],
        positions: PositionBook | None = None,
        orders: OpenOrders | None = None,
    ) -> None:
        self.clock = clock  # nanoseconds; wall clock in the process, a fake one in tests
        self.positions = positions if positions is not None else PositionBook()
        self.orders = orders if orders is not None else OpenOrders()
        self.books: dict[str, Bbo] = {}
        self.mids: dict[str, Decimal] = {}
        self.last_trade: dict[str, Tick] = {}

    def on_bbo(self, bbo: Bbo) -> None:
        self.books[bbo.symbol] = bbo
        if bbo.bid_price > 0 and bbo.ask_price >= bbo.bid_price:
            self.mids[bbo.symbol] = (bbo.bid_price + bbo.ask_price) / 2

    def on_tick(self, tick: Tick) -> None:
        self.last_trade[tick.symbol] = tick
