"""How the flattener splits one-way mode's net positions: net scopes close the broker's net and book each
order to a strategy that held it; strategy scope closes only what the broker can reduce."""

from __future__ import annotations

from decimal import Decimal as D

from hftops.model.orders import MANUAL_STRATEGY, Side
from hftops.ops.flatten_plan import Leg, PlannedOrder, closable, offsetting, plan_net, plan_strategy


def test_net_flatten_books_each_order_to_a_strategy_that_held_it() -> None:
    orders = plan_net("BTCUSDT", D("0.015"), {"h1": D("0.010"), "h2": D("0.005")})
    assert orders == [
        PlannedOrder("h1", "BTCUSDT", Side.SELL, D("0.010")),
        PlannedOrder("h2", "BTCUSDT", Side.SELL, D("0.005")),
    ]
    assert sum(o.qty for o in orders) == D("0.015")


def test_net_flatten_of_a_short_buys() -> None:
    assert plan_net("ETHUSDT", D("-0.2"), {"h1": D("-0.2")}) == [PlannedOrder("h1", "ETHUSDT", Side.BUY, D("0.2"))]


def test_offsetting_strategies_trade_only_the_net() -> None:
    # h1 long 1, h2 short 0.4: the broker holds +0.6, and only 0.6 is sold (booked to the long holder)
    orders = plan_net("BTCUSDT", D("0.6"), {"h1": D("1"), "h2": D("-0.4")})
    assert orders == [PlannedOrder("h1", "BTCUSDT", Side.SELL, D("0.6"))]
    assert offsetting({"h1": D("0.4"), "h2": D("-0.4")}) == "h1 +0.4 / h2 -0.4"
    assert offsetting({"h1": D("0.4")}) == ""


def test_what_no_strategy_explains_is_booked_to_manual() -> None:
    orders = plan_net("BTCUSDT", D("0.5"), {"h1": D("0.2")})
    assert orders == [
        PlannedOrder("h1", "BTCUSDT", Side.SELL, D("0.2")),
        PlannedOrder(MANUAL_STRATEGY, "BTCUSDT", Side.SELL, D("0.3")),
    ]
    assert plan_net("BTCUSDT", D(0), {"h1": D("0.2")}) == []  # broker flat: nothing to send


def test_strategy_scope_never_adds_to_the_broker_position() -> None:
    assert closable(D("0.3"), D("0.5")) == D("0.3")  # others hold the same side: close its share
    assert closable(D("1"), D("0.6")) == D("0.6")  # another strategy offsets 0.4: that part is netted
    assert closable(D("0.4"), D("-0.6")) == 0  # the broker is short: selling would add to it
    assert closable(D("0.4"), D(0)) == 0
    assert plan_strategy("h1", "BTCUSDT", D("-0.2"), D("-0.5")) == PlannedOrder("h1", "BTCUSDT", Side.BUY, D("0.2"))
    assert plan_strategy("h1", "BTCUSDT", D("0.4"), D("-0.6")) is None


def test_leg_report_names_refusals_and_what_is_open() -> None:
    leg = Leg("BTCUSDT", "", start_qty=D("0.01"), submitted=D("0.02"), filled=D("0.006"), remaining=D("0.004"))
    leg.reject("broker: -2010: rejected")
    leg.reject("broker: -2010: rejected")  # the same refusal once
    row = leg.as_report()
    assert row.failed and row.remaining == "0.004" and row.submitted == "0.02" and row.filled == "0.006"
    assert row.detail.count("-2010") == 1 and "still open: 0.004" in row.detail
    leg.confirmed, leg.remaining = True, D(0)
    assert not leg.as_report().failed
