"""Frame and REST-row decoding: every good shape becomes a row, every bad one a rejection naming why."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from hftops.model.binance import RestAggTrade, RestHistoricalTrade
from hftops.model.market import BboRow, TradeRow
from hftops.model.streams import MdKind
from hftops.pipeline.collector.decode import (
    Decoded,
    FrameDecoder,
    Rejected,
    rest_agg_trade_row,
    rest_historical_trade_row,
)
from hftops.pipeline.collector.reasons import RejectReason

NOW = 1_700_000_000_123_456_789


def agg(**over: Any) -> dict[str, Any]:
    data = {
        "e": "aggTrade",
        "E": 1700000000001,
        "s": "BTCUSDT",
        "a": 42,
        "p": "27123.10",
        "q": "0.005",
        "f": 100,
        "l": 101,
        "T": 1700000000000,
        "m": True,
    }
    data.update(over)
    return data


def book(**over: Any) -> dict[str, Any]:
    data = {
        "e": "bookTicker",
        "u": 7,
        "E": 1700000000002,
        "T": 1700000000001,
        "s": "ETHUSDT",
        "b": "1800.01",
        "B": "3.2",
        "a": "1800.02",
        "A": "0",
    }
    data.update(over)
    return data


def frame(stream: str, data: Any) -> bytes:
    return msgspec.json.encode({"stream": stream, "data": data})


@pytest.fixture
def decoder() -> FrameDecoder:
    return FrameDecoder(["BTCUSDT", "ETHUSDT"], "aggTrade", bbo=True, max_frame_bytes=2048)


def test_agg_trade_becomes_a_trade_row(decoder: FrameDecoder) -> None:
    result = decoder.decode(frame("btcusdt@aggTrade", agg()), NOW)
    assert result == Decoded(
        MdKind.TRADE,
        "BTCUSDT",
        TradeRow(42, "27123.10", "0.005", True, 1700000000000, 1700000000001, NOW, 100, 101),
    )


def test_book_ticker_becomes_a_bbo_row_and_zero_qty_is_allowed(decoder: FrameDecoder) -> None:
    result = decoder.decode(frame("ethusdt@bookTicker", book()), NOW)
    assert result == Decoded(
        MdKind.BBO, "ETHUSDT", BboRow(7, "1800.01", "3.2", "1800.02", "0", 1700000000002, 1700000000001, NOW)
    )


def test_unknown_fields_are_ignored(decoder: FrameDecoder) -> None:
    assert isinstance(decoder.decode(frame("btcusdt@aggTrade", agg(extra=[1, 2], X="MARKET")), NOW), Decoded)


def test_spot_trade_stream() -> None:
    spot = FrameDecoder(["BTCUSDT"], "trade", bbo=False)
    data = {"e": "trade", "E": 5, "s": "BTCUSDT", "t": 9, "p": "1.5", "q": "2", "T": 4, "m": False, "M": True}
    result = spot.decode(frame("btcusdt@trade", data), NOW)
    assert result == Decoded(MdKind.TRADE, "BTCUSDT", TradeRow(9, "1.5", "2", False, 4, 5, NOW, 9, 9))
    # bookTicker was not subscribed here
    assert spot.decode(frame("btcusdt@bookTicker", book(s="BTCUSDT")), NOW).reason is RejectReason.UNKNOWN_STREAM


def test_spot_book_ticker_has_no_times() -> None:
    spot = FrameDecoder(["ETHUSDT"], "trade", bbo=True, spot_book_ticker=True)
    data = {"u": 3, "s": "ETHUSDT", "b": "1.0", "B": "2", "a": "1.1", "A": "3"}
    assert spot.decode(frame("ethusdt@bookTicker", data), NOW) == Decoded(
        MdKind.BBO, "ETHUSDT", BboRow(3, "1.0", "2", "1.1", "3", 0, 0, NOW)
    )


BAD_PRICES = [
    "NaN",
    "nan",
    "Infinity",
    "inf",
    "-1.5",
    "0",
    "0.000",
    "1e5",
    " 1",
    "1_000",
    "",
    "abc",
    "1.",
    ".5",
    "+1",
    "١٢",
    "9" * 30,
]


@pytest.mark.parametrize("price", BAD_PRICES)
def test_bad_prices_are_refused(decoder: FrameDecoder, price: str) -> None:
    result = decoder.decode(frame("btcusdt@aggTrade", agg(p=price)), NOW)
    assert isinstance(result, Rejected)
    assert result.reason is RejectReason.BAD_PRICE
    assert (result.symbol, result.kind, result.ref_id) == ("BTCUSDT", "trade", 42)


@pytest.mark.parametrize("field", ["b", "a"])
def test_bad_bbo_prices_are_refused(decoder: FrameDecoder, field: str) -> None:
    result = decoder.decode(frame("ethusdt@bookTicker", book(**{field: "0"})), NOW)
    assert isinstance(result, Rejected) and result.reason is RejectReason.BAD_PRICE


@pytest.mark.parametrize("qty", ["-0.1", "NaN", "inf", "", "1e-3"])
def test_bad_quantities_are_refused(decoder: FrameDecoder, qty: str) -> None:
    result = decoder.decode(frame("btcusdt@aggTrade", agg(q=qty)), NOW)
    assert isinstance(result, Rejected) and result.reason is RejectReason.BAD_QTY


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", RejectReason.BAD_JSON),
        (b"", RejectReason.BAD_JSON),
        (b"[1,2]", RejectReason.BAD_JSON),
        (b'{"stream": "btcusdt@aggTrade"}', RejectReason.BAD_JSON),
        (b'{"data": {}}', RejectReason.BAD_JSON),
        (b'{"stream": 5, "data": {}}', RejectReason.BAD_JSON),
        (b'{"stream": "btcusdt@aggTrade", "data": {"a": 1', RejectReason.BAD_JSON),
        (frame("btcusdt@aggTrade", 17), RejectReason.BAD_EVENT),
        (frame("btcusdt@aggTrade", {k: v for k, v in agg().items() if k != "a"}), RejectReason.BAD_EVENT),
        (frame("btcusdt@aggTrade", agg(a="42")), RejectReason.BAD_EVENT),
        (frame("btcusdt@aggTrade", agg(p=27123.1)), RejectReason.BAD_EVENT),
        (frame("btcusdt@aggTrade", agg(a=2**70)), RejectReason.BAD_ID),
        (frame("btcusdt@aggTrade", agg(E=2**64)), RejectReason.BAD_TIME),
        (frame("btcusdt@aggTrade", agg(e="trade")), RejectReason.BAD_EVENT),
        (frame("btcusdt@aggTrade", agg(s="ETHUSDT")), RejectReason.UNKNOWN_SYMBOL),
        (frame("dogeusdt@aggTrade", agg(s="DOGEUSDT")), RejectReason.UNKNOWN_SYMBOL),
        (frame("btcusdt@depth", agg()), RejectReason.UNKNOWN_STREAM),
        (frame("btcusdt@trade", agg()), RejectReason.UNKNOWN_STREAM),
        (frame("btcusdt@aggTrade", agg(a=-1)), RejectReason.BAD_ID),
        (frame("btcusdt@aggTrade", agg(f=-3)), RejectReason.BAD_ID),
        (frame("ethusdt@bookTicker", book(u=-2)), RejectReason.BAD_ID),
        (frame("btcusdt@aggTrade", agg(T=-1)), RejectReason.BAD_TIME),
        (frame("btcusdt@aggTrade", agg(pad="x" * 3000)), RejectReason.OVERSIZED),
    ],
)
def test_malformed_frames_name_their_fault(decoder: FrameDecoder, payload: bytes, reason: RejectReason) -> None:
    result = decoder.decode(payload, NOW)
    assert isinstance(result, Rejected), result
    assert result.reason is reason
    assert result.detail  # a sentence, for the operator


def test_rest_rows() -> None:
    good = RestAggTrade(a=5, p="1.5", q="2", f=10, l=11, T=99, m=False)
    assert rest_agg_trade_row("BTCUSDT", good, NOW) == TradeRow(5, "1.5", "2", False, 99, 99, NOW, 10, 11)
    bad = RestAggTrade(a=5, p="nan", q="2", f=10, l=11, T=99, m=False)
    rejected = rest_agg_trade_row("BTCUSDT", bad, NOW)
    assert isinstance(rejected, Rejected) and rejected.reason is RejectReason.BAD_PRICE and rejected.ref_id == 5
    spot = RestHistoricalTrade(id=8, price="3", qty="0.1", quoteQty="0.3", time=50, isBuyerMaker=True)
    assert rest_historical_trade_row("ETHUSDT", spot, NOW) == TradeRow(8, "3", "0.1", True, 50, 50, NOW, 8, 8)
