"""The strategy API: a base class whose hooks return typed intents, and the read-only context it sees."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from hftops.engine.state import EngineState
from hftops.model.orders import (
    ZERO,
    Bbo,
    Fill,
    GateResult,
    Intent,
    IntentKind,
    OrderType,
    OrderUpdate,
    Side,
    Tick,
    TimeInForce,
)


class StrategyContext:
    """What a strategy may read: its own position and open orders, the book top, the clock. Never writable."""

    __slots__ = ("_state", "strategy_id")

    def __init__(self, strategy_id: str, state: EngineState) -> None:
        self.strategy_id = strategy_id
        self._state = state

    def position(self, symbol: str) -> Decimal:
        return self._state.positions.qty(self.strategy_id, symbol)

    def avg_price(self, symbol: str) -> Decimal:
        pos = self._state.positions.get(self.strategy_id, symbol)
        return ZERO if pos is None else pos.avg_price

    def open_orders(self, symbol: str) -> list[OrderUpdate]:
        return self._state.orders.for_symbol(self.strategy_id, symbol)

    def bbo(self, symbol: str) -> Bbo | None:
        return self._state.books.get(symbol)

    def mid(self, symbol: str) -> Decimal | None:
        return self._state.mids.get(symbol)

    def now_ns(self) -> int:
        return self._state.clock()


class Strategy:
    """Subclass and override the hooks you need; each returns the intents to send (empty list: nothing).

    Hooks run on the engine's event loop: they must be quick and must not block. An exception in a hook
    is caught by the engine, logged and counted against the strategy (issue 5 quarantines on bursts).
    """

    def __init__(self, strategy_id: str, symbols: Sequence[str], params: Mapping[str, Any], ctx: StrategyContext):
        self.strategy_id = strategy_id
        self.symbols = tuple(symbols)
        self.params = dict(params)
        self.ctx = ctx

    # --- hooks ---
    def on_start(self) -> list[Intent]:
        return []

    def on_tick(self, tick: Tick) -> list[Intent]:
        return []

    def on_bbo(self, bbo: Bbo) -> list[Intent]:
        return []

    def on_fill(self, fill: Fill) -> list[Intent]:
        return []

    def on_order_update(self, update: OrderUpdate) -> list[Intent]:
        return []

    def on_reject(self, intent: Intent, result: GateResult) -> list[Intent]:
        """A gate (or the broker) refused `intent`; `result.reason` says why."""
        return []

    def on_stop(self) -> list[Intent]:
        return []

    # --- intent builders ---
    def limit(
        self,
        symbol: str,
        side: Side,
        qty: Decimal,
        price: Decimal,
        tif: TimeInForce = TimeInForce.GTC,
        tag: str = "",
        reduce_only: bool = False,
    ) -> Intent:
        return Intent(
            kind=IntentKind.NEW,
            strategy_id=self.strategy_id,
            symbol=symbol,
            side=side,
            qty=qty,
            price=price,
            order_type=OrderType.LIMIT,
            tif=tif,
            tag=tag,
            reduce_only=reduce_only,
        )

    def market(self, symbol: str, side: Side, qty: Decimal, tag: str = "", reduce_only: bool = False) -> Intent:
        return Intent(
            kind=IntentKind.NEW,
            strategy_id=self.strategy_id,
            symbol=symbol,
            side=side,
            qty=qty,
            order_type=OrderType.MARKET,
            tif=TimeInForce.IOC,
            tag=tag,
            reduce_only=reduce_only,
        )

    def cancel(self, order: OrderUpdate) -> Intent:
        return Intent(
            kind=IntentKind.CANCEL,
            strategy_id=self.strategy_id,
            symbol=order.symbol,
            side=order.side,
            client_order_id=order.client_order_id,
            tag=order.client_order_id,
        )

    def flatten(self, symbol: str) -> Intent:
        return Intent(kind=IntentKind.FORCE_FLAT, strategy_id=self.strategy_id, symbol=symbol, reduce_only=True)
