"""Binance USD-M futures wire shapes the broker adapter reads: REST answers and user-data events.

Decoded with msgspec, so a missing field or a wrong type is an error naming the field. Decimal text is kept
as `Decimal`. Fields Binance documents but the adapter does not use are left out (msgspec ignores them);
fields not every venue sends have defaults.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

ZERO = Decimal(0)


class ServerTime(msgspec.Struct, frozen=True):
    serverTime: int


class ListenKey(msgspec.Struct, frozen=True):
    listenKey: str


class Empty(msgspec.Struct, frozen=True):
    """`{}` (listenKey keepalive/close); extra keys are ignored."""


class ErrorBody(msgspec.Struct, frozen=True):
    code: int
    msg: str


class CancelAllAnswer(msgspec.Struct, frozen=True):
    """`DELETE /fapi/v1/allOpenOrders`: {"code": 200, "msg": "The operation of cancel all open order is done."}."""

    code: int = 200
    msg: str = ""


class LeverageAnswer(msgspec.Struct, frozen=True):
    leverage: int
    symbol: str
    maxNotionalValue: str = ""


class RestOrder(msgspec.Struct, frozen=True):
    """An order as `POST/DELETE/GET /fapi/v1/order` and `GET /fapi/v1/openOrders` return it."""

    orderId: int
    symbol: str
    status: str
    clientOrderId: str
    price: Decimal
    origQty: Decimal
    executedQty: Decimal
    side: str
    type: str
    timeInForce: str = "GTC"
    avgPrice: Decimal = ZERO
    cumQuote: Decimal = ZERO
    reduceOnly: bool = False
    updateTime: int = 0
    time: int = 0


class UserTrade(msgspec.Struct, frozen=True):
    """One element of `GET /fapi/v1/userTrades` (no client order id: map by orderId)."""

    id: int
    orderId: int
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    commissionAsset: str
    time: int
    realizedPnl: Decimal = ZERO
    quoteQty: Decimal = ZERO
    maker: bool = False
    buyer: bool = False
    positionSide: str = "BOTH"


class AccountAsset(msgspec.Struct, frozen=True):
    asset: str
    walletBalance: Decimal
    marginBalance: Decimal = ZERO
    availableBalance: Decimal = ZERO
    initialMargin: Decimal = ZERO
    maintMargin: Decimal = ZERO
    unrealizedProfit: Decimal = ZERO


class AccountPosition(msgspec.Struct, frozen=True):
    symbol: str
    positionAmt: Decimal
    entryPrice: Decimal = ZERO
    unrealizedProfit: Decimal = ZERO
    leverage: str = ""
    positionSide: str = "BOTH"


class Account(msgspec.Struct, frozen=True):
    """`GET /fapi/v2/account` (single-asset mode totals are in USDT)."""

    totalWalletBalance: Decimal
    totalMarginBalance: Decimal
    availableBalance: Decimal
    totalInitialMargin: Decimal = ZERO
    totalMaintMargin: Decimal = ZERO
    totalUnrealizedProfit: Decimal = ZERO
    canTrade: bool = True
    assets: list[AccountAsset] = []
    positions: list[AccountPosition] = []


class PositionRisk(msgspec.Struct, frozen=True):
    """One element of `GET /fapi/v2/positionRisk` (one-way mode: positionSide BOTH, signed positionAmt)."""

    symbol: str
    positionAmt: Decimal
    entryPrice: Decimal
    markPrice: Decimal = ZERO
    unRealizedProfit: Decimal = ZERO
    liquidationPrice: Decimal = ZERO
    leverage: str = ""
    marginType: str = "cross"
    positionSide: str = "BOTH"
    notional: Decimal = ZERO
    updateTime: int = 0


# --- user-data stream -------------------------------------------------------------------------------------


class EventEnvelope(msgspec.Struct, frozen=True):
    """Just the event type, read first so that an unknown type is skipped, not called malformed."""

    e: str


class OrderPayload(msgspec.Struct, frozen=True):
    """`o` of ORDER_TRADE_UPDATE. `l`/`L`/`t` describe the last fill when `x` is TRADE."""

    s: str  # symbol
    c: str  # client order id
    S: str  # side
    o: str  # order type
    f: str  # time in force
    q: Decimal  # original quantity
    p: Decimal  # original price
    x: str  # execution type: NEW, CANCELED, CALCULATED, EXPIRED, TRADE, AMENDMENT
    X: str  # order status
    i: int  # order id
    l: Decimal  # noqa: E741 - last filled quantity
    z: Decimal  # cumulative filled quantity
    L: Decimal  # last filled price
    T: int  # trade time
    t: int  # trade id (0 unless x is TRADE)
    ap: Decimal = ZERO  # average price
    N: str = ""  # commission asset, absent without commission
    n: Decimal = ZERO  # commission
    m: bool = False  # maker
    R: bool = False  # reduce only
    ps: str = "BOTH"
    rp: Decimal = ZERO  # realized profit of the trade


class OrderTradeUpdate(msgspec.Struct, frozen=True):
    e: str
    E: int
    T: int
    o: OrderPayload


class BalanceUpdate(msgspec.Struct, frozen=True):
    a: str
    wb: Decimal
    cw: Decimal
    bc: Decimal = ZERO


class PositionUpdate(msgspec.Struct, frozen=True):
    s: str
    pa: Decimal
    ep: Decimal
    cr: Decimal = ZERO
    up: Decimal = ZERO
    mt: str = "cross"
    iw: Decimal = ZERO
    ps: str = "BOTH"


class AccountPayload(msgspec.Struct, frozen=True):
    m: str
    B: list[BalanceUpdate] = []
    P: list[PositionUpdate] = []


class AccountUpdate(msgspec.Struct, frozen=True):
    e: str
    E: int
    T: int
    a: AccountPayload


class ListenKeyExpired(msgspec.Struct, frozen=True):
    e: str
    E: int = 0


UserEvent = OrderTradeUpdate | AccountUpdate | ListenKeyExpired

ENVELOPE = msgspec.json.Decoder(EventEnvelope)
EVENT_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "ORDER_TRADE_UPDATE": msgspec.json.Decoder(OrderTradeUpdate),
    "ACCOUNT_UPDATE": msgspec.json.Decoder(AccountUpdate),
    "listenKeyExpired": msgspec.json.Decoder(ListenKeyExpired),
}


class UnknownEvent(Exception):
    """A well-formed event of a type the adapter does not use (e.g. TRADE_LITE, MARGIN_CALL)."""


def decode_user_event(raw: bytes | str) -> UserEvent:
    """Decode one user-data frame. Raises msgspec.DecodeError (malformed) or UnknownEvent (other type)."""
    kind = ENVELOPE.decode(raw).e
    decoder = EVENT_DECODERS.get(kind)
    if decoder is None:
        raise UnknownEvent(kind)
    event: UserEvent = decoder.decode(raw)
    return event
