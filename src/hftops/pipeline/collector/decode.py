"""Where a tick enters: decoding and validating venue frames and REST rows into bus rows, or a rejection."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgspec

from hftops.model.binance import (
    AggTrade,
    BookTicker,
    CombinedFrame,
    RestAggTrade,
    RestHistoricalTrade,
    SpotTrade,
)
from hftops.model.market import BboRow, TradeRow
from hftops.model.streams import MdKind
from hftops.pipeline.collector.reasons import RejectReason

# Plain decimal text only: the row keeps the venue's text, so "1e5", " 1", "1_0" or "nan" must not pass
# (float() would accept them). ASCII digits only: \d also matches other scripts' digits.
_DECIMAL = re.compile(r"[0-9]{1,24}(?:\.[0-9]{1,24})?")

TRADE_STREAMS = ("aggTrade", "trade")
INT64_MAX = 2**63 - 1  # ids and times are stored as 64-bit integers on the bus and in the database


class SpotBookTicker(msgspec.Struct, frozen=True):
    """Spot `<symbol>@bookTicker` carries no event type or times (futures' does: model.binance.BookTicker)."""

    u: int
    s: str
    b: str
    B: str
    a: str
    A: str


class Decoded(NamedTuple):
    kind: MdKind
    symbol: str
    row: TradeRow | BboRow


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: RejectReason
    detail: str
    symbol: str = ""
    kind: str = ""
    ref_id: int = -1


def _positive(text: str) -> bool:
    return _DECIMAL.fullmatch(text) is not None and float(text) > 0.0


def _non_negative(text: str) -> bool:
    return _DECIMAL.fullmatch(text) is not None


def check_trade(
    symbol: str, trade_id: int, price: str, qty: str, times: Iterable[int], ids: Iterable[int]
) -> Rejected | None:
    """The checks every trade passes, live or backfilled; None when it is good."""
    kind = MdKind.TRADE.value
    if not _positive(price):
        return Rejected(
            RejectReason.BAD_PRICE,
            f"{symbol} trade {trade_id}: price {price[:40]!r} is not a positive finite decimal",
            symbol,
            kind,
            trade_id,
        )
    if not _non_negative(qty):
        return Rejected(
            RejectReason.BAD_QTY,
            f"{symbol} trade {trade_id}: qty {qty[:40]!r} is not a finite decimal >= 0",
            symbol,
            kind,
            trade_id,
        )
    if any(i < 0 or i > INT64_MAX for i in ids):
        return Rejected(
            RejectReason.BAD_ID,
            f"{symbol} trade {trade_id}: a trade id is below zero or above 2^63-1",
            symbol,
            kind,
            trade_id,
        )
    if any(t < 0 or t > INT64_MAX for t in times):
        return Rejected(
            RejectReason.BAD_TIME,
            f"{symbol} trade {trade_id}: a time is outside 0..2^63-1",
            symbol,
            kind,
            trade_id,
        )
    return None


def _check_bbo(symbol: str, u: int, b: str, bq: str, a: str, aq: str, times: tuple[int, ...]) -> Rejected | None:
    kind = MdKind.BBO.value
    if not (_positive(b) and _positive(a)):
        return Rejected(
            RejectReason.BAD_PRICE,
            f"{symbol} bookTicker {u}: bid {b[:40]!r} / ask {a[:40]!r} must be positive finite decimals",
            symbol,
            kind,
            u,
        )
    if not (_non_negative(bq) and _non_negative(aq)):
        return Rejected(
            RejectReason.BAD_QTY,
            f"{symbol} bookTicker {u}: bid qty {bq[:40]!r} / ask qty {aq[:40]!r} must be finite decimals >= 0",
            symbol,
            kind,
            u,
        )
    if u < 0 or u > INT64_MAX:
        return Rejected(
            RejectReason.BAD_ID, f"{symbol} bookTicker: update id {u} is outside 0..2^63-1", symbol, kind, u
        )
    if any(t < 0 or t > INT64_MAX for t in times):
        return Rejected(RejectReason.BAD_TIME, f"{symbol} bookTicker {u}: a time is outside 0..2^63-1", symbol, kind, u)
    return None


# The converters test the common, good case in one expression (a frame costs ~2 us in all; generator-based
# checks doubled that) and only call the detailed checks, which name the fault, when it fails.
_match = _DECIMAL.fullmatch
_M = INT64_MAX


def _slow_path(found: Rejected | None, symbol: str, kind: MdKind) -> Rejected:
    return found or Rejected(RejectReason.BAD_EVENT, f"{symbol}: event failed validation", symbol, kind.value)


def _agg_trade(symbol: str, ev: AggTrade, now_ns: int) -> Decoded | Rejected:
    a, p, q = ev.a, ev.p, ev.q
    if (
        _match(p) is not None
        and _match(q) is not None
        and float(p) > 0.0
        and 0 <= a <= _M
        and 0 <= ev.f <= _M
        and 0 <= ev.l <= _M
        and 0 <= ev.T <= _M
        and 0 <= ev.E <= _M
    ):
        return Decoded(MdKind.TRADE, symbol, TradeRow(a, p, q, ev.m, ev.T, ev.E, now_ns, ev.f, ev.l))
    return _slow_path(check_trade(symbol, a, p, q, (ev.T, ev.E), (a, ev.f, ev.l)), symbol, MdKind.TRADE)


def _spot_trade(symbol: str, ev: SpotTrade, now_ns: int) -> Decoded | Rejected:
    t, p, q = ev.t, ev.p, ev.q
    if (
        _match(p) is not None
        and _match(q) is not None
        and float(p) > 0.0
        and 0 <= t <= _M
        and 0 <= ev.T <= _M
        and 0 <= ev.E <= _M
    ):
        return Decoded(MdKind.TRADE, symbol, TradeRow(t, p, q, ev.m, ev.T, ev.E, now_ns, t, t))
    return _slow_path(check_trade(symbol, t, p, q, (ev.T, ev.E), (t,)), symbol, MdKind.TRADE)


def _book_ticker(symbol: str, ev: BookTicker, now_ns: int) -> Decoded | Rejected:
    b, a = ev.b, ev.a
    if (
        _match(b) is not None
        and _match(a) is not None
        and _match(ev.B) is not None
        and _match(ev.A) is not None
        and float(b) > 0.0
        and float(a) > 0.0
        and 0 <= ev.u <= _M
        and 0 <= ev.E <= _M
        and 0 <= ev.T <= _M
    ):
        return Decoded(MdKind.BBO, symbol, BboRow(ev.u, b, ev.B, a, ev.A, ev.E, ev.T, now_ns))
    return _slow_path(_check_bbo(symbol, ev.u, b, ev.B, a, ev.A, (ev.E, ev.T)), symbol, MdKind.BBO)


def _spot_book_ticker(symbol: str, ev: SpotBookTicker, now_ns: int) -> Decoded | Rejected:
    bad = _check_bbo(symbol, ev.u, ev.b, ev.B, ev.a, ev.A, ())
    if bad is not None:
        return bad
    return Decoded(MdKind.BBO, symbol, BboRow(ev.u, ev.b, ev.B, ev.a, ev.A, 0, 0, now_ns))


@dataclass(frozen=True, slots=True)
class _Route:
    kind: MdKind
    symbol: str
    event_type: str | None  # the event's "e", when the venue sends one
    decoder: msgspec.json.Decoder[Any]
    convert: Callable[[str, Any, int], Decoded | Rejected]


class FrameDecoder:
    """Combined-stream frames of the configured symbols -> `Decoded` rows, or a `Rejected` naming the fault.

    Never raises on any input: the caller dead-letters every `Rejected` with the raw frame.
    """

    def __init__(
        self,
        symbols: Iterable[str],
        trade_stream: str = "aggTrade",
        bbo: bool = True,
        max_frame_bytes: int = 65536,
        spot_book_ticker: bool = False,
    ) -> None:
        if trade_stream not in TRADE_STREAMS:
            raise ValueError(f"venue.trade_stream {trade_stream!r} must be one of {TRADE_STREAMS}")
        self.symbols = frozenset(symbols)
        self.max_frame_bytes = max_frame_bytes
        self._frame = msgspec.json.Decoder(CombinedFrame)
        trade_route = (
            (AggTrade, "aggTrade", _agg_trade) if trade_stream == "aggTrade" else (SpotTrade, "trade", _spot_trade)
        )
        bbo_route = (
            (SpotBookTicker, None, _spot_book_ticker) if spot_book_ticker else (BookTicker, "bookTicker", _book_ticker)
        )
        suffixes: dict[str, tuple[MdKind, Any, str | None, Any]] = {
            trade_stream: (MdKind.TRADE, *trade_route),
        }
        if bbo:
            suffixes["bookTicker"] = (MdKind.BBO, *bbo_route)
        self._suffixes = frozenset(suffixes)
        self._routes: dict[str, _Route] = {}
        for symbol in self.symbols:
            for suffix, (kind, struct, event_type, convert) in suffixes.items():
                self._routes[f"{symbol.lower()}@{suffix}"] = _Route(
                    kind, symbol, event_type, msgspec.json.Decoder(struct), convert
                )

    def decode(self, payload: bytes, now_ns: int) -> Decoded | Rejected:
        try:
            return self._decode(payload, now_ns)
        except Exception as exc:  # a bug must not stop the feed; the frame is dead-lettered instead
            return Rejected(RejectReason.INTERNAL_ERROR, f"collector failed on this frame: {exc!r}")

    def _decode(self, payload: bytes, now_ns: int) -> Decoded | Rejected:
        size = len(payload)
        if size > self.max_frame_bytes:
            return Rejected(
                RejectReason.OVERSIZED,
                f"frame of {size} bytes exceeds collector.max_frame_bytes={self.max_frame_bytes}",
            )
        try:
            frame = self._frame.decode(payload)
        except msgspec.DecodeError as exc:
            return Rejected(RejectReason.BAD_JSON, f"not a combined-stream frame {{stream, data}}: {exc}")
        route = self._routes.get(frame.stream)
        if route is None:
            return self._unrouted(frame.stream)
        try:
            event = route.decoder.decode(frame.data)
        except msgspec.DecodeError as exc:
            return Rejected(RejectReason.BAD_EVENT, f"{frame.stream[:80]!r}: {exc}", route.symbol, route.kind.value)
        if route.event_type is not None and event.e != route.event_type:
            return Rejected(
                RejectReason.BAD_EVENT,
                f"{frame.stream!r}: event type {event.e[:40]!r} on a {route.event_type} stream",
                route.symbol,
                route.kind.value,
            )
        if event.s != route.symbol:
            return Rejected(
                RejectReason.UNKNOWN_SYMBOL,
                f"{frame.stream!r}: event symbol {event.s[:40]!r} differs from the stream's {route.symbol}",
                route.symbol,
                route.kind.value,
            )
        return route.convert(route.symbol, event, now_ns)

    def _unrouted(self, stream: str) -> Rejected:
        name, _, suffix = stream.partition("@")
        if suffix in self._suffixes:
            return Rejected(
                RejectReason.UNKNOWN_SYMBOL,
                f"stream {stream[:80]!r}: symbol {name.upper()[:40]!r} is not in venue.symbols",
            )
        return Rejected(
            RejectReason.UNKNOWN_STREAM,
            f"stream {stream[:80]!r} was not subscribed (expected <symbol>@{'|'.join(sorted(self._suffixes))})",
        )


# --- REST backfill rows -------------------------------------------------------------------------------------

REST_AGG_TRADES = msgspec.json.Decoder(list[RestAggTrade])
REST_HISTORICAL_TRADES = msgspec.json.Decoder(list[RestHistoricalTrade])
_JSON = msgspec.json.Encoder()


def rest_agg_trade_row(symbol: str, rest: RestAggTrade, now_ns: int) -> TradeRow | Rejected:
    bad = check_trade(symbol, rest.a, rest.p, rest.q, (rest.T,), (rest.a, rest.f, rest.l))
    if bad is not None:
        return bad
    # REST carries no event time; the trade time stands in for it.
    return TradeRow(rest.a, rest.p, rest.q, rest.m, rest.T, rest.T, now_ns, rest.f, rest.l)


def rest_historical_trade_row(symbol: str, rest: RestHistoricalTrade, now_ns: int) -> TradeRow | Rejected:
    bad = check_trade(symbol, rest.id, rest.price, rest.qty, (rest.time,), (rest.id,))
    if bad is not None:
        return bad
    return TradeRow(rest.id, rest.price, rest.qty, rest.isBuyerMaker, rest.time, rest.time, now_ns, rest.id, rest.id)


def rest_row_id(rest: RestAggTrade | RestHistoricalTrade) -> int:
    return rest.a if isinstance(rest, RestAggTrade) else rest.id


def rest_row_payload(rest: RestAggTrade | RestHistoricalTrade) -> bytes:
    return _JSON.encode(rest)
