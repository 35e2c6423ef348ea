"""The order router: idempotent submission, cancels and resync; reports are applied by `execution.reports`.

A new order is registered and reported NEW synchronously (`prepare`), then sent (`send`). After an answer that
may hide a live order (timeout, 5xx, bad JSON) it is resent only once the venue says it never got it (-2013 on
a query by client order id). A cancel is held until its order has reached the venue; a resync never concludes
from a missing order that an order still on its way was rejected.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

import structlog

from hftops.execution.errors import BinanceCode, BrokerError
from hftops.execution.ids import ClientOrderIds
from hftops.execution.reports import VenueReports
from hftops.execution.tracking import TrackedOrder
from hftops.execution.wire import AccountUpdate, OrderTradeUpdate, RestOrder, UserEvent, UserTrade
from hftops.model.orders import Fill, Intent, IntentKind, OrderStatus, OrderUpdate

log = structlog.get_logger("execution.router")
RESYNC_LOOKBACK_MS = 60_000  # first userTrades read of a session starts this long before the session did


class Broker(Protocol):
    """What the router needs from the REST client (BinanceFuturesRest implements it)."""

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
    ) -> RestOrder: ...
    async def cancel_order(
        self, symbol: str, *, order_id: int | None = None, client_order_id: str | None = None
    ) -> RestOrder: ...
    async def query_order(
        self, symbol: str, *, order_id: int | None = None, client_order_id: str | None = None
    ) -> RestOrder: ...
    async def cancel_all(self, symbol: str) -> Any: ...
    async def open_orders(self, symbol: str | None = None) -> list[RestOrder]: ...
    async def user_trades_since(
        self, symbol: str, *, from_id: int | None = None, start_time_ms: int | None = None, max_pages: int = 100
    ) -> list[UserTrade]: ...


@dataclass(frozen=True)
class ResyncReport:
    open_orders: int
    fills_recovered: int
    orders_settled: int


class Presence(StrEnum):
    """What a query by client order id told about an order."""

    FOUND = "found"  # the venue has it; its state is applied
    ABSENT = "absent"  # -2013: the venue never saw it
    UNKNOWN = "unknown"  # the query failed too


def _noop(_: Any) -> None:
    return None


class OrderRouter(VenueReports):
    """Commands to the venue (submit, cancel, resync); the reports it hears are applied by VenueReports."""

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
        place_attempts: int = 3,
        cancel_wait_s: float = 30.0,
    ) -> None:
        self._broker = broker
        self.place_attempts = max(1, place_attempts)  # sends of one new order the venue said it never saw
        self.cancel_wait_s = cancel_wait_s  # bound on holding a cancel until its order reached the venue
        self.ids = ids
        super().__init__(on_order=on_order, on_fill=on_fill, on_bad_event=on_bad_event, clock_ns=clock_ns)
        self._on_account = on_account
        self.session_start_ms = clock_ns() // 1_000_000
        # first userTrades read of a session starts here when set (the engine: its checkpoint's floor), so fills
        # made while a previous session was down are recovered however long it was down
        self.backfill_from_ms: int | None = None
        # symbol -> highest trade id returned by the last userTrades read: every trade of ours up to it is
        # known. Stream fills do not move it (one missed before them would otherwise be skipped for good).
        self._confirmed: dict[str, int] = {}
        self._lock = asyncio.Lock()  # one resync at a time
        self._unsent: set[str] = set()  # prepared, `send` not yet called

    # --- queries ----------------------------------------------------------------------------------------

    def order(self, client_order_id: str) -> OrderUpdate | None:
        tracked = self.orders.get(client_order_id)
        return tracked.snapshot() if tracked else None

    def open_orders(self) -> list[OrderUpdate]:
        return [o.snapshot() for o in self.orders.values() if not o.status.terminal]

    def stats(self) -> dict[str, Any]:
        return {
            **asdict(self.counters),
            "open_orders": sum(1 for o in self.orders.values() if not o.status.terminal),
            "tracked_orders": len(self.orders),
        }

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
        return await self.send(self.prepare(intent))

    def prepare(self, intent: Intent) -> str:
        """Register a NEW intent and report it NEW, synchronously; `send` puts it on the wire. The engine
        prepares an order the moment it is accepted, so the strategy and the gates count it from the next
        event on (not only once a send task first runs). Returns the client order id."""
        if intent.kind is not IntentKind.NEW or intent.side is None:
            raise ValueError(f"submit takes a NEW intent with a side, got {intent.kind} side={intent.side}")
        cid = intent.client_order_id or self.ids.next(intent.strategy_id)
        if cid in self.orders:
            return cid
        order = TrackedOrder(
            cid,
            intent.strategy_id,
            intent.symbol,
            intent.side,
            intent.order_type,
            intent.qty,
            intent.price,
            intent.tif,
            intent.reduce_only,
            updated_ns=self._clock_ns(),
        )
        self.orders[cid] = order
        self._symbols.add(order.symbol)
        self.counters.submitted += 1
        self._placing[cid] = asyncio.Event()
        self._unsent.add(cid)
        self._emit(order)
        return cid

    async def send(self, client_order_id: str) -> OrderUpdate:
        """Put a prepared order on the wire (once: another call returns its current state)."""
        order = self.orders[client_order_id]
        if client_order_id not in self._unsent:
            return order.snapshot()
        self._unsent.discard(client_order_id)
        try:
            await self._place(order)
        finally:
            placed = self._placing.pop(client_order_id, None)
            if placed is not None:
                placed.set()
        return order.snapshot()

    async def _place(self, order: TrackedOrder) -> None:
        """Send a new order; after an answer that may hide a live order, ask the venue before any resend."""
        for attempt in range(1, self.place_attempts + 1):
            try:
                answer = await self._broker.place_order(
                    symbol=order.symbol,
                    side=order.side.value,
                    order_type=order.order_type.value,
                    quantity=order.qty,
                    client_order_id=order.client_order_id,
                    price=order.price if order.order_type.value == "LIMIT" else None,
                    time_in_force=order.tif.value,
                    reduce_only=order.reduce_only,
                )
            except BrokerError as exc:
                duplicate = exc.code == BinanceCode.DUPLICATED_CLIENT_ORDER_ID
                if duplicate:
                    self.counters.resolved_duplicates += 1
                elif exc.final and not exc.after_unknown_outcome:
                    self._transition(order, OrderStatus.REJECTED, reason=f"{exc.code}: {exc.msg}")
                    return
                presence = await self._settle(order, absent_is_rejected=False)
                if presence is not Presence.ABSENT or order.status is not OrderStatus.NEW:
                    return  # found (state applied) or still unknown (the next resync settles it)
                # resend only what may have been lost on the way; a refusal the query confirms stands
                if not exc.outcome_unknown or attempt == self.place_attempts:
                    reason = (
                        f"never reached the venue after {attempt} sends (-2013 on query; last {exc.code}: {exc.msg})"
                        if exc.outcome_unknown
                        else f"{exc.code}: {exc.msg}"
                    )
                    self._transition(order, OrderStatus.REJECTED, reason=reason)
                    return
                self.counters.resends += 1
                log.info(
                    "router.order_resent", client_order_id=order.client_order_id, attempt=attempt + 1, after=exc.code
                )
                continue
            self._apply_rest(order, answer)
            return

    async def _until_placed(self, order: TrackedOrder) -> None:
        """Hold a cancel until its order has reached the venue (reported) or its submit has returned."""
        placed = self._placing.get(order.client_order_id)
        if placed is None or placed.is_set():
            return
        self.counters.cancels_held += 1
        try:
            await asyncio.wait_for(placed.wait(), self.cancel_wait_s)
        except TimeoutError:
            log.warning(
                "router.cancel_not_held_longer",
                client_order_id=order.client_order_id,
                waited_s=self.cancel_wait_s,
                hint="the order's submit is still unanswered; canceling now",
            )

    async def cancel(self, client_order_id: str) -> OrderUpdate:
        order = self.orders.get(client_order_id)
        if order is None:
            raise KeyError(f"no order {client_order_id!r} in this router")
        await self._until_placed(order)
        if order.status.terminal:
            return order.snapshot()
        try:
            if order.copy_of:  # a second venue order under a reused client order id: name it by venue id
                answer = await self._broker.cancel_order(order.symbol, order_id=order.order_id)
            else:
                answer = await self._broker.cancel_order(order.symbol, client_order_id=client_order_id)
        except BrokerError as exc:
            if exc.code in (BinanceCode.CANCEL_REJECTED, BinanceCode.NO_SUCH_ORDER) or exc.outcome_unknown:
                # already filled/canceled, or the cancel's answer was lost: ask the venue
                await self._settle(order, absent_is_rejected=client_order_id not in self._placing)
                return order.snapshot()
            raise
        self._apply_rest(order, answer)
        return order.snapshot()

    async def cancel_all(self, symbols: Iterable[str] | None = None) -> ResyncReport:
        """Stop: cancel every open order on the given symbols (default: every symbol this router used),
        then re-read the venue so the returned report reflects what is really left."""
        targets = sorted(set(symbols) if symbols is not None else set(self._symbols))
        on_the_way = [self.orders[cid] for cid in list(self._placing) if self.orders[cid].symbol in targets]
        for order in on_the_way:  # an order landing after the sweep would rest unseen
            await self._until_placed(order)
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
                    symbol,
                    from_id=cursor + 1 if cursor is not None else None,
                    start_time_ms=None if cursor is not None else self._first_read_ms(),
                )
                for trade in trades:
                    if (symbol, trade.orderId) not in self._by_venue_id and (symbol, trade.id) not in self._fills_seen:
                        await self._learn_order(symbol, trade.orderId)
                    recovered += self._apply_user_trade(trade)
                if trades:
                    self._confirmed[symbol] = max(cursor or 0, trades[-1].id)
            self.counters.resync_fills += recovered
            settled = 0
            for order in list(self.orders.values()):
                if (
                    order.symbol in wanted
                    and not order.status.terminal
                    and order.client_order_id not in listed
                    and order.client_order_id not in self._placing
                ):  # its submit settles an order on its way
                    await self._settle(order)
                    settled += 1
            log.info("router.resync", open_orders=len(venue_open), fills_recovered=recovered, settled=settled)
            return ResyncReport(len(venue_open), recovered, settled)

    # --- internals --------------------------------------------------------------------------------------

    async def _learn_order(self, symbol: str, order_id: int) -> None:
        """An order known only from a trade (placed by an earlier session): userTrades carries no client order
        id, so ask the venue for the order, else its fills would be booked under MANUAL, not their strategy."""
        try:
            answer = await self._broker.query_order(symbol, order_id=order_id)
        except BrokerError as exc:
            log.warning(
                "router.order_unknown",
                symbol=symbol,
                order_id=order_id,
                code=exc.code,
                msg=exc.msg,
                hint="its fills are booked under MANUAL",
            )
            return
        known = self.orders.get(answer.clientOrderId)
        self._apply_rest(known if known is not None else self._adopt_rest(answer), answer)

    def _first_read_ms(self) -> int:
        start = self.session_start_ms - RESYNC_LOOKBACK_MS
        return start if self.backfill_from_ms is None else min(start, self.backfill_from_ms)

    async def _settle(self, order: TrackedOrder, *, absent_is_rejected: bool = True) -> Presence:
        """Learn an order's state from the venue by its client order id (after a lost answer). A -2013 makes a
        NEW order REJECTED only when `absent_is_rejected`: never while its submit may still deliver it."""
        try:
            if order.copy_of:
                answer = await self._broker.query_order(order.symbol, order_id=order.order_id)
            else:
                answer = await self._broker.query_order(order.symbol, client_order_id=order.client_order_id)
        except BrokerError as exc:
            if exc.code == BinanceCode.NO_SUCH_ORDER:
                order.uncertain = False
                if order.status is OrderStatus.NEW and absent_is_rejected:
                    self._transition(order, OrderStatus.REJECTED, reason="never reached the venue (-2013 on query)")
                return Presence.ABSENT
            order.uncertain = True
            self.counters.uncertain += 1
            log.warning(
                "router.order_uncertain",
                client_order_id=order.client_order_id,
                code=exc.code,
                msg=exc.msg,
                hint="the next resync (open orders + userTrades) settles it",
            )
            return Presence.UNKNOWN
        order.uncertain = False
        self._apply_rest(order, answer)
        return Presence.FOUND
