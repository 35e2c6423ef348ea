"""One order as the router tracks it, and the order state machine applied to the venue's reports.

The allowed transitions are `model.orders.ORDER_TRANSITIONS`. A report the table does not allow is one of:
- a duplicate (the same status again, e.g. a second NEW): ignored;
- stale (an earlier status arriving late, e.g. PARTIALLY_FILLED after FILLED when the REST answer overtook
  the stream): ignored and counted — the fill it carries is still applied, by trade id;
- illegal (e.g. CANCELED -> FILLED, REJECTED -> ACK): refused, logged and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from hftops.model.orders import (
    ORDER_TRANSITIONS,
    ZERO,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
)

# Binance's order status (`X` / `status`) -> ours. Binance says NEW for an order resting at the venue: ACK here.
BINANCE_STATUS: dict[str, OrderStatus] = {
    "NEW": OrderStatus.ACK,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
    "REJECTED": OrderStatus.REJECTED,
}

_RANK = {
    OrderStatus.NEW: 0,
    OrderStatus.ACK: 1,
    OrderStatus.PARTIALLY_FILLED: 2,
    OrderStatus.FILLED: 3,
    OrderStatus.CANCELED: 3,
    OrderStatus.REJECTED: 3,
    OrderStatus.EXPIRED: 3,
}


class Transition(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    ILLEGAL = "illegal"


def classify(current: OrderStatus, new: OrderStatus) -> Transition:
    if new in ORDER_TRANSITIONS[current]:
        return Transition.APPLIED
    if new == current:
        return Transition.DUPLICATE
    if _RANK[new] < _RANK[current]:
        return Transition.STALE
    return Transition.ILLEGAL


def parse_side(text: str) -> Side | None:
    try:
        return Side(text)
    except ValueError:
        return None


def parse_type(text: str) -> OrderType:
    try:
        return OrderType(text)
    except ValueError:  # LIQUIDATION and other venue-made orders: they execute like MARKET
        return OrderType.MARKET


def parse_tif(text: str) -> TimeInForce:
    try:
        return TimeInForce(text)
    except ValueError:  # GTX (post-only) and others rest like GTC
        return TimeInForce.GTC


@dataclass
class TrackedOrder:
    client_order_id: str
    strategy_id: str
    symbol: str
    side: Side
    order_type: OrderType
    qty: Decimal
    price: Decimal | None = None
    tif: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    status: OrderStatus = OrderStatus.NEW
    order_id: int = -1
    filled_qty: Decimal = ZERO  # sum of the fills applied (each trade id once)
    fill_notional: Decimal = ZERO
    venue_filled_qty: Decimal = ZERO  # the venue's cumulative filled quantity, which may run ahead of fills
    reason: str = ""
    external: bool = False  # not placed by this router (another session, the venue's liquidation engine)
    uncertain: bool = False  # submitted, outcome unknown: the next resync settles it
    qty_known: bool = True  # False for an order known only from userTrades (adopted after a restart)
    copy_of: str = ""  # client order id reused by this second venue order (it is tracked as `<id>~<venue id>`)
    trade_ids: set[int] = field(default_factory=set)
    updated_ns: int = 0
    emitted_filled: Decimal = ZERO  # filled quantity of the last update handed out

    @property
    def reported_filled(self) -> Decimal:
        return max(self.filled_qty, self.venue_filled_qty)

    def snapshot(self) -> OrderUpdate:
        filled = self.reported_filled
        avg = self.fill_notional / self.filled_qty if self.filled_qty > 0 else None
        return OrderUpdate(
            strategy_id=self.strategy_id,
            symbol=self.symbol,
            client_order_id=self.client_order_id,
            status=self.status,
            side=self.side,
            order_type=self.order_type,
            qty=self.qty,
            price=self.price,
            filled_qty=filled,
            avg_fill_price=avg,
            tif=self.tif,
            reduce_only=self.reduce_only,
            order_id=self.order_id,
            reason=self.reason,
            time_ns=self.updated_ns,
        )
