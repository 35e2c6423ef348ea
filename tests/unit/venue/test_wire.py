"""Frames the venue writes decode with the Binance structs in hftops.model.binance, byte for byte."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hftops.model.binance import (
    AggTrade,
    BookTicker,
    CombinedFrame,
    RestAggTrade,
    RestHistoricalTrade,
    SpotTrade,
)
from hftops.venue.symbols import spec_for
from hftops.venue.wire import (
    EventTemplates,
    StreamError,
    StreamKind,
    StreamName,
    agg_trade_payloads,
    book_ticker_payloads,
    decimal_texts,
    frame_all,
    parse_stream,
    rest_agg_trades,
    rest_historical_trades,
    spot_trade_payloads,
    text_frame_header,
)

SYMBOLS = frozenset({"BTCUSDT", "SOLUSDT"})


def _templates() -> EventTemplates:
    return EventTemplates.for_specs([spec_for("BTCUSDT"), spec_for("SOLUSDT")])


def test_combined_agg_trade_frames_decode_and_carry_the_trade() -> None:
    spec = spec_for("BTCUSDT")
    template = _templates().combined[StreamName("BTCUSDT", StreamKind.AGG_TRADE)]
    prices = decimal_texts([6_000_010, 5_999_990], 2, spec.price_fmt)
    qtys = decimal_texts([7, 1500], 3, spec.qty_fmt)
    payloads = agg_trade_payloads(template, 1_700_000_000_123, 41, prices, qtys, [True, False])
    frames = [msgspec.json.decode(p, type=CombinedFrame) for p in payloads]
    assert {f.stream for f in frames} == {"btcusdt@aggTrade"}
    events = [msgspec.json.decode(f.data, type=AggTrade) for f in frames]
    assert [(e.a, e.f, e.l, e.p, e.q, e.m) for e in events] == [
        (41, 41, 41, "60000.10", "0.007", True),
        (42, 42, 42, "59999.90", "1.500", False),
    ]
    assert all(e.e == "aggTrade" and e.s == "BTCUSDT" and e.T == e.E == 1_700_000_000_123 for e in events)


def test_raw_spot_trade_and_book_ticker_decode() -> None:
    spec = spec_for("SOLUSDT")  # quantity with zero decimals
    templates = _templates()
    trade = spot_trade_payloads(
        templates.raw[StreamName("SOLUSDT", StreamKind.TRADE)],
        5,
        9,
        decimal_texts([15_001], 2, spec.price_fmt),
        decimal_texts([3], 0, spec.qty_fmt),
        [False],
    )
    event = msgspec.json.decode(trade[0], type=SpotTrade)
    assert (event.e, event.t, event.p, event.q, event.M) == ("trade", 9, "150.01", "3", True)
    book = book_ticker_payloads(
        templates.raw[StreamName("SOLUSDT", StreamKind.BOOK_TICKER)], spec, 5, 77, [(15_000, 10, 15_001, 20)]
    )
    quote = msgspec.json.decode(book[0], type=BookTicker)
    assert (quote.e, quote.u, quote.b, quote.B, quote.a, quote.A) == (
        "bookTicker",
        77,
        "150.00",
        "10",
        "150.01",
        "20",
    )


@given(st.integers(min_value=0, max_value=10**15), st.integers(min_value=0, max_value=8))
def test_decimal_text_is_exact(units: int, decimals: int) -> None:
    fmt = b"%d" if decimals == 0 else b"%d.%0" + str(decimals).encode() + b"d"
    (text,) = decimal_texts([units], decimals, fmt)
    assert Decimal(text.decode()) == Decimal(units).scaleb(-decimals)
    assert text.count(b".") == (1 if decimals else 0)


@pytest.mark.parametrize("length", [0, 125, 126, 65535, 65536, 70000])
def test_text_frame_header_follows_rfc6455(length: int) -> None:
    header = text_frame_header(length)
    assert header[0] == 0x81  # FIN + text opcode, no RSV bits
    if length < 126:
        assert header[1] == length and len(header) == 2
    elif length < 65536:
        assert header[1] == 126 and int.from_bytes(header[2:4], "big") == length
    else:
        assert header[1] == 127 and int.from_bytes(header[2:10], "big") == length


def test_frames_parse_with_the_websockets_reader() -> None:
    from websockets.frames import Frame, Opcode
    from websockets.streams import StreamReader

    payloads = [b"x" * n for n in (3, 200, 70_000)]
    reader = StreamReader()
    reader.feed_data(b"".join(frame_all(payloads)))
    for payload in payloads:
        parser = Frame.parse(reader.read_exact, mask=False)
        try:
            next(parser)
        except StopIteration as done:
            frame = done.value
        assert frame.opcode is Opcode.TEXT and frame.fin and frame.data == payload


def test_rest_rows_decode_with_binance_structs() -> None:
    spec = spec_for("BTCUSDT")
    rows = [(5, 6_000_010, 1_700_000_000_000, 12, True), (6, 6_000_020, 1_700_000_000_001, 3, False)]
    agg = msgspec.json.decode(rest_agg_trades(spec, rows), type=list[RestAggTrade])
    assert [(t.a, t.f, t.l, t.p, t.q, t.T, t.m) for t in agg] == [
        (5, 5, 5, "60000.10", "0.012", 1_700_000_000_000, True),
        (6, 6, 6, "60000.20", "0.003", 1_700_000_000_001, False),
    ]
    spot = msgspec.json.decode(rest_historical_trades(spec, rows), type=list[RestHistoricalTrade])
    assert [(t.id, t.price, t.qty, t.quoteQty) for t in spot] == [
        (5, "60000.10", "0.012", "720.00120"),
        (6, "60000.20", "0.003", "180.00060"),
    ]
    assert msgspec.json.decode(rest_agg_trades(spec, []), type=list[RestAggTrade]) == []


@pytest.mark.parametrize(
    "name, problem",
    [
        ("btcusdt", "expected <symbol>@"),
        ("BTCUSDT@aggTrade", "lower case"),
        ("ethusdt@aggTrade", "unknown symbol"),
        ("btcusdt@depth", "unknown stream type"),
        ("@aggTrade", "expected <symbol>@"),
    ],
)
def test_unknown_stream_names_are_refused_with_the_reason(name: str, problem: str) -> None:
    with pytest.raises(StreamError, match=problem):
        parse_stream(name, SYMBOLS)


def test_known_stream_names_parse() -> None:
    assert parse_stream("solusdt@bookTicker", SYMBOLS) == StreamName("SOLUSDT", StreamKind.BOOK_TICKER)
    assert str(parse_stream("btcusdt@trade", SYMBOLS)) == "btcusdt@trade"
