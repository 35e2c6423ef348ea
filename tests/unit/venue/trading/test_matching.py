"""Matching against the modelled book: depth and slippage, resting orders, partial fills, TIF, reduce-only."""

from __future__ import annotations

from pathlib import Path

import pytest

from hftops.venue.trading import errors as E
from hftops.venue.trading.book import Touch
from hftops.venue.trading.errors import TradingError
from hftops.venue.trading.model import Side, Status, TimeInForce
from tests.unit.venue.trading.helpers import ASK, BID, d, make_trading, order


def fills_of(trading) -> list[tuple[int, int, bool]]:  # type: ignore[no-untyped-def]
    return [
        (int(f["price"].replace(".", "")), int(f["qty"].replace(".", "")), f["maker"]) for f in trading.journal.fills
    ]


def test_market_buy_walks_the_levels_and_pays_taker_fees() -> None:
    trading, events, _ = make_trading()
    _, live = trading.desk.place(order(Side.BUY, 200))
    # 50 at the touch, 80 one tick up, the last 70 two ticks up
    assert fills_of(trading) == [(ASK, 50, False), (ASK + 10, 80, False), (ASK + 20, 70, False)]
    assert live.status is Status.FILLED and live.executed == 200
    quote = d("60000.10") * d("0.050") + d("60000.20") * d("0.080") + d("60000.30") * d("0.070")
    assert live.cum_quote == quote
    account = trading.account
    pos = account.positions["BTCUSDT"]
    assert pos.qty == 200 and pos.entry == quote / d("0.200")
    assert account.fees_paid == quote * d("0.0005")
    assert account.wallet == d("100000") - quote * d("0.0005")
    kinds = [(e["e"], e["o"]["x"], e["o"]["X"]) if e["e"] == "ORDER_TRADE_UPDATE" else (e["e"],) for e in events]
    assert kinds == [
        ("ORDER_TRADE_UPDATE", "NEW", "NEW"),
        ("ORDER_TRADE_UPDATE", "TRADE", "PARTIALLY_FILLED"),
        ("ACCOUNT_UPDATE",),
        ("ORDER_TRADE_UPDATE", "TRADE", "PARTIALLY_FILLED"),
        ("ACCOUNT_UPDATE",),
        ("ORDER_TRADE_UPDATE", "TRADE", "FILLED"),
        ("ACCOUNT_UPDATE",),
    ]
    assert events[-1]["a"]["P"][0]["pa"] == "0.200"


def test_taken_liquidity_stays_taken_until_the_touch_changes() -> None:
    trading, _, _ = make_trading()
    trading.desk.place(order(Side.BUY, 50))
    trading.desk.place(order(Side.BUY, 50))
    assert [p for p, _, _ in fills_of(trading)] == [ASK, ASK + 10]
    trading.desk.on_touch("BTCUSDT", Touch(BID, 60, ASK, 60))
    trading.desk.place(order(Side.BUY, 50))
    assert fills_of(trading)[-1] == (ASK, 50, False)


def test_market_order_larger_than_the_book_expires_the_rest() -> None:
    trading, events, _ = make_trading(levels=2)
    _, live = trading.desk.place(order(Side.SELL, 500))
    assert live.executed == 130 and live.status is Status.EXPIRED  # 50 at the bid + 80 one tick down
    assert events[-1]["o"]["x"] == "EXPIRED" and events[-1]["o"]["z"] == "0.130"
    assert trading.account.positions["BTCUSDT"].qty == -130


def test_resting_limit_fills_as_maker_when_crossed_partially_then_fully() -> None:
    trading, events, _ = make_trading()
    ack, live = trading.desk.place(order(Side.BUY, 100, price=59_998_00))
    assert ack.status is Status.NEW and live.status is Status.NEW
    assert trading.desk.open_orders("BTCUSDT") == [live]
    trading.desk.on_touch("BTCUSDT", Touch(59_997_90, 10, 59_998_00, 30))  # only 0.030 at or below the limit
    assert live.status is Status.PARTIALLY_FILLED and live.executed == 30
    assert fills_of(trading) == [(59_998_00, 30, True)]
    trading.desk.on_touch("BTCUSDT", Touch(59_997_80, 10, 59_997_90, 100))
    assert live.status is Status.FILLED
    assert fills_of(trading)[-1] == (59_998_00, 70, True)  # a maker fills at its own price
    assert trading.account.fees_paid == d("59998.00") * d("0.100") * d("0.0002")
    assert trading.desk.open_orders() == []
    assert events[-2]["o"]["m"] is True


