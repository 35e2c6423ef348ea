from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hftops.engine.marketdata import BadMarketData, bbo_from_row, tick_from_row
from hftops.model.market import BboRow, TradeRow
from hftops.model.orders import Side
from tests.unit.engine.fakes import D


def trade(price: str = "100.5", qty: str = "0.25", maker: bool = True) -> TradeRow:
    return TradeRow(7, price, qty, maker, 1000, 1001, 5, 7, 7)


def quote(bid: str = "99.9", ask: str = "100.1") -> BboRow:
    return BboRow(9, bid, "1", ask, "2", 1000, 999, 5)


def test_views() -> None:
    tick = tick_from_row("BTCUSDT", trade())
    assert (tick.price, tick.qty, tick.taker_side, tick.trade_id, tick.time_ms) == (
        D("100.5"),
        D("0.25"),
        Side.SELL,
        7,
        1000,
    )
    assert tick_from_row("BTCUSDT", trade(maker=False)).taker_side is Side.BUY
    bbo = bbo_from_row("BTCUSDT", quote())
    assert (bbo.bid_price, bbo.ask_qty, bbo.mid, bbo.time_ms) == (D("99.9"), D(2), D(100), 999)


@pytest.mark.parametrize(
    ("row", "match"),
    [
        (trade(price="abc"), "price 'abc' is not a decimal"),
        (trade(price="NaN"), "finite"),
        (trade(price="-1"), "finite"),
        (trade(price="0"), "price 0"),
        (trade(qty="inf"), "qty"),
        (quote(bid="101", ask="100"), "crossed"),
        (quote(ask="x"), "ask_price"),
    ],
)
def test_bad_rows_are_named(row: TradeRow | BboRow, match: str) -> None:
    convert = tick_from_row if isinstance(row, TradeRow) else bbo_from_row
    with pytest.raises(BadMarketData, match=match) as info:
        convert("BTCUSDT", row)  # type: ignore[arg-type]
    assert "BTCUSDT id" in str(info.value)


@given(st.text(max_size=20), st.text(max_size=20))
def test_arbitrary_text_never_escapes_as_another_error(price: str, qty: str) -> None:
    with contextlib.suppress(BadMarketData):
        tick_from_row("X", trade(price=price, qty=qty))
