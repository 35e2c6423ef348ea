"""Orders and fills of the simulated venue: the vocabulary (sides, types, statuses) and the two records.

Quantities and prices are integers in the symbol's units (see `venue.symbols`); money (quote value, fees,
PnL) is Decimal USDT, so nothing is rounded until it becomes a Binance decimal string.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTX = "GTX"  # post only


class Status(StrEnum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"

    @property
    def is_open(self) -> bool:
        return self in (Status.NEW, Status.PARTIALLY_FILLED)


class ExecType(StrEnum):
    """`x` of ORDER_TRADE_UPDATE: what just happened to the order."""

    NEW = "NEW"
    TRADE = "TRADE"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    AMENDMENT = "AMENDMENT"


@dataclass(slots=True)
class Order:
    order_id: int
    client_id: str
    symbol: str
    side: Side
    type: OrderType
    tif: TimeInForce
    qty: int
    price: int  # 0 for MARKET
    reduce_only: bool
    time_ms: int
    status: Status = Status.NEW
    executed: int = 0
    cum_quote: Decimal = Decimal(0)
    update_ms: int = 0

    @property
    def remaining(self) -> int:
        return self.qty - self.executed


@dataclass(slots=True, frozen=True)
class Fill:
    trade_id: int
    order_id: int
    client_id: str
    symbol: str
    side: Side
    price: int
    qty: int
    quote_qty: Decimal
    commission: Decimal  # USDT, positive = paid
    realized_pnl: Decimal
    maker: bool
    time_ms: int
