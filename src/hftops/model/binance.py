"""Binance wire formats (USD-M futures market streams and REST, Spot @trade), validated while decoding."""

from __future__ import annotations

import msgspec


class AggTrade(msgspec.Struct, frozen=True):
    """Futures `<symbol>@aggTrade` event."""

    e: str
    E: int
    s: str
    a: int
    p: str
    q: str
    f: int
    l: int  # noqa: E741 - Binance's field name
    T: int
    m: bool


class SpotTrade(msgspec.Struct, frozen=True):
    """Spot `<symbol>@trade` event."""

    e: str
    E: int
    s: str
    t: int
    p: str
    q: str
    T: int
    m: bool
    M: bool = True


class BookTicker(msgspec.Struct, frozen=True):
    """Futures `<symbol>@bookTicker` event."""

    e: str
    u: int
    E: int
    T: int
    s: str
    b: str
    B: str
    a: str
    A: str


class CombinedFrame(msgspec.Struct, frozen=True):
    """`/stream?streams=...` wraps each event as {"stream": "btcusdt@aggTrade", "data": {...}}."""

    stream: str
    data: msgspec.Raw


class RestAggTrade(msgspec.Struct, frozen=True):
    """One element of `GET /fapi/v1/aggTrades`."""

    a: int
    p: str
    q: str
    f: int
    l: int  # noqa: E741
    T: int
    m: bool


class RestHistoricalTrade(msgspec.Struct, frozen=True):
    """One element of Spot `GET /api/v3/historicalTrades`."""

    id: int
    price: str
    qty: str
    quoteQty: str
    time: int
    isBuyerMaker: bool
    isBestMatch: bool = True


class BinanceError(msgspec.Struct, frozen=True):
    code: int
    msg: str
