"""Binance wire formats as the venue writes them: stream names, event JSON, WebSocket text frames, REST rows.

Every event is formatted once per tick into bytes by %-formatting a per-symbol template (measured on this box:
0.57 us a combined aggTrade frame, against 0.71 us for a msgspec Struct and 0.92 us for a dict through
msgspec.json), framed once, and the same bytes are written to every connection subscribed to that stream.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import StrEnum

from hftops.venue.symbols import SymbolSpec


class StreamKind(StrEnum):
    AGG_TRADE = "aggTrade"  # USD-M futures
    TRADE = "trade"  # Spot
    BOOK_TICKER = "bookTicker"


class StreamError(ValueError):
    """A stream name the venue does not serve; the message names it and what is served."""


@dataclass(frozen=True, slots=True)
class StreamName:
    symbol: str  # upper case, as in the config
    kind: StreamKind

    def __str__(self) -> str:
        return f"{self.symbol.lower()}@{self.kind.value}"


def parse_stream(name: str, symbols: frozenset[str]) -> StreamName:
    prefix, sep, kind = name.partition("@")
    if not sep or not prefix:
        raise StreamError(f"invalid stream name {name!r}: expected <symbol>@<aggTrade|trade|bookTicker>")
    if prefix != prefix.lower():
        raise StreamError(f"invalid stream name {name!r}: stream symbols are lower case, e.g. btcusdt@aggTrade")
    if prefix.upper() not in symbols:
        raise StreamError(f"invalid stream name {name!r}: unknown symbol; this venue serves {sorted(symbols)}")
    try:
        return StreamName(prefix.upper(), StreamKind(kind))
    except ValueError:
        raise StreamError(
            f"invalid stream name {name!r}: unknown stream type {kind!r}; served: {[k.value for k in StreamKind]}"
        ) from None


# ---------------------------------------------------------------------------------------------- frames

_HEADER_SMALL = [bytes((0x81, n)) for n in range(126)]
_HEADER_16 = struct.Struct(">BBH")
_HEADER_64 = struct.Struct(">BBQ")


def text_frame_header(length: int) -> bytes:
    """RFC 6455 header of one unmasked, unfragmented text frame (server to client, no extension)."""
    if length < 126:
        return _HEADER_SMALL[length]
    if length < 65536:
        return _HEADER_16.pack(0x81, 126, length)
    return _HEADER_64.pack(0x81, 127, length)


def frame_all(payloads: list[bytes]) -> list[bytes]:
    """Header and payload of each message, interleaved, ready for one b''.join and one transport write."""
    parts: list[bytes] = []
    append = parts.append
    for payload in payloads:
        length = len(payload)
        append(_HEADER_SMALL[length] if length < 126 else text_frame_header(length))
        append(payload)
    return parts


# ---------------------------------------------------------------------------------------------- events

_BOOL = (b"false", b"true")


def _templates(spec: SymbolSpec) -> dict[StreamKind, bytes]:
    sym = spec.symbol.encode()
    return {
        StreamKind.AGG_TRADE: b'{"e":"aggTrade","E":%d,"s":"'
        + sym
        + b'","a":%d,"p":"%s","q":"%s","f":%d,"l":%d,"T":%d,"m":%s}',
        StreamKind.TRADE: b'{"e":"trade","E":%d,"s":"' + sym + b'","t":%d,"p":"%s","q":"%s","T":%d,"m":%s,"M":true}',
        StreamKind.BOOK_TICKER: b'{"e":"bookTicker","u":%d,"E":%d,"T":%d,"s":"'
        + sym
        + b'","b":"%s","B":"%s","a":"%s","A":"%s"}',
    }


@dataclass(frozen=True)
class EventTemplates:
    """Per-symbol, per-stream %-templates, raw (`/ws`) and wrapped for combined streams (`/stream`)."""

    raw: dict[StreamName, bytes] = field(default_factory=dict)
    combined: dict[StreamName, bytes] = field(default_factory=dict)

    @classmethod
    def for_specs(cls, specs: list[SymbolSpec]) -> EventTemplates:
        templates = cls()
        for spec in specs:
            for kind, template in _templates(spec).items():
                name = StreamName(spec.symbol, kind)
                templates.raw[name] = template
                templates.combined[name] = b'{"stream":"' + str(name).encode() + b'","data":' + template + b"}"
        return templates


def decimal_texts(units: list[int], decimals: int, fmt: bytes) -> list[bytes]:
    if decimals == 0:
        return [fmt % u for u in units]
    scale = 10**decimals
    return [fmt % divmod(u, scale) for u in units]


def agg_trade_payloads(
    template: bytes, event_ms: int, first_id: int, prices: list[bytes], qtys: list[bytes], sides: list[bool]
) -> list[bytes]:
    return [
        template % (event_ms, i, p, q, i, i, event_ms, _BOOL[m])
        for i, p, q, m in zip(range(first_id, first_id + len(prices)), prices, qtys, sides, strict=True)
    ]


def spot_trade_payloads(
    template: bytes, event_ms: int, first_id: int, prices: list[bytes], qtys: list[bytes], sides: list[bool]
) -> list[bytes]:
    return [
        template % (event_ms, i, p, q, event_ms, _BOOL[m])
        for i, p, q, m in zip(range(first_id, first_id + len(prices)), prices, qtys, sides, strict=True)
    ]


def book_ticker_payloads(
    template: bytes, spec: SymbolSpec, event_ms: int, first_id: int, quotes: list[tuple[int, int, int, int]]
) -> list[bytes]:
    price, qty = spec.price_text, spec.qty_text
    return [
        template % (u, event_ms, event_ms, price(b), qty(bq), price(a), qty(aq))
        for u, (b, bq, a, aq) in enumerate(quotes, first_id)
    ]


# ---------------------------------------------------------------------------------------------- REST


def rest_agg_trades(spec: SymbolSpec, rows: list[tuple[int, int, int, int, bool]]) -> bytes:
    price, qty = spec.price_text, spec.qty_text
    items = [
        b'{"a":%d,"p":"%s","q":"%s","f":%d,"l":%d,"T":%d,"m":%s}' % (i, price(p), qty(q), i, i, t, _BOOL[m])
        for i, p, t, q, m in rows
    ]
    return b"[" + b",".join(items) + b"]"


def rest_historical_trades(spec: SymbolSpec, rows: list[tuple[int, int, int, int, bool]]) -> bytes:
    price, qty = spec.price_text, spec.qty_text
    quote_decimals = spec.price_decimals + spec.qty_decimals
    quote_fmt = b"%d" if quote_decimals == 0 else b"%d.%0" + str(quote_decimals).encode() + b"d"
    scale = 10**quote_decimals
    items = []
    for i, p, t, q, m in rows:
        quote = quote_fmt % (p * q) if quote_decimals == 0 else quote_fmt % divmod(p * q, scale)
        items.append(
            b'{"id":%d,"price":"%s","qty":"%s","quoteQty":"%s","time":%d,"isBuyerMaker":%s,'
            b'"isBestMatch":true}' % (i, price(p), qty(q), quote, t, _BOOL[m])
        )
    return b"[" + b",".join(items) + b"]"
