"""Trading vocabulary: intent kinds, sides, order types, order states, gate decisions and rejection reasons.

One place for the names operators search for; a new reason code is added here first. Quantities and
prices are `Decimal` everywhere on the order path: the venue speaks decimal text, Decimal keeps it exact
(no binary-float drift in positions or PnL), and it is fast enough (C `_decimal`) for the gate chain.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

import msgspec


class IntentKind(StrEnum):
    NEW = "NEW"
    CANCEL = "CANCEL"
    AMEND = "AMEND"
    FORCE_FLAT = "FORCE_FLAT"


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(StrEnum):
    NEW = "NEW"  # created locally, not yet acknowledged by the venue
    ACK = "ACK"  # resting at the venue (Binance reports it as NEW)
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED})

# The order state machine: which status may follow which. A repeated status (a second partial fill) is allowed.
ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.NEW: frozenset(
        {
            OrderStatus.ACK,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELED,
            OrderStatus.REJECTED,
            OrderStatus.EXPIRED,
        }
    ),
    OrderStatus.ACK: frozenset(
        {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED}
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED}
    ),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
}


class GateDecision(StrEnum):
    ACCEPT = "ACCEPT"
    REJECT = "REJECT"
    CLAMP = "CLAMP"  # accepted with a smaller quantity


class RejectReason(StrEnum):
    """Why a gate refused (or clamped) an intent. The frozen set: gates may use nothing else."""

    # limit gates (issue 4)
    MAX_POSITION = "max_position"
    MAX_NOTIONAL = "max_notional"
    MAX_ORDER_RATE = "max_order_rate"
    PRICE_BAND = "price_band"
    MAX_ORDER_QTY = "max_order_qty"
    NO_MARKET_DATA = "no_market_data"  # no mid yet: price band and notional cannot be judged
    INVALID_INTENT = "invalid_intent"  # qty <= 0, LIMIT without price, CANCEL without client id, ...
    UNKNOWN_STRATEGY = "unknown_strategy"
    # safety gates (issue 5) plug into the same chain with these codes
    SESSION_PHASE = "session_phase"
    AUTONOMY_MODE = "autonomy_mode"
    STRATEGY_QUARANTINED = "strategy_quarantined"
    FLATTEN_ONLY = "flatten_only"
    REDUCE_ONLY = "reduce_only"


REJECT_REASONS: frozenset[str] = frozenset(r.value for r in RejectReason)

MANUAL_STRATEGY = "MANUAL"  # owner of positions found at the broker that no strategy opened
ZERO = Decimal(0)


class Intent(msgspec.Struct, frozen=True, kw_only=True):
    """What a strategy wants. NEW/AMEND carry side, qty and (LIMIT) price; CANCEL/AMEND name the order."""

    kind: IntentKind
    strategy_id: str
    symbol: str
    side: Side | None = None
    qty: Decimal = ZERO
    price: Decimal | None = None
    order_type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.GTC
    client_order_id: str | None = None  # required for CANCEL/AMEND; optional for NEW (the router assigns one)
    reduce_only: bool = False
    tag: str = ""  # free text for the strategy's own bookkeeping, e.g. "quote-bid"


class GateResult(msgspec.Struct, frozen=True):
    """A gate's answer. `qty` is the clamped quantity for CLAMP; `gate` names who decided.

    The operator's sentence is `detail`. A hot-path gate passes `text` as a format string and its values as
    `args`, so a refusal costs a tuple, not Decimal-to-text formatting: the sentence is built only when read.
    """

    decision: GateDecision
    reason: RejectReason | None = None
    qty: Decimal | None = None
    gate: str = ""
    text: str = ""  # the detail, or its str.format template when `args` is not empty
    args: tuple[object, ...] = ()

    @property
    def detail(self) -> str:
        return self.text.format(*self.args) if self.args else self.text

    @property
    def accepted(self) -> bool:
        return self.decision is not GateDecision.REJECT


ACCEPTED = GateResult(GateDecision.ACCEPT)


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    """One execution of one order, as the broker reported it. `fee` is in the quote asset, positive = paid."""

    strategy_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal = ZERO
    client_order_id: str = ""
    order_id: int = -1
    trade_id: int = -1
    time_ns: int = 0
    is_maker: bool = False


class OrderUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """An order's new state (from the broker's user-data stream or a REST answer)."""

    strategy_id: str
    symbol: str
    client_order_id: str
    status: OrderStatus
    side: Side
    order_type: OrderType
    qty: Decimal
    price: Decimal | None = None
    filled_qty: Decimal = ZERO
    avg_fill_price: Decimal | None = None
    tif: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    order_id: int = -1
    reason: str = ""  # venue error / expiry cause when REJECTED or EXPIRED
    time_ns: int = 0

    @property
    def remaining_qty(self) -> Decimal:
        return self.qty - self.filled_qty


class Tick(msgspec.Struct, frozen=True, kw_only=True):
    """A trade as strategies see it (decoded from the market-data stream)."""

    symbol: str
    trade_id: int
    price: Decimal
    qty: Decimal
    taker_side: Side  # BUY: an aggressive buyer lifted the offer
    time_ms: int


class Bbo(msgspec.Struct, frozen=True, kw_only=True):
    """Best bid and offer as strategies see it."""

    symbol: str
    update_id: int
    bid_price: Decimal
    bid_qty: Decimal
    ask_price: Decimal
    ask_qty: Decimal
    time_ms: int

    @property
    def mid(self) -> Decimal:
        return (self.bid_price + self.ask_price) / 2
