"""An in-memory stand-in for the REST client (the router's `Broker` protocol), with scripted failures.

Unit tests of the router use it; the integration tests run the router against the real simulated venue.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hftops.execution.errors import BrokerError
from hftops.execution.wire import OrderPayload, OrderTradeUpdate, RestOrder, UserTrade


@dataclass
class VenueOrder:
    order_id: int
    symbol: str
    client_order_id: str
    side: str
    order_type: str
    qty: Decimal
    price: Decimal
    status: str = "NEW"
    fills: list[tuple[int, Decimal, Decimal]] = field(default_factory=list)  # (trade id, qty, price)

    @property
    def executed(self) -> Decimal:
        return sum((q for _, q, _ in self.fills), Decimal(0))

    def rest(self) -> RestOrder:
        return RestOrder(
            orderId=self.order_id,
            symbol=self.symbol,
            status=self.status,
            clientOrderId=self.client_order_id,
            price=self.price,
            origQty=self.qty,
            executedQty=self.executed,
            side=self.side,
            type=self.order_type,
        )

    def event(
        self,
        x: str,
        fill: tuple[int, Decimal, Decimal] | None = None,
        cumulative: Decimal | None = None,
        status: str | None = None,
    ) -> OrderTradeUpdate:
        trade_id, last_qty, last_price = fill or (0, Decimal(0), Decimal(0))
        o = OrderPayload(
            s=self.symbol,
            c=self.client_order_id,
            S=self.side,
            o=self.order_type,
            f="GTC",
            q=self.qty,
            p=self.price,
            x=x,
            X=status or self.status,
            i=self.order_id,
            l=last_qty,
            z=self.executed if cumulative is None else cumulative,
            L=last_price,
            T=1,
            t=trade_id,
            n=Decimal("0.01") if fill else Decimal(0),
        )
        return OrderTradeUpdate(e="ORDER_TRADE_UPDATE", E=1, T=1, o=o)


class FakeBroker:
    def __init__(self) -> None:
        self.orders: dict[str, VenueOrder] = {}
        self.failures: dict[str, list[BrokerError]] = {}  # method name -> errors raised before answering
        self.lost_answers: set[str] = set()  # methods whose effect happens but whose answer is lost once
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.hold: dict[str, asyncio.Event] = {}  # method -> the call lands only once the event is set
        self._next_id = 100

    def _fail(self, method: str) -> None:
        queue = self.failures.get(method)
        if queue:
            raise queue.pop(0)

    async def place_order(
        self,
        *,
        symbol: str,
        side: str,
        order_type: str,
        quantity: Decimal,
        client_order_id: str,
        price: Decimal | None = None,
        time_in_force: str | None = None,
        reduce_only: bool = False,
    ) -> RestOrder:
        self.calls.append(("place_order", {"client_order_id": client_order_id}))
        held = self.hold.get("place_order")
        if held is not None:
            await held.wait()
        self._fail("place_order")
        existing = self.orders.get(client_order_id)
        if existing is not None:
            if existing.status in ("NEW", "PARTIALLY_FILLED"):
                raise BrokerError(-4116, "ClientOrderId is duplicated.", 400)
            return existing.rest()  # landed already (place_now) while this call was held
        order = self.place_now(client_order_id, symbol, side, order_type, quantity, price or Decimal(0))
        if "place_order" in self.lost_answers:
            self.lost_answers.discard("place_order")
            raise BrokerError(BrokerError.TRANSPORT, "no answer within the timeout (ReadTimeout)")
        return order.rest()

    def place_now(
        self,
        client_order_id: str,
        symbol: str = "BTCUSDT",
        side: str = "BUY",
        order_type: str = "LIMIT",
        quantity: Decimal = Decimal(1),
        price: Decimal = Decimal(100),
    ) -> VenueOrder:
        """The order lands at the venue (its REST answer may still be on its way)."""
        self._next_id += 1
        order = VenueOrder(self._next_id, symbol, client_order_id, side, order_type, quantity, price)
        self.orders[client_order_id] = order
        return order

    def reuse(self, client_order_id: str) -> VenueOrder:
        """A second venue order under a client order id whose first order has closed (Binance allows it)."""
        first = self.orders[client_order_id]
        return self.place_now(client_order_id, first.symbol, first.side, first.order_type, first.qty, first.price)

    async def query_order(
        self, symbol: str, *, order_id: int | None = None, client_order_id: str | None = None
    ) -> RestOrder:
        self.calls.append(("query_order", {"client_order_id": client_order_id, "order_id": order_id}))
        self._fail("query_order")
        if order_id is not None:
            order = next((o for o in self.orders.values() if o.order_id == order_id), None)
        else:
            order = self.orders.get(client_order_id or "")
        if order is None:
            raise BrokerError(-2013, "Order does not exist.", 400)
        return order.rest()

    async def cancel_order(
        self, symbol: str, *, order_id: int | None = None, client_order_id: str | None = None
    ) -> RestOrder:
        self.calls.append(("cancel_order", {"client_order_id": client_order_id}))
        self._fail("cancel_order")
        order = self.orders.get(client_order_id or "")
        if order is None or order.status not in ("NEW", "PARTIALLY_FILLED"):
            raise BrokerError(-2011, "Unknown order sent.", 400)
        order.status = "CANCELED"
        return order.rest()

    async def cancel_all(self, symbol: str) -> Any:
        self.calls.append(("cancel_all", {"symbol": symbol}))
        for order in self.orders.values():
            if order.symbol == symbol and order.status in ("NEW", "PARTIALLY_FILLED"):
                order.status = "CANCELED"
        return {"code": 200, "msg": "done"}

    async def open_orders(self, symbol: str | None = None) -> list[RestOrder]:
        self.calls.append(("open_orders", {}))
        self._fail("open_orders")
        return [o.rest() for o in self.orders.values() if o.status in ("NEW", "PARTIALLY_FILLED")]

    async def user_trades_since(
        self, symbol: str, *, from_id: int | None = None, start_time_ms: int | None = None, max_pages: int = 100
    ) -> list[UserTrade]:
        self.calls.append(("user_trades_since", {"symbol": symbol, "from_id": from_id}))
        self._fail("user_trades_since")
        out = []
        for order in self.orders.values():
            for trade_id, qty, price in order.fills:
                if order.symbol == symbol and (from_id is None or trade_id >= from_id):
                    out.append(
                        UserTrade(
                            id=trade_id,
                            orderId=order.order_id,
                            symbol=symbol,
                            side=order.side,
                            price=price,
                            qty=qty,
                            commission=Decimal("0.01"),
                            commissionAsset="USDT",
                            time=1,
                        )
                    )
        return sorted(out, key=lambda t: t.id)

    def fill(self, client_order_id: str, trade_id: int, qty: str, price: str = "100") -> OrderTradeUpdate:
        """Execute part of a resting order at the venue; returns the event the stream would carry."""
        order = self.orders[client_order_id]
        entry = (trade_id, Decimal(qty), Decimal(price))
        order.fills.append(entry)
        order.status = "FILLED" if order.executed >= order.qty else "PARTIALLY_FILLED"
        return order.event("TRADE", entry)
