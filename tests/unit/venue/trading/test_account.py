"""Margin model and position maths: initial margin = notional / leverage, marks at mid, fees, flips."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hftops.venue.trading import errors as E
from hftops.venue.trading.book import Touch
from hftops.venue.trading.errors import TradingError
from hftops.venue.trading.model import Side
from tests.unit.venue.trading.helpers import d, make_trading, order


def test_initial_margin_is_notional_over_leverage_and_available_follows() -> None:
    trading, _, _ = make_trading(wallet=1000, touch=Touch(60_000_00, 500, 60_000_10, 500))
    trading.desk.place(order(Side.BUY, 100))  # 0.1 BTC at 60000.10, all at the touch
    account = trading.account
    mark = d("60000.05")  # mid of 60000.00 / 60000.10
    fee = d("60000.10") * d("0.1") * d("0.0005")
    totals = account.totals([])
    assert totals["wallet"] == d("1000") - fee
    assert totals["unrealized"] == d("0.1") * (mark - d("60000.10"))
    assert totals["position_im"] == d("0.1") * mark / 10
    assert totals["maint_margin"] == d("0.1") * mark * d("0.004")
    assert totals["available"] == totals["wallet"] + totals["unrealized"] - totals["position_im"]


def test_order_over_available_margin_is_refused_with_2019_until_leverage_rises() -> None:
    trading, _, _ = make_trading(wallet=1000)
    with pytest.raises(TradingError) as info:
        trading.desk.place(order(Side.BUY, 200))  # 12,000 notional needs 1,200 at 10x
    assert info.value.code == E.MARGIN_INSUFFICIENT
    assert trading.account.positions["BTCUSDT"].qty == 0
    trading.desk.set_leverage("BTCUSDT", 20)
    trading.desk.place(order(Side.BUY, 150))
    assert trading.account.positions["BTCUSDT"].qty == 150


def test_resting_orders_reserve_margin_and_reducing_orders_need_none() -> None:
    trading, _, _ = make_trading(wallet=1000)
    trading.desk.place(order(Side.BUY, 100, price=59_000_00))  # reserves 590
    with pytest.raises(TradingError):
        trading.desk.place(order(Side.BUY, 100, price=59_000_00))
    trading.desk.cancel_all("BTCUSDT")
    trading.desk.place(order(Side.BUY, 150))  # ~900 of margin in use
    trading.desk.place(order(Side.SELL, 150, reduce_only=True))  # closing needs no margin
    assert trading.account.positions["BTCUSDT"].qty == 0


def test_flip_realizes_the_closed_part_and_opens_at_the_fill_price() -> None:
    trading, _, _ = make_trading()
    trading.desk.place(order(Side.BUY, 40))  # at 60000.10
    trading.desk.on_touch("BTCUSDT", Touch(60_100_00, 500, 60_100_10, 500))
    trading.desk.place(order(Side.SELL, 120))  # at 60100.00
    pos = trading.account.positions["BTCUSDT"]
    assert pos.qty == -80 and pos.entry == d("60100.00")
    assert pos.realized == (d("60100.00") - d("60000.10")) * d("0.040")


def test_unrealized_pnl_of_a_short_is_marked_to_mid() -> None:
    trading, _, _ = make_trading()
    trading.desk.place(order(Side.SELL, 50))  # at 60000.00
    trading.desk.on_touch("BTCUSDT", Touch(59_900_00, 50, 59_900_20, 50))
    assert trading.account.unrealized("BTCUSDT") == d("-0.050") * (d("59900.10") - d("60000.00"))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 300), st.integers(-50, 50)),
        min_size=1,
        max_size=25,
    )
)
def test_generated_fills_keep_position_and_wallet_consistent(steps: list[tuple[Side, int, int]]) -> None:
    trading, _, _ = make_trading(wallet=10_000_000)
    signed = 0
    for side, qty, move in steps:
        bid = 60_000_00 + move * 10
        trading.desk.on_touch("BTCUSDT", Touch(bid, 100, bid + 10, 100))
        _, live = trading.desk.place(order(side, qty))
        signed += side.sign * live.executed
    account = trading.account
    fills = trading.journal.fills
    pos = account.positions["BTCUSDT"]
    assert pos.qty == signed
    realized = sum((Decimal(f["realizedPnl"]) for f in fills), Decimal(0))
    fees = sum((Decimal(f["commission"]) for f in fills), Decimal(0))
    # Decimal keeps 28 significant digits: an average entry like 60000.1029126... is the only rounding
    assert abs(account.wallet - (Decimal(10_000_000) + pos.realized - account.fees_paid)) < Decimal("1e-12")
    assert abs(realized - pos.realized) < Decimal("1e-6") * len(fills)  # fills carry 8-decimal texts
    assert abs(fees - account.fees_paid) < Decimal("1e-6") * len(fills)
    if pos.qty == 0:
        assert pos.entry == 0
