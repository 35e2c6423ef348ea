"""Venue reports -> tracked orders: the order state machine and exactly-once fills (the router's half that listens).

Reports reach the router three ways — REST answers, the user-data stream, and the resync after a reconnect
(open orders + userTrades) — in any order and possibly twice. `VenueReports` turns them into `OrderUpdate`s
that only ever take legal steps and `Fill`s that are emitted once per (symbol, trade id). A report about a
second venue order under a reused client order id is tracked apart (`<id>~<venue id>`), never merged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog

from hftops.execution.tracking import (
    BINANCE_STATUS,
    TrackedOrder,
    Transition,
    classify,
    parse_side,
    parse_tif,
    parse_type,
)
from hftops.execution.wire import OrderPayload, RestOrder, UserTrade
from hftops.model.orders import MANUAL_STRATEGY, Fill, OrderStatus, OrderUpdate, Side

log = structlog.get_logger("execution.router")


@dataclass
class RouterCounters:
    submitted: int = 0
    acked: int = 0
    rejected: int = 0
    resolved_duplicates: int = 0  # -4116 on a resend: the first copy had landed
    resends: int = 0  # a new order sent again after the venue said it never got the first copy (-2013)
    uncertain: int = 0  # submit outcome still unknown after retries (settled by the next resync)
    cancels_held: int = 0  # cancels that waited for their order to reach the venue first
    copies: int = 0  # a second venue order under one client order id (tracked apart, never merged)
    fills: int = 0
    duplicate_fills: int = 0
    overfills: int = 0
    stale_updates: int = 0
    illegal_transitions: int = 0
    unknown_orders: int = 0
    bad_events: int = 0
    resyncs: int = 0
    resync_fills: int = 0


def _noop(_: Any) -> None:
    return None


class VenueReports:
    """Tracked orders by client order id, and everything that applies the venue's reports to them."""

    def __init__(
        self,
        *,
        on_order: Callable[[OrderUpdate], None] = _noop,
        on_fill: Callable[[Fill], None] = _noop,
        on_bad_event: Callable[[str, str], None] = lambda reason, payload: None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._on_order = on_order
        self._on_fill = on_fill
        self._on_bad_event = on_bad_event
        self._clock_ns = clock_ns
        self.orders: dict[str, TrackedOrder] = {}
        self._by_venue_id: dict[tuple[str, int], str] = {}
        self._fills_seen: set[tuple[str, int]] = set()
        self._symbols: set[str] = set()
        # client order id -> set once the venue has reported the order or its submit call has returned. While
        # it is unset the order may still be on its way: a cancel waits for it (a cancel that overtakes its
        # order is refused with -2011 and the order would then rest unseen), and nothing but the submit
        # itself may conclude from a -2013 that the order never reached the venue.
        self._placing: dict[str, asyncio.Event] = {}
        self.counters = RouterCounters()

    def _index(self, order: TrackedOrder, order_id: int) -> None:
        if order_id > 0:
            order.order_id = order_id
            self._by_venue_id[(order.symbol, order_id)] = order.client_order_id

    def _resolve(self, order: TrackedOrder, order_id: int) -> TrackedOrder:
        """The tracked order a venue report is about. A report naming another venue order under the same
        client order id (a copy the venue accepted because the first one had closed) is tracked apart: merged,
        it would drive the first order through illegal steps (CANCELED -> FILLED) and hide a live order."""
        if order_id <= 0 or order.order_id <= 0 or order_id == order.order_id:
            return order
        known = self._by_venue_id.get((order.symbol, order_id))
        if known is not None and known in self.orders:
            return self.orders[known]
        first = order.client_order_id if not order.copy_of else order.copy_of
        copy = TrackedOrder(
            f"{first}~{order_id}",
            order.strategy_id,
            order.symbol,
            order.side,
            order.order_type,
            order.qty,
            order.price,
            order.tif,
            order.reduce_only,
            external=True,
            copy_of=first,
            updated_ns=self._clock_ns(),
        )
        self.orders[copy.client_order_id] = copy
        self._index(copy, order_id)
        self.counters.copies += 1
        log.error(
            "router.order_copy",
            client_order_id=first,
            order_id=order_id,
            first_order_id=order.order_id,
            hint=f"a second venue order under one client order id; tracked and booked as {copy.client_order_id}",
        )
        return copy

    def _apply_rest(self, order: TrackedOrder, answer: RestOrder) -> None:
        order = self._resolve(order, answer.orderId)
        self._index(order, answer.orderId)
        if answer.executedQty > order.venue_filled_qty:
            order.venue_filled_qty = answer.executedQty
        status = BINANCE_STATUS.get(answer.status)
        if status is None:
            self._bad(f"order {order.client_order_id}: unknown status {answer.status!r} in REST answer", repr(answer))
            return
        self._transition(order, status)

    def _strategy_of(self, client_order_id: str) -> str:
        head, sep, _ = client_order_id.rpartition("-")
        strategy, sep2, _ = head.rpartition("-")
        return strategy if sep and sep2 and strategy else MANUAL_STRATEGY

    def _adopt(
        self,
        cid: str,
        symbol: str,
        side: Side,
        order_type: str,
        qty: Decimal,
        price: Decimal,
        tif: str,
        reduce_only: bool,
    ) -> TrackedOrder:
        self.counters.unknown_orders += 1
        order = TrackedOrder(
            cid,
            self._strategy_of(cid),
            symbol,
            side,
            parse_type(order_type),
            qty,
            price if price > 0 else None,
            parse_tif(tif),
            reduce_only,
            external=True,
            updated_ns=self._clock_ns(),
        )
        self.orders[cid] = order
        self._symbols.add(symbol)
        log.info("router.order_adopted", client_order_id=cid, symbol=symbol, strategy=order.strategy_id)
        return order

    def _adopt_rest(self, answer: RestOrder) -> TrackedOrder:
        side = parse_side(answer.side) or Side.BUY
        return self._adopt(
            answer.clientOrderId,
            answer.symbol,
            side,
            answer.type,
            answer.origQty,
            answer.price,
            answer.timeInForce,
            answer.reduceOnly,
        )

    def _apply_order_event(self, o: OrderPayload) -> None:
        side = parse_side(o.S)
        status = BINANCE_STATUS.get(o.X)
        numbers = (o.q, o.p, o.l, o.z, o.L, o.n)
        if side is None or status is None or not all(n.is_finite() for n in numbers) or min(o.q, o.l, o.z) < 0:
            self._bad(f"ORDER_TRADE_UPDATE for {o.c!r}: side {o.S!r}, status {o.X!r} or a quantity is invalid", repr(o))
            return
        cid = self._by_venue_id.get((o.s, o.i)) or o.c
        order = self.orders.get(cid) if cid else None
        if order is None:
            order = self._adopt(cid or f"venue-{o.i}", o.s, side, o.o, o.q, o.p, o.f, o.R)
        order = self._resolve(order, o.i)
        self._index(order, o.i)
        if o.x == "TRADE" and o.t > 0 and o.l > 0:
            self._apply_fill(order, o.t, o.l, o.L, o.n, o.m, o.T)
        if o.z > order.venue_filled_qty:
            order.venue_filled_qty = o.z
        self._transition(order, status, reason=o.x if status is OrderStatus.EXPIRED else "")

    def _apply_user_trade(self, trade: UserTrade) -> int:
        cid = self._by_venue_id.get((trade.symbol, trade.orderId))
        order = self.orders.get(cid) if cid else None
        if order is None:
            side = parse_side(trade.side)
            if side is None:
                self._bad(f"userTrades {trade.id}: side {trade.side!r} is not BUY/SELL", repr(trade))
                return 0
            order = self._adopt(
                f"venue-{trade.orderId}", trade.symbol, side, "MARKET", trade.qty, trade.price, "GTC", False
            )
            order.qty_known = False  # known only from its trades: its size is what they add up to
            self._index(order, trade.orderId)
        before = self.counters.fills
        self._apply_fill(order, trade.id, trade.qty, trade.price, abs(trade.commission), trade.maker, trade.time)
        if self.counters.fills > before and not order.status.terminal:
            derived = OrderStatus.FILLED if order.filled_qty >= order.qty else OrderStatus.PARTIALLY_FILLED
            self._transition(order, derived)
        return self.counters.fills - before

    def _apply_fill(
        self, order: TrackedOrder, trade_id: int, qty: Decimal, price: Decimal, fee: Decimal, maker: bool, time_ms: int
    ) -> None:
        key = (order.symbol, trade_id)
        if key in self._fills_seen:
            self.counters.duplicate_fills += 1
            return
        if not (qty.is_finite() and price.is_finite() and fee.is_finite()) or qty <= 0 or price <= 0:
            self._bad(
                f"fill {trade_id} of {order.client_order_id}: qty {qty} / price {price} invalid",
                f"{order.symbol} {trade_id} {qty} {price}",
            )
            return
        self._fills_seen.add(key)
        order.trade_ids.add(trade_id)
        order.filled_qty += qty
        order.fill_notional += qty * price
        if order.filled_qty > order.qty and not order.qty_known:
            order.qty = order.filled_qty
        elif order.filled_qty > order.qty:
            self.counters.overfills += 1
            log.error(
                "router.overfill",
                client_order_id=order.client_order_id,
                qty=str(order.qty),
                filled=str(order.filled_qty),
                trade_id=trade_id,
            )
        self.counters.fills += 1
        self._on_fill(
            Fill(
                strategy_id=order.strategy_id,
                symbol=order.symbol,
                side=order.side,
                qty=qty,
                price=price,
                fee=fee,
                client_order_id=order.client_order_id,
                order_id=order.order_id,
                trade_id=trade_id,
                time_ns=time_ms * 1_000_000,
                is_maker=maker,
            )
        )

    def _transition(self, order: TrackedOrder, new: OrderStatus, reason: str = "") -> Transition:
        outcome = classify(order.status, new)
        if outcome is Transition.APPLIED and new is order.status and order.emitted_filled == order.reported_filled:
            outcome = Transition.DUPLICATE  # a repeated partial fill report that changes nothing
        if outcome is Transition.APPLIED:
            previous = order.status
            order.status = new
            if reason:
                order.reason = reason
            order.updated_ns = self._clock_ns()
            if previous is OrderStatus.NEW:
                placed = self._placing.get(order.client_order_id)
                if placed is not None:
                    placed.set()  # the venue has it: a held cancel may go
                if new is not OrderStatus.REJECTED:
                    self.counters.acked += 1
            if new is OrderStatus.REJECTED:
                self.counters.rejected += 1
            self._emit(order)
        elif outcome is Transition.STALE:
            self.counters.stale_updates += 1
        elif outcome is Transition.ILLEGAL:
            self.counters.illegal_transitions += 1
            log.error(
                "router.illegal_transition",
                client_order_id=order.client_order_id,
                current=order.status.value,
                reported=new.value,
            )
        return outcome

    def _emit(self, order: TrackedOrder) -> None:
        snapshot = order.snapshot()
        order.emitted_filled = snapshot.filled_qty
        self._on_order(snapshot)

    def _bad(self, reason: str, payload: str) -> None:
        self.counters.bad_events += 1
        log.error("router.bad_report", reason=reason)
        self._on_bad_event(reason, payload)
