from __future__ import annotations

import pytest

from hftops.engine.orders import InvalidTransition, OpenOrders
from hftops.engine.ratelimit import TokenBucket
from hftops.model.orders import OrderStatus, Side
from tests.unit.engine.fakes import D, FakeClock, order


def test_lifecycle_and_pending_qty() -> None:
    orders = OpenOrders()
    orders.apply(order("s", "X", "c1", Side.BUY, "5", status=OrderStatus.NEW))
    orders.apply(order("s", "X", "c2", Side.SELL, "2"))
    assert orders.pending_qty("s", "X", Side.BUY) == D(5)
    orders.apply(order("s", "X", "c1", Side.BUY, "5", status=OrderStatus.ACK))
    orders.apply(order("s", "X", "c1", Side.BUY, "5", status=OrderStatus.PARTIALLY_FILLED, filled="2"))
    orders.apply(order("s", "X", "c1", Side.BUY, "5", status=OrderStatus.PARTIALLY_FILLED, filled="3"))
    assert orders.pending_qty("s", "X", Side.BUY) == D(2)
    assert [o.client_order_id for o in orders.for_symbol("s", "X")] == ["c1", "c2"]
    orders.apply(order("s", "X", "c1", Side.BUY, "5", status=OrderStatus.FILLED, filled="5"))
    orders.apply(order("s", "X", "c2", Side.SELL, "2", status=OrderStatus.CANCELED))
    assert len(orders) == 0 and orders.terminal_count == 2
    assert orders.pending_qty("s", "X", Side.BUY) == 0 and orders.pending_qty("s", "X", Side.SELL) == 0


@pytest.mark.parametrize(
    ("first", "then"),
    [
        (OrderStatus.ACK, OrderStatus.REJECTED),
        (OrderStatus.PARTIALLY_FILLED, OrderStatus.ACK),
        (OrderStatus.ACK, OrderStatus.NEW),
    ],
)
def test_invalid_transitions_are_refused(first: OrderStatus, then: OrderStatus) -> None:
    orders = OpenOrders()
    orders.apply(order("s", "X", "c1", Side.BUY, "5", status=first, filled="1" if first.name.startswith("P") else "0"))
    with pytest.raises(InvalidTransition, match="c1"):
        orders.apply(order("s", "X", "c1", Side.BUY, "5", status=then))
    assert orders.get("c1") is not None  # state unchanged


def test_filled_qty_never_goes_back() -> None:
    orders = OpenOrders()
    orders.apply(order("s", "X", "c1", Side.BUY, "5", status=OrderStatus.PARTIALLY_FILLED, filled="3"))
    with pytest.raises(InvalidTransition, match="went back"):
        orders.apply(order("s", "X", "c1", Side.BUY, "5", status=OrderStatus.PARTIALLY_FILLED, filled="2"))


def test_token_bucket_refills_with_the_clock() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=2, clock=clock)
    assert bucket.try_take() and bucket.try_take() and not bucket.try_take()
    clock.advance(0.05)
    assert not bucket.try_take()
    clock.advance(0.05)
    assert bucket.try_take() and not bucket.try_take()
    clock.advance(100)
    assert bucket.try_take() and bucket.try_take() and not bucket.try_take()  # never above burst
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate=0, burst=1, clock=clock)