def test_a_touch_that_does_not_cross_leaves_resting_orders_alone() -> None:
    trading, _, _ = make_trading()
    _, live = trading.desk.place(order(Side.SELL, 100, price=60_001_00))
    trading.desk.on_touch("BTCUSDT", Touch(60_000_90, 500, 60_001_00, 500))
    assert live.status is Status.NEW
    trading.desk.on_touch("BTCUSDT", Touch(60_001_00, 500, 60_001_10, 500))
    assert live.status is Status.FILLED


def test_marketable_limit_takes_up_to_its_price_then_rests() -> None:
    trading, _, _ = make_trading()
    _, live = trading.desk.place(order(Side.BUY, 200, price=ASK + 10))
    assert fills_of(trading) == [(ASK, 50, False), (ASK + 10, 80, False)]
    assert live.status is Status.PARTIALLY_FILLED and trading.desk.open_orders() == [live]


def test_ioc_fills_what_it_can_and_expires_the_rest() -> None:
    trading, events, _ = make_trading()
    _, live = trading.desk.place(order(Side.BUY, 100, price=ASK, tif=TimeInForce.IOC))
    assert live.executed == 50 and live.status is Status.EXPIRED
    assert events[-1]["o"]["X"] == "EXPIRED" and trading.desk.open_orders() == []


def test_fok_is_refused_when_not_fully_fillable_and_not_recorded() -> None:
    trading, events, _ = make_trading()
    with pytest.raises(TradingError) as info:
        trading.desk.place(order(Side.BUY, 100, price=ASK, tif=TimeInForce.FOK))
    assert info.value.code == E.FOK_REJECTED
    assert events == [] and trading.desk.orders == {}
    assert trading.journal.rejections[-1]["code"] == E.FOK_REJECTED
    _, live = trading.desk.place(order(Side.BUY, 100, price=ASK + 10, tif=TimeInForce.FOK))
    assert live.status is Status.FILLED


def test_post_only_that_would_take_is_refused() -> None:
    trading, _, _ = make_trading()
    with pytest.raises(TradingError) as info:
        trading.desk.place(order(Side.SELL, 10, price=BID, tif=TimeInForce.GTX))
    assert info.value.code == E.GTX_REJECTED
    _, live = trading.desk.place(order(Side.SELL, 10, price=ASK, tif=TimeInForce.GTX))
    assert live.status is Status.NEW


@pytest.mark.parametrize(
    ("position", "side", "qty"),
    [(0, Side.SELL, 10), (100, Side.BUY, 10), (100, Side.SELL, 101), (-100, Side.SELL, 10)],
    ids=["flat", "would-increase-long", "more-than-position", "would-increase-short"],
)
def test_reduce_only_rejections(position: int, side: Side, qty: int) -> None:
    trading, _, _ = make_trading()
    if position:
        trading.desk.place(order(Side.BUY if position > 0 else Side.SELL, abs(position)))
    with pytest.raises(TradingError) as info:
        trading.desk.place(order(side, qty, reduce_only=True))
    assert info.value.code == E.REDUCE_ONLY_REJECT
    assert trading.account.positions["BTCUSDT"].qty == position  # never clamped silently


def test_reduce_only_reduces_and_realizes_pnl() -> None:
    trading, _, _ = make_trading()
    trading.desk.place(order(Side.BUY, 40))  # at the ask 60000.10
    trading.desk.on_touch("BTCUSDT", Touch(60_100_00, 50, 60_100_10, 50))
    _, live = trading.desk.place(order(Side.SELL, 40, reduce_only=True))  # at the bid 60100.00
    assert live.status is Status.FILLED
    pos = trading.account.positions["BTCUSDT"]
    assert pos.qty == 0 and pos.entry == 0
    assert pos.realized == (d("60100.00") - d("60000.10")) * d("0.040")


def test_resting_reduce_only_expires_when_the_position_is_gone() -> None:
    trading, events, _ = make_trading()
    trading.desk.place(order(Side.BUY, 40))
    _, resting = trading.desk.place(order(Side.SELL, 40, price=60_010_00, reduce_only=True))
    trading.desk.on_touch("BTCUSDT", Touch(BID, 500, ASK, 500))
    trading.desk.place(order(Side.SELL, 40))  # closes the position at market
    trading.desk.on_touch("BTCUSDT", Touch(60_010_00, 500, 60_010_10, 500))
    assert resting.status is Status.EXPIRED and resting.executed == 0
    assert events[-1]["o"]["i"] == resting.order_id and events[-1]["o"]["x"] == "EXPIRED"
    assert trading.account.positions["BTCUSDT"].qty == 0


def test_duplicate_client_order_id_of_an_open_order_is_refused() -> None:
    trading, _, _ = make_trading()
    trading.desk.place(order(Side.BUY, 10, price=59_000_00, client_id="abc"))
    with pytest.raises(TradingError) as info:
        trading.desk.place(order(Side.BUY, 10, price=59_000_00, client_id="abc"))
    assert info.value.code == E.DUPLICATED_CLIENT_ORDER_ID
    trading.desk.cancel("BTCUSDT", None, "abc")
    _, again = trading.desk.place(order(Side.BUY, 10, price=59_000_00, client_id="abc"))
    assert again.order_id == 2 and again.client_id == "abc"


