"""Row lines and the Python validator: what it accepts, the database accepts; garbage is named."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hftops.model.market import BboRow, TradeRow
from hftops.model.streams import MdKind
from hftops.model.tables import MARKET_TRADES
from hftops.store.ddl import BBO_INSERT_COLUMNS, TRADE_INSERT_COLUMNS
from hftops.store.rows import bbo_problem, line_id, line_row, market_lines, trade_problem

T_MS = 1_700_000_000_000


def trade(price: str = "1.5", qty: str = "2", trade_id: int = 1, t_ms: int = T_MS) -> TradeRow:
    return TradeRow(trade_id, price, qty, True, t_ms, t_ms, t_ms * 1_000_000, trade_id, trade_id)


def test_lines_follow_the_insert_column_order() -> None:
    row = trade(trade_id=7)
    (line,) = market_lines(MdKind.TRADE, "sim", "BTCUSDT", [row], 99)
    values = __import__("json").loads(line)
    assert len(values) == len(TRADE_INSERT_COLUMNS)
    assert dict(zip(TRADE_INSERT_COLUMNS, values, strict=True)) == {
        "venue": "sim",
        "symbol": "BTCUSDT",
        "trade_id": 7,
        "price": "1.5",
        "qty": "2",
        "buyer_is_maker": True,
        "trade_time_ms": T_MS,
        "event_time_ms": T_MS,
        "receive_time_ns": T_MS * 1_000_000,
        "first_id": 7,
        "last_id": 7,
        "ingest_time_us": 99,
    }
    assert line_row(MARKET_TRADES, line) == ("sim", "BTCUSDT", row)
    assert line_id(MARKET_TRADES, line) == 7
    bbo = BboRow(3, "1", "2", "3", "4", T_MS, T_MS, 5)
    assert len(__import__("json").loads(market_lines(MdKind.BBO, "v", "S", [bbo], 1)[0])) == len(BBO_INSERT_COLUMNS)


def test_validator_names_the_bad_field() -> None:
    assert trade_problem(trade()) is None
    assert "price" in (trade_problem(trade(price="NaN")) or "")
    assert "greater than zero" in (trade_problem(trade(price="0.000")) or "")
    assert "qty" in (trade_problem(trade(qty="-1")) or "")
    assert "trade_time_ms" in (trade_problem(trade(t_ms=5)) or "")
    assert "decimals" in (trade_problem(trade(price="1." + "1" * 19)) or "")
    assert bbo_problem(BboRow(1, "0", "0", "1", "1", 0, 0, T_MS * 1_000_000)) is None  # Spot: no E/T


@given(st.text(max_size=30))
def test_any_text_price_is_either_a_plain_decimal_or_refused(text: str) -> None:
    problem = trade_problem(trade(price=text))
    if problem is None:
        int_part, _, frac = text.partition(".")
        assert int_part.isdigit() and int_part.isascii() and len(int_part) <= 20
        assert frac == "" or (frac.isdigit() and frac.isascii() and len(frac) <= 18)
        assert float(text) > 0


@given(st.integers(min_value=1, max_value=10**20 - 1), st.integers(min_value=0, max_value=10**18 - 1))
def test_every_in_range_decimal_is_accepted(whole: int, fraction: int) -> None:
    assert trade_problem(trade(price=f"{whole}.{fraction:018d}")) is None
