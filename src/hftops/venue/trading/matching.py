"""Order entry and matching of the simulated venue: checks, immediate matching, resting orders, cancels.

A new order is checked in Binance's order (fault, duplicate client id, reduce-only, margin, FOK/GTX), then
matched against the `DepthBook` of its symbol: MARKET and marketable LIMIT orders take liquidity level by
level as takers; the rest of a GTC LIMIT rests and fills as maker, at its own price, when a later touch
crosses it (`on_touch`, every generation tick), partially when the crossing size is smaller than what is
left. IOC and MARKET remainders expire; FOK that cannot fill at once and GTX that would take are refused
and not recorded as orders (as Binance does). Every change is journaled first, then pushed to the
user-data stream (`emit`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog

from hftops.venue.symbols import SymbolSpec
from hftops.venue.trading import errors as E
from hftops.venue.trading import wire
from hftops.venue.trading.account import Account
from hftops.venue.trading.book import DepthBook, Touch
from hftops.venue.trading.errors import TradingError
from hftops.venue.trading.faults import TradingFaults
from hftops.venue.trading.journal import Journal
from hftops.venue.trading.model import ExecType, Fill, Order, OrderType, Side, Status, TimeInForce

log = structlog.get_logger("venue")


@dataclass(frozen=True, slots=True)
class NewOrder:
    symbol: str
    side: Side
    type: OrderType
    qty: int
    price: int  # 0 for MARKET
    tif: TimeInForce
    reduce_only: bool
    client_id: str | None


class Desk:
    def __init__(
        self,
        specs: dict[str, SymbolSpec],
        account: Account,
        books: dict[str, DepthBook],
        journal: Journal,
        faults: TradingFaults,
        emit: Callable[[dict[str, Any]], None],
        wall_ms: Callable[[], int],
    ) -> None:
        self.specs = specs
        self.account = account
        self.books = books
        self.journal = journal
        self.faults = faults
        self.emit = emit
        self.wall_ms = wall_ms
        self.orders: dict[int, Order] = {}
        self.resting: dict[str, list[Order]] = {s: [] for s in specs}
        self._open_by_client: dict[str, Order] = {}
        self._next_order_id = 1
        self._next_trade_id = 1
        self._restore()

    # ------------------------------------------------------------------ queries

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        if symbol is not None:
            return list(self.resting[symbol])
        return [o for orders in self.resting.values() for o in orders]

    def find(self, symbol: str, order_id: int | None, client_id: str | None) -> Order | None:
        if order_id is not None:
            order = self.orders.get(order_id)
        else:
            order = self._open_by_client.get(client_id or "") or next(
                (o for o in reversed(self.orders.values()) if o.client_id == client_id), None
            )
        return order if order is not None and order.symbol == symbol else None

    # ------------------------------------------------------------------ order entry

    def place(self, req: NewOrder) -> tuple[Order, Order]:
        """(snapshot at acceptance, the live order after immediate matching); raises TradingError."""
        try:
            self._check(req)
        except TradingError as exc:
            self.record_rejection(req.symbol, req.side.value, req.client_id, exc)
            raise
        now = self.wall_ms()
        order_id, self._next_order_id = self._next_order_id, self._next_order_id + 1
        order = Order(
            order_id=order_id,
            client_id=req.client_id or f"sim-{order_id}",
            symbol=req.symbol,
            side=req.side,
            type=req.type,
            tif=req.tif,
            qty=req.qty,
            price=req.price,
            reduce_only=req.reduce_only,
            time_ms=now,
            update_ms=now,
        )
        self.orders[order_id] = order
        self._open_by_client[order.client_id] = order
        self._changed(order, ExecType.NEW, None)
        ack = copy.copy(order)
        book = self.books[req.symbol]
        if req.type is OrderType.MARKET or self._marketable(order, book.touch):
            cap = self.faults.take_fill_cap()  # fault cap_fills: a book without depth
            units = None if cap is None else int(cap.scaleb(self.specs[req.symbol].qty_decimals))
            self._take(order, None if req.type is OrderType.MARKET else order.price, maker=False, cap=units)
        if order.status.is_open:
            if req.type is OrderType.MARKET or req.tif in (TimeInForce.IOC, TimeInForce.FOK):
                self._finish(order, Status.EXPIRED, ExecType.EXPIRED)
            else:
                self.resting[order.symbol].append(order)
        return ack, order

    def _check(self, req: NewOrder) -> None:
        if self.faults.take_reject():
            raise TradingError(E.NEW_ORDER_REJECTED, "Order was rejected by the simulated venue (fault reject_orders).")
        if req.client_id is not None and req.client_id in self._open_by_client:
            raise TradingError(E.DUPLICATED_CLIENT_ORDER_ID, "ClientOrderId is duplicated.")
        account, book = self.account, self.books[req.symbol]
        position = account.positions[req.symbol].qty
        if req.reduce_only and (position == 0 or (position > 0) == (req.side is Side.BUY) or req.qty > abs(position)):
            raise TradingError(E.REDUCE_ONLY_REJECT, "ReduceOnly Order is rejected.")
        touch = book.touch
        price = (touch.ask if req.side is Side.BUY else touch.bid) if req.type is OrderType.MARKET else req.price
        required = account.required_margin(req.symbol, req.side, req.qty, account.price(req.symbol, price))
        if required > 0 and required > account.totals(self.open_orders())["available"]:
            raise TradingError(E.MARGIN_INSUFFICIENT, "Margin is insufficient.")
        if req.type is OrderType.LIMIT:
            marketable = self._marketable(req, touch)
            if req.tif is TimeInForce.GTX and marketable:
                raise TradingError(
                    E.GTX_REJECTED,
                    "Due to the order could not be executed as maker, the Post Only order will be rejected. "
                    "The order will not be recorded in the order history",
                )
            if req.tif is TimeInForce.FOK and book.available(req.side, req.price) < req.qty:
                raise TradingError(
                    E.FOK_REJECTED,
                    "Due to the order could not be filled immediately, the FOK order has been rejected. "
                    "The order will not be recorded in the order history",
                )

    def record_rejection(self, symbol: str, side: str, client_id: str | None, exc: TradingError) -> None:
        log.info(
            "venue.trading.order_rejected", symbol=symbol, side=side, client_id=client_id, code=exc.code, msg=exc.msg
        )
        self.journal.rejection(
            {
                "time": self.wall_ms(),
                "symbol": symbol,
                "side": side,
                "clientOrderId": client_id,
                "status": Status.REJECTED.value,
                "code": exc.code,
                "msg": exc.msg,
            }
        )

    @staticmethod
    def _marketable(order: Order | NewOrder, touch: Touch) -> bool:
        return order.price >= touch.ask if order.side is Side.BUY else order.price <= touch.bid

    # ------------------------------------------------------------------ cancels

    def cancel(self, symbol: str, order_id: int | None, client_id: str | None) -> Order:
        order = self.find(symbol, order_id, client_id)
        if order is None or not order.status.is_open:
            raise TradingError(E.CANCEL_REJECTED, "Unknown order sent.")
        self._finish(order, Status.CANCELED, ExecType.CANCELED)
        return order

    def amend(
        self, symbol: str, order_id: int | None, client_id: str | None, side: Side, qty: int, price: int
    ) -> Order:
        """PUT /fapi/v1/order: new price and/or quantity of an open LIMIT order; it matches at once if it
        now crosses the book (as a taker), else keeps resting."""
        order = self.find(symbol, order_id, client_id)
        if order is None or not order.status.is_open:
            raise TradingError(E.NO_SUCH_ORDER, "Order does not exist.")
        if order.type is not OrderType.LIMIT:
            raise TradingError(E.INVALID_ORDER_TYPE, "Only LIMIT orders can be modified.")
        if side is not order.side:
            raise TradingError(E.INVALID_SIDE, f"Side must stay {order.side.value} when modifying an order.")
        if qty <= order.executed:
            raise TradingError(E.NEW_ORDER_REJECTED, "Quantity must be greater than the executed quantity.")
        if qty == order.qty and price == order.price:
            raise TradingError(E.NO_NEED_TO_MODIFY, "No need to modify the order.")
        order.qty, order.price, order.update_ms = qty, price, self.wall_ms()
        self._changed(order, ExecType.AMENDMENT, None)
        if self._marketable(order, self.books[symbol].touch):
            self._take(order, order.price, maker=False)
        return order

    def cancel_all(self, symbol: str) -> list[Order]:
        orders = list(self.resting[symbol])
        for order in orders:
            self._finish(order, Status.CANCELED, ExecType.CANCELED)
        return orders

    def set_leverage(self, symbol: str, leverage: int) -> None:
        if not 1 <= leverage <= 125:
            raise TradingError(E.INVALID_LEVERAGE, f"Leverage {leverage} is not valid")
        self.account.leverage[symbol] = leverage
        self.journal.set_leverage(symbol, leverage)

    # ------------------------------------------------------------------ matching

    def on_touch(self, symbol: str, touch: Touch) -> None:
        """A new touch from the market: resting orders it crosses fill as makers at their own price."""
        self.books[symbol].set_touch(touch)
        resting = self.resting[symbol]
        if not resting:
            return
        crossed = [o for o in resting if self._marketable(o, touch)]
        crossed.sort(key=lambda o: (-o.price if o.side is Side.BUY else o.price, o.order_id))
        for order in crossed:
            if order.status.is_open:
                self._take(order, order.price, maker=True)

    def _take(self, order: Order, limit: int | None, maker: bool, cap: int | None = None) -> None:
        qty = order.remaining if cap is None else min(order.remaining, cap)
        if order.reduce_only:
            position = self.account.positions[order.symbol].qty
            closable = abs(position) if position and (position > 0) != (order.side is Side.BUY) else 0
            if closable == 0:  # the position it was to reduce is gone: Binance expires such orders
                self._finish(order, Status.EXPIRED, ExecType.EXPIRED)
                return
            qty = min(qty, closable)
        for price, q in self.books[order.symbol].take(order.side, qty, limit):
            self._fill(order, order.price if maker else price, q, maker)

    def _fill(self, order: Order, price: int, qty: int, maker: bool) -> None:
        now = self.wall_ms()
        account = self.account
        effect = account.apply_fill(order.symbol, order.side, qty, price, maker, now)
        quote = account.price(order.symbol, price) * account.qty(order.symbol, qty)
        trade_id, self._next_trade_id = self._next_trade_id, self._next_trade_id + 1
        fill = Fill(
            trade_id,
            order.order_id,
            order.client_id,
            order.symbol,
            order.side,
            price,
            qty,
            quote,
            effect.commission,
            effect.realized_pnl,
            maker,
            now,
        )
        order.executed += qty
        order.cum_quote += quote
        order.update_ms = now
        spec = self.specs[order.symbol]
        self.journal.fill(wire.trade_json(fill, spec))
        if order.remaining == 0:
            order.status = Status.FILLED
            self._close(order)
        else:
            order.status = Status.PARTIALLY_FILLED
        self._changed(order, ExecType.TRADE, fill)
        self.emit(wire.account_update(account, order.symbol, "ORDER", now))

    def _finish(self, order: Order, status: Status, exec_type: ExecType) -> None:
        order.status = status
        order.update_ms = self.wall_ms()
        self._close(order)
        self._changed(order, exec_type, None)

    def _close(self, order: Order) -> None:
        resting = self.resting[order.symbol]
        if order in resting:
            resting.remove(order)
        if self._open_by_client.get(order.client_id) is order:
            del self._open_by_client[order.client_id]

    def _changed(self, order: Order, exec_type: ExecType, fill: Fill | None) -> None:
        spec = self.specs[order.symbol]
        self.journal.order(wire.order_json(order, spec))
        self.emit(wire.order_update(order, spec, exec_type, fill, order.update_ms))

    # ------------------------------------------------------------------ restart

    def _restore(self) -> None:
        """Rebuild orders, positions, wallet and id counters from the journal of a previous run."""
        journal, account = self.journal, self.account
        account.leverage.update({s: lev for s, lev in journal.leverage.items() if s in self.specs})
        for record in journal.fills:
            spec = self.specs.get(str(record.get("symbol")))
            if spec is None:
                continue
            fill = wire.fill_from_json(record, spec)
            account.apply_fill(fill.symbol, fill.side, fill.qty, fill.price, fill.maker, fill.time_ms, fill.commission)
            self._next_trade_id = max(self._next_trade_id, fill.trade_id + 1)
        for record in journal.orders.values():
            spec = self.specs.get(str(record.get("symbol")))
            if spec is None:
                continue
            order = wire.order_from_json(record, spec)
            self.orders[order.order_id] = order
            self._next_order_id = max(self._next_order_id, order.order_id + 1)
            if order.status.is_open:
                self.resting[order.symbol].append(order)
                self._open_by_client[order.client_id] = order


def mark_price(books: dict[str, DepthBook], specs: dict[str, SymbolSpec]) -> Callable[[str], Decimal]:
    def mark(symbol: str) -> Decimal:
        return (Decimal(books[symbol].touch.mid2) / 2).scaleb(-specs[symbol].price_decimals)

    return mark