def test_cancel_and_cancel_all_and_unknown_cancels() -> None:
    trading, events, _ = make_trading()
    _, a = trading.desk.place(order(Side.BUY, 10, price=59_000_00))
    _, b = trading.desk.place(order(Side.SELL, 10, price=61_000_00))
    assert a.client_id == "sim-1"
    assert trading.desk.cancel("BTCUSDT", a.order_id, None).status is Status.CANCELED
    assert events[-1]["o"]["x"] == "CANCELED"
    with pytest.raises(TradingError) as info:
        trading.desk.cancel("BTCUSDT", a.order_id, None)
    assert info.value.code == E.CANCEL_REJECTED
    with pytest.raises(TradingError):
        trading.desk.cancel("ETHUSDT", b.order_id, None)  # right id, wrong symbol
    assert trading.desk.cancel_all("BTCUSDT") == [b] and b.status is Status.CANCELED
    assert trading.desk.open_orders() == []


def test_reject_orders_fault_refuses_every_order_for_count(tmp_path: Path) -> None:
    trading, _, _ = make_trading()
    trading.faults.apply("reject_orders", None, 2, None, None, None)
    for _ in range(2):
        with pytest.raises(TradingError) as info:
            trading.desk.place(order(Side.BUY, 10))
        assert info.value.code == E.NEW_ORDER_REJECTED
    assert trading.desk.place(order(Side.BUY, 10))[1].status is Status.FILLED
    assert [r["code"] for r in trading.journal.rejections] == [E.NEW_ORDER_REJECTED] * 2


def test_journal_replay_restores_orders_positions_wallet_and_ids(tmp_path: Path) -> None:
    trading, _, _ = make_trading(tmp_path)
    trading.desk.place(order(Side.BUY, 200))
    trading.desk.place(order(Side.SELL, 50, price=61_000_00, client_id="keep"))
    trading.desk.set_leverage("BTCUSDT", 20)
    trading.close()
    again, _, _ = make_trading(tmp_path)
    assert again.account.positions["BTCUSDT"] == trading.account.positions["BTCUSDT"]
    assert again.account.wallet == trading.account.wallet
    assert again.account.leverage_of("BTCUSDT") == 20
    assert [o.client_id for o in again.desk.open_orders()] == ["keep"]
    _, next_order = again.desk.place(order(Side.BUY, 10))
    assert next_order.order_id == 3
    assert again.journal.fills[-1]["id"] == 4  # the 3 fills of the walk came before it


def test_a_replayed_wallet_equals_the_live_one_whatever_the_fees_rounding(tmp_path: Path) -> None:
    """0.001 BTC at 60000.10 with a 0.05 % taker fee is 0.00003000005 USDT: fees are charged as the fill reports
    them (8 decimals), so the journal's fills rebuild the wallet exactly."""
    trading, _, _ = make_trading(tmp_path)
    for side, qty in [(Side.BUY, 1), (Side.BUY, 3), (Side.SELL, 7), (Side.BUY, 13), (Side.SELL, 1)]:
        trading.desk.place(order(side, qty))
    assert trading.account.fees_paid.as_tuple().exponent >= -8
    trading.close()
    again, _, _ = make_trading(tmp_path)
    assert again.account.wallet == trading.account.wallet
    assert again.account.fees_paid == trading.account.fees_paid


def test_amend_moves_a_resting_order_and_matches_when_it_now_crosses() -> None:
    trading, events, _ = make_trading()
    _, live = trading.desk.place(order(Side.BUY, 100, price=59_000_00, client_id="amend-me"))
    trading.desk.amend("BTCUSDT", None, "amend-me", Side.BUY, 120, 59_500_00)
    assert (live.qty, live.price, live.status) == (120, 59_500_00, Status.NEW)
    assert events[-1]["o"]["x"] == "AMENDMENT" and events[-1]["o"]["q"] == "0.120"
    with pytest.raises(TradingError) as info:
        trading.desk.amend("BTCUSDT", live.order_id, None, Side.BUY, 120, 59_500_00)
    assert info.value.code == E.NO_NEED_TO_MODIFY
    trading.desk.amend("BTCUSDT", live.order_id, None, Side.BUY, 120, ASK + 10)
    assert fills_of(trading) == [(ASK, 50, False), (ASK + 10, 70, False)] and live.status is Status.FILLED
    with pytest.raises(TradingError) as info:
        trading.desk.amend("BTCUSDT", live.order_id, None, Side.BUY, 130, ASK)
    assert info.value.code == E.NO_SUCH_ORDER
