"""The order router: idempotent submission, cancels, the order state machine and exactly-once fills.

Reports reach it three ways — REST answers, the user-data stream, and the resync after a reconnect (open
orders + userTrades) — in any order and possibly twice. It turns them into `OrderUpdate`s that only ever
take legal steps and `Fill`s that are emitted once per (symbol, trade id).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, Protocol

import structlog

from hftops.execution.errors import BinanceCode, BrokerError
from hftops.execution.ids import ClientOrderIds
from hftops.execution.tracking import (
    BINANCE_STATUS,
    TrackedOrder,
    Transition,
    classify,
    parse_side,
    parse_tif,
    parse_type,
)
from hftops.execution.wire import AccountUpdate, OrderPayload, OrderTradeUpdate, RestOrder, UserEvent, UserTrade
from hftops.model.orders import MANUAL_STRATEGY, Fill, Intent, IntentKind, OrderStatus, OrderUpdate, Side

log = structlog.get_logger("execution.router")
RESYNC_LOOKBACK_MS = 60_000  # first userTrades read of a session starts this long before the session did


class Broker(Protocol):
    """What the router needs from the REST client (BinanceFuturesRest implements it)."""

    async def place_order(self, *, symbol: str, side: str, order_type: str, quantity: Decimal,
                          client_order_id: str, price: Decimal | None = None, time_in_force: str | None = None,
                          reduce_only: bool = False) -> RestOrder: ...
    async def cancel_order(self, symbol: str, *, order_id: int | None = None,
                           client_order_id: str | None = None) -> RestOrder: ...
    async def query_order(self, symbol: str, *, order_id: int | None = None,
                          client_order_id: str | None = None) -> RestOrder: ...
    async def cancel_all(self, symbol: str) -> Any: ...
    async def open_orders(self, symbol: str | None = None) -> list[RestOrder]: ...
    async def user_trades_since(self, symbol: str, *, from_id: int | None = None,
                                start_time_ms: int | None = None, max_pages: int = 100) -> list[UserTrade]: ...


@dataclass
class RouterCounters:
    submitted: int = 0
    acked: int = 0
    rejected: int = 0
    resolved_duplicates: int = 0  # -4116 on a resend: the first copy had landed
    uncertain: int = 0  # submit outcome still unknown after retries (settled by the next resync)
    fills: int = 0
    duplicate_fills: int = 0
    overfills: int = 0
    stale_updates: int = 0
    illegal_transitions: int = 0
    unknown_orders: int = 0
    bad_events: int = 0
    resyncs: int = 0
    resync_fills: int = 0


@dataclass(frozen=True)
class ResyncReport:
    open_orders: int
    fills_recovered: int
    orders_settled: int


def _noop(_: Any) -> None:
    return None


class OrderRouter:
    def __init__(
        self,
        broker: Broker,
        ids: ClientOrderIds,
        *,
        on_order: Callable[[OrderUpdate], None] = _noop,
        on_fill: Callable[[Fill], None] = _noop,
        on_account: Callable[[AccountUpdate], None] = _noop,
        on_bad_event: Callable[[str, str], None] = lambda reason, payload: None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._broker = broker
        self.ids = ids
        self._on_order = on_order
        self._on_fill = on_fill
        self._on_account = on_account
        self._on_bad_event = on_bad_event
        self._clock_ns = clock_ns
        self.session_start_ms = clock_ns() // 1_000_000
        self.orders: dict[str, TrackedOrder] = {}
        self._by_venue_id: dict[tuple[str, int], str] = {}
        self._fills_seen: set[tuple[str, int]] = set()
        # symbol -> highest trade id returned by the last userTrades read: every trade of ours up to it is
        # known. Stream fills do not move it (one missed before them would otherwise be skipped for good).
        self._confirmed: dict[str, int] = {}
        self._symbols: set[str] = set()
        self._lock = asyncio.Lock()  # one resync at a time
        self.counters = RouterCounters()

    # --- queries ----------------------------------------------------------------------------------------

    def order(self, client_order_id: str) -> OrderUpdate | None:
        tracked = self.orders.get(client_order_id)
        return tracked.snapshot() if tracked else None

    def open_orders(self) -> list[OrderUpdate]:
        return [o.snapshot() for o in self.orders.values() if not o.status.terminal]

    def stats(self) -> dict[str, Any]:
        return {**asdict(self.counters), "open_orders": sum(1 for o in self.orders.values() if not o.status.terminal),
                "tracked_orders": len(self.orders)}

    def prune(self, older_than_ns: int) -> int:
        """Forget terminal orders last changed before `older_than_ns` (bounded memory in long sessions).
        Their trade ids stay known, so a late duplicate fill is still recognised."""
        gone = [cid for cid, o in self.orders.items() if o.status.terminal and o.updated_ns < older_than_ns]
        for cid in gone:
            order = self.orders.pop(cid)
            self._by_venue_id.pop((order.symbol, order.order_id), None)
        return len(gone)

    # --- commands ---------------------------------------------------------------------------------------

    async def submit(self, intent: Intent) -> OrderUpdate:
        """Send a NEW intent (already through the gates). Idempotent per client order id."""
        if intent.kind is not IntentKind.NEW or intent.side is None:
            raise ValueError(f"submit takes a NEW intent with a side, got {intent.kind} side={intent.side}")
        cid = intent.client_order_id or self.ids.next(intent.strategy_id)
        existing = self.orders.get(cid)
        if existing is not None:
            return existing.snapshot()
        order = TrackedOrder(cid, intent.strategy_id, intent.symbol, intent.side, intent.order_type, intent.qty,
                             intent.price, intent.tif, intent.reduce_only, updated_ns=self._clock_ns())
        self.orders[cid] = order
        self._symbols.add(order.symbol)
        self.counters.submitted += 1
        self._emit(order)
        try:
            answer = await self._broker.place_order(
                symbol=order.symbol, side=order.side.value, order_type=order.order_type.value, quantity=order.qty,
                client_order_id=cid, price=order.price if order.order_type.value == "LIMIT" else None,
                time_in_force=order.tif.value, reduce_only=order.reduce_only)
        except BrokerError as exc:
            if exc.code == BinanceCode.DUPLICATED_CLIENT_ORDER_ID:
                self.counters.resolved_duplicates += 1
                await self._settle(order)
            elif exc.final and not exc.after_unknown_outcome:
                self._transition(order, OrderStatus.REJECTED, reason=f"{exc.code}: {exc.msg}")
            else:  # the order may or may not be at the venue: ask it, by the same client order id
                await self._settle(order)
            return order.snapshot()
        self._apply_rest(order, answer)
        return order.snapshot()

    async def cancel(self, client_order_id: str) -> OrderUpdate:
        order = self.orders.get(client_order_id)
        if order is None:
            raise KeyError(f"no order {client_order_id!r} in this router")
        if order.status.terminal:
            return order.snapshot()
        try:
            answer = await self._broker.cancel_order(order.symbol, client_order_id=client_order_id)
        except BrokerError as exc:
            if exc.code in (BinanceCode.CANCEL_REJECTED, BinanceCode.NO_SUCH_ORDER) or exc.outcome_unknown:
                await self._settle(order)  # already filled/canceled, or the cancel's answer was lost
                return order.snapshot()
            raise
        self._apply_rest(order, answer)
        return order.snapshot()

    async def cancel_all(self, symbols: Iterable[str] | None = None) -> ResyncReport:
        """Stop: cancel every open order on the given symbols (default: every symbol this router used),
        then re-read the venue so the returned report reflects what is really left."""
        targets = sorted(set(symbols) if symbols is not None else set(self._symbols))
        for symbol in targets:
            await self._broker.cancel_all(symbol)
        return await self.resync(targets)

    # --- reports from the venue -------------------------------------------------------------------------

    def on_user_event(self, event: UserEvent) -> None:
        if isinstance(event, OrderTradeUpdate):
            self._apply_order_event(event.o)
        elif isinstance(event, AccountUpdate):
            self._on_account(event)

    def note_stream_down(self) -> None:
        """The user-data stream dropped; the resync after the reconnect reads trades from the last confirmed
        point, so nothing needs remembering here beyond a log line."""
        log.warning("router.stream_down", open_orders=sum(1 for o in self.orders.values() if not o.status.terminal))

    async def resync(self, symbols: Iterable[str] | None = None) -> ResyncReport:
        """Re-read open orders and trades since the last known fill; settle orders the venue no longer lists."""
        async with self._lock:
            self.counters.resyncs += 1
            venue_open = await self._broker.open_orders()
            listed: set[str] = set()
            for answer in venue_open:
                order = self.orders.get(answer.clientOrderId) or self._adopt_rest(answer)
                listed.add(order.client_order_id)
                self._apply_rest(order, answer)
            wanted = set(symbols) if symbols is not None else set(self._symbols)
            wanted |= {a.symbol for a in venue_open}
            recovered = 0
            for symbol in sorted(wanted):
                cursor = self._confirmed.get(symbol)
                trades = await self._broker.user_trades_since(
                    symbol, from_id=cursor + 1 if cursor is not None else None,
                    start_time_ms=None if cursor is not None else self.session_start_ms - RESYNC_LOOKBACK_MS)
                for trade in trades:
                    recovered += self._apply_user_trade(trade)
                if trades:
                    self._confirmed[symbol] = max(cursor or 0, trades[-1].id)
            self.counters.resync_fills += recovered
            settled = 0
            for order in list(self.orders.values()):
                if order.symbol in wanted and not order.status.terminal and order.client_order_id not in listed:
                    await self._settle(order)
                    settled += 1
            log.info("router.resync", open_orders=len(venue_open), fills_recovered=recovered, settled=settled)
            return ResyncReport(len(venue_open), recovered, settled)

    # --- internals --------------------------------------------------------------------------------------

    async def _settle(self, order: TrackedOrder) -> None:
        """Learn an order's state from the venue by its client order id (after a lost answer)."""
        try:
            answer = await self._broker.query_order(order.symbol, client_order_id=order.client_order_id)
        except BrokerError as exc:
            if exc.code == BinanceCode.NO_SUCH_ORDER and order.status is OrderStatus.NEW:
                self._transition(order, OrderStatus.REJECTED, reason="never reached the venue (-2013 on query)")
                order.uncertain = False
                return
            order.uncertain = True
            self.counters.uncertain += 1
            log.warning("router.order_uncertain", client_order_id=order.client_order_id, code=exc.code,
                        msg=exc.msg, hint="the next resync (open orders + userTrades) settles it")
            return
        order.uncertain = False
        self._apply_rest(order, answer)

    def _index(self, order: TrackedOrder, order_id: int) -> None:
        if order_id > 0:
            order.order_id = order_id
            self._by_venue_id[(order.symbol, order_id)] = order.client_order_id

    def _apply_rest(self, order: TrackedOrder, answer: RestOrder) -> None:
        self._index(order, answer.orderId)
        if answer.executedQty > order.venue_filled_qty:
            order.venue_filled_qty = answer.executedQty
        status = BINANCE_STATUS.get(answer.status)
        if status is None:
            self._bad(f"order {order.client_order_id}: unknown status {answer.status!r} in REST answer",
                      repr(answer))
            return
        self._transition(order, status)

    def _strategy_of(self, client_order_id: str) -> str:
        head, sep, _ = client_order_id.rpartition("-")
        strategy, sep2, _ = head.rpartition("-")
        return strategy if sep and sep2 and strategy else MANUAL_STRATEGY

    def _adopt(self, cid: str, symbol: str, side: Side, order_type: str, qty: Decimal, price: Decimal,
               tif: str, reduce_only: bool) -> TrackedOrder:
        self.counters.unknown_orders += 1
        order = TrackedOrder(cid, self._strategy_of(cid), symbol, side, parse_type(order_type), qty,
                             price if price > 0 else None, parse_tif(tif), reduce_only, external=True,
                             updated_ns=self._clock_ns())
        self.orders[cid] = order
        self._symbols.add(symbol)
        log.info("router.order_adopted", client_order_id=cid, symbol=symbol, strategy=order.strategy_id)
        return order

    def _adopt_rest(self, answer: RestOrder) -> TrackedOrder:
        side = parse_side(answer.side) or Side.BUY
        return self._adopt(answer.clientOrderId, answer.symbol, side, answer.type, answer.origQty, answer.price,
                           answer.timeInForce, answer.reduceOnly)

    def _apply_order_event(self, o: OrderPayload) -> None:
        side = parse_side(o.S)
        status = BINANCE_STATUS.get(o.X)
        numbers = (o.q, o.p, o.l, o.z, o.L, o.n)
        if side is None or status is None or not all(n.is_finite() for n in numbers) or min(o.q, o.l, o.z) < 0:
            self._bad(f"ORDER_TRADE_UPDATE for {o.c!r}: side {o.S!r}, status {o.X!r} or a quantity is invalid",
                      repr(o))
            return
        cid = o.c or self._by_venue_id.get((o.s, o.i), "")
        order = self.orders.get(cid) if cid else None
        if order is None:
            order = self._adopt(cid or f"venue-{o.i}", o.s, side, o.o, o.q, o.p, o.f, o.R)
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
            order = self._adopt(f"venue-{trade.orderId}", trade.symbol, side, "MARKET", trade.qty, trade.price,
                                "GTC", False)
            self._index(order, trade.orderId)
        before = self.counters.fills
        self._apply_fill(order, trade.id, trade.qty, trade.price, abs(trade.commission), trade.maker, trade.time)
        if self.counters.fills > before and not order.status.terminal:
            derived = OrderStatus.FILLED if order.filled_qty >= order.qty else OrderStatus.PARTIALLY_FILLED
            self._transition(order, derived)
        return self.counters.fills - before

    def _apply_fill(self, order: TrackedOrder, trade_id: int, qty: Decimal, price: Decimal, fee: Decimal,
                    maker: bool, time_ms: int) -> None:
        key = (order.symbol, trade_id)
        if key in self._fills_seen:
            self.counters.duplicate_fills += 1
            return
        if not (qty.is_finite() and price.is_finite() and fee.is_finite()) or qty <= 0 or price <= 0:
            self._bad(f"fill {trade_id} of {order.client_order_id}: qty {qty} / price {price} invalid",
                      f"{order.symbol} {trade_id} {qty} {price}")
            return
        self._fills_seen.add(key)
        order.trade_ids.add(trade_id)
        order.filled_qty += qty
        order.fill_notional += qty * price
        if order.filled_qty > order.qty:
            self.counters.overfills += 1
            log.error("router.overfill", client_order_id=order.client_order_id, qty=str(order.qty),
                      filled=str(order.filled_qty), trade_id=trade_id)
        self.counters.fills += 1
        self._on_fill(Fill(strategy_id=order.strategy_id, symbol=order.symbol, side=order.side, qty=qty,
                           price=price, fee=fee, client_order_id=order.client_order_id, order_id=order.order_id,
                           trade_id=trade_id, time_ns=time_ms * 1_000_000, is_maker=maker))

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
            if previous is OrderStatus.NEW and new is not OrderStatus.REJECTED:
                self.counters.acked += 1
            if new is OrderStatus.REJECTED:
                self.counters.rejected += 1
            self._emit(order)
        elif outcome is Transition.STALE:
            self.counters.stale_updates += 1
        elif outcome is Transition.ILLEGAL:
            self.counters.illegal_transitions += 1
            log.error("router.illegal_transition", client_order_id=order.client_order_id,
                      current=order.status.value, reported=new.value)
        return outcome

    def _emit(self, order: TrackedOrder) -> None:
        snapshot = order.snapshot()
        order.emitted_filled = snapshot.filled_qty
        self._on_order(snapshot)

    def _bad(self, reason: str, payload: str) -> None:
        self.counters.bad_events += 1
        log.error("router.bad_report", reason=reason)
        self._on_bad_event(reason, payload)
