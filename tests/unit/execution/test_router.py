"""The order router: idempotent submits, lost answers, cancels, exactly-once fills, the state machine."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hftops.engine.orders import OpenOrders
from hftops.execution.errors import BrokerError
from hftops.execution.ids import ClientOrderIds
from hftops.execution.router import OrderRouter
from hftops.execution.tracking import Transition, classify
from hftops.model.orders import (
    ORDER_TRANSITIONS,
    Fill,
    Intent,
    IntentKind,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
)
from tests.unit.execution.fake_broker import FakeBroker


class Recorder:
    def __init__(self) -> None:
        self.updates: list[OrderUpdate] = []
        self.fills: list[Fill] = []
        self.book = OpenOrders()  # the engine's own state machine: raises on any illegal update

    def on_order(self, update: OrderUpdate) -> None:
        self.updates.append(update)
        self.book.apply(update)

    def statuses(self, cid: str) -> list[OrderStatus]:
        return [u.status for u in self.updates if u.client_order_id == cid]


def make(broker: FakeBroker | None = None) -> tuple[OrderRouter, FakeBroker, Recorder]:
    broker = broker or FakeBroker()
    rec = Recorder()
    router = OrderRouter(
        broker,
        ClientOrderIds("sess1"),
        on_order=rec.on_order,
        on_fill=rec.fills.append,
        clock_ns=lambda: 1_700_000_000_000_000_000,
    )
    return router, broker, rec


def intent(qty: str = "1", order_type: OrderType = OrderType.LIMIT, cid: str | None = None) -> Intent:
    return Intent(
        kind=IntentKind.NEW,
        strategy_id="mm1",
        symbol="BTCUSDT",
        side=Side.BUY,
        qty=Decimal(qty),
        price=Decimal("100"),
        order_type=order_type,
        client_order_id=cid,
    )


async def test_submit_ack_fill_once_and_idempotent_resubmit() -> None:
    router, broker, rec = make()
    ack = await router.submit(intent("3"))
    cid = ack.client_order_id
    assert cid == "mm1-sess1-1" and ack.status is OrderStatus.ACK and ack.order_id == 101
    event = broker.fill(cid, 11, "1")
    router.on_user_event(event)
    router.on_user_event(event)  # the stream repeats itself after a reconnect
    assert [f.trade_id for f in rec.fills] == [11]
    assert rec.statuses(cid) == [OrderStatus.NEW, OrderStatus.ACK, OrderStatus.PARTIALLY_FILLED]
    again = await router.submit(intent("3", cid=cid))
    assert again.client_order_id == cid and len([c for c in broker.calls if c[0] == "place_order"]) == 1
    assert router.counters.duplicate_fills == 1


async def test_lost_answer_resend_is_deduplicated_by_client_order_id() -> None:
    router, broker, _rec = make()
    broker.lost_answers.add("place_order")  # the order lands, the answer is lost
    update = await router.submit(intent())
    # the router asked the venue by the same client order id instead of sending a second order
    assert update.status is OrderStatus.ACK and len(broker.orders) == 1
    assert [c[0] for c in broker.calls] == ["place_order", "query_order"]


async def test_duplicate_rejection_is_resolved_by_query() -> None:
    router, broker, _rec = make()
    await router.submit(intent(cid="mm1-sess1-77"))
    router2, _, _rec2 = make(broker)
    update = await router2.submit(intent(cid="mm1-sess1-77"))  # e.g. a resend from a restarted engine
    assert update.status is OrderStatus.ACK and router2.counters.resolved_duplicates == 1
    assert len(broker.orders) == 1


async def test_final_error_rejects_with_code_and_message() -> None:
    router, broker, _rec = make()
    broker.failures["place_order"] = [BrokerError(-2019, "Margin is insufficient.", 400)]
    update = await router.submit(intent())
    assert update.status is OrderStatus.REJECTED and update.reason == "-2019: Margin is insufficient."
    assert router.counters.rejected == 1 and not broker.orders


async def test_final_error_after_unknown_outcome_queries_instead_of_rejecting() -> None:
    router, broker, _rec = make()
    error = BrokerError(-2019, "Margin is insufficient.", 400)
    error.after_unknown_outcome = True
    broker.failures["place_order"] = [error]
    update = await router.submit(intent())
    # the query says the earlier copy never landed: the refusal stands, with the venue's own reason
    assert update.status is OrderStatus.REJECTED and update.reason == "-2019: Margin is insufficient."
    assert [c[0] for c in broker.calls] == ["place_order", "query_order"]


async def test_unsettled_outcome_stays_new_until_resync() -> None:
    router, broker, _rec = make()
    broker.failures["place_order"] = [BrokerError(BrokerError.TRANSPORT, "timeout")]
    broker.failures["query_order"] = [BrokerError(BrokerError.TRANSPORT, "timeout")]
    update = await router.submit(intent())
    assert update.status is OrderStatus.NEW and router.counters.uncertain == 1
    report = await router.resync()
    assert report.orders_settled == 1
    assert router.order(update.client_order_id).status is OrderStatus.REJECTED  # type: ignore[union-attr]


async def test_cancel_and_cancel_of_a_filled_order() -> None:
    router, broker, _rec = make()
    a = await router.submit(intent("1"))
    b = await router.submit(intent("1"))
    assert (await router.cancel(a.client_order_id)).status is OrderStatus.CANCELED
    broker.fill(b.client_order_id, 5, "1")  # filled at the venue; the stream event is lost
    update = await router.cancel(b.client_order_id)  # -2011: the router asks the venue
    assert update.status is OrderStatus.FILLED
    with pytest.raises(KeyError):
        await router.cancel("nope")


async def test_cancel_all_then_resync_reports_nothing_open() -> None:
    router, _broker, _rec = make()
    for _ in range(3):
        await router.submit(intent())
    report = await router.cancel_all()
    assert report.open_orders == 0 and not router.open_orders()
    assert all(u.status is OrderStatus.CANCELED for u in router.orders.values() for u in [u.snapshot()])


async def test_resync_recovers_fills_missed_while_disconnected() -> None:
    router, broker, rec = make()
    a = await router.submit(intent("3"))
    router.on_user_event(broker.fill(a.client_order_id, 1, "1"))
    router.note_stream_down()
    broker.fill(a.client_order_id, 2, "1")  # missed
    router.on_user_event(broker.fill(a.client_order_id, 3, "1"))  # arrives on the new connection first
    report = await router.resync()
    assert sorted(f.trade_id for f in rec.fills) == [1, 2, 3] and report.fills_recovered == 1
    assert ("user_trades_since", {"symbol": "BTCUSDT", "from_id": None}) in broker.calls  # first: by time
    await router.resync()
    assert ("user_trades_since", {"symbol": "BTCUSDT", "from_id": 4}) in broker.calls  # then after the last
    assert router.order(a.client_order_id).status is OrderStatus.FILLED  # type: ignore[union-attr]


async def test_events_of_unknown_orders_are_adopted_and_bad_events_counted() -> None:
    router, broker, rec = make()
    bad: list[str] = []
    router._on_bad_event = lambda reason, payload: bad.append(reason)
    other, _, _ = make(broker)
    placed = await other.submit(intent("2"))
    router.on_user_event(broker.fill(placed.client_order_id, 9, "2"))
    assert router.counters.unknown_orders == 1 and rec.fills[0].strategy_id == "mm1"
    event = broker.fill(placed.client_order_id, 10, "1")
    broken = type(event)(
        e=event.e,
        E=event.E,
        T=event.T,
        o=type(event.o)(**{**{f: getattr(event.o, f) for f in event.o.__struct_fields__}, "l": Decimal("NaN")}),
    )
    router.on_user_event(broken)
    assert router.counters.bad_events == 1 and bad


def test_classify_covers_the_table() -> None:
    for current, allowed in ORDER_TRANSITIONS.items():
        for new in OrderStatus:
            outcome = classify(current, new)
            assert (outcome is Transition.APPLIED) == (new in allowed)
    assert classify(OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED) is Transition.STALE
    assert classify(OrderStatus.CANCELED, OrderStatus.FILLED) is Transition.ILLEGAL
    assert classify(OrderStatus.ACK, OrderStatus.REJECTED) is Transition.ILLEGAL


# --- generated report sequences -----------------------------------------------------------------------


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[int], str, list[int], bool]:
    qty_units = 10
    fills = draw(st.lists(st.integers(1, 4), max_size=6))
    while sum(fills) > qty_units:
        fills.pop()
    ending = "FILLED" if sum(fills) == qty_units else draw(st.sampled_from(["OPEN", "CANCELED", "EXPIRED"]))
    n_events = 1 + len(fills) + (ending in ("CANCELED", "EXPIRED"))
    delivery = draw(st.lists(st.integers(0, n_events - 1), max_size=3 * n_events))
    drop_rest = draw(st.booleans())
    return fills, ending, delivery, drop_rest


@given(scenarios())
async def test_any_report_order_gives_legal_states_and_each_fill_once(
    scenario: tuple[list[int], str, list[int], bool],
) -> None:
    fills, ending, delivery, drop_rest = scenario
    router, broker, rec = make()
    if drop_rest:
        broker.lost_answers.add("place_order")
    placed = await router.submit(intent("10"))
    cid = placed.client_order_id
    venue = broker.orders[cid]
    # What the venue does, and the events it would publish, in its own order.
    events = [venue.event("NEW", status="NEW")]
    for i, units in enumerate(fills):
        events.append(broker.fill(cid, 1000 + i, str(units)))
    if ending in ("CANCELED", "EXPIRED"):
        venue.status = ending
        events.append(venue.event(ending))
    # Delivered in any order, any number of times, some never.
    for index in delivery:
        router.on_user_event(events[index])
    await router.resync()
    trade_ids = [f.trade_id for f in rec.fills]
    assert sorted(trade_ids) == [1000 + i for i in range(len(fills))]  # every fill, once
    assert sum(f.qty for f in rec.fills) == venue.executed
    final = router.order(cid)
    assert final is not None
    expected = {
        "OPEN": OrderStatus.PARTIALLY_FILLED if fills else OrderStatus.ACK,
        "FILLED": OrderStatus.FILLED,
        "CANCELED": OrderStatus.CANCELED,
        "EXPIRED": OrderStatus.EXPIRED,
    }[ending]
    assert final.status is expected
    assert router.counters.illegal_transitions == 0
    statuses = rec.statuses(cid)
    for before, after in itertools.pairwise(statuses):
        assert after in ORDER_TRANSITIONS[before]
    filled = [u.filled_qty for u in rec.updates]
    assert filled == sorted(filled)


async def test_prune_forgets_old_terminal_orders_but_not_their_fills() -> None:
    router, broker, rec = make()
    a = await router.submit(intent("1"))
    event = broker.fill(a.client_order_id, 42, "1")
    router.on_user_event(event)
    b = await router.submit(intent("1"))
    assert router.prune(older_than_ns=2_000_000_000_000_000_000) == 1
    assert router.order(a.client_order_id) is None and router.order(b.client_order_id) is not None
    router.on_user_event(event)  # a late repeat of the pruned order's fill
    assert [f.trade_id for f in rec.fills] == [42]


# --- an order and its own cancel -------------------------------------------------------------------------


async def test_unknown_outcome_then_absent_resends_once_under_the_same_id() -> None:
    router, broker, rec = make()
    broker.failures["place_order"] = [BrokerError(-1001, "Internal error", 503)]  # refused before landing
    update = await router.submit(intent())
    assert update.status is OrderStatus.ACK and router.counters.resends == 1 and len(broker.orders) == 1
    assert [c[0] for c in broker.calls] == ["place_order", "query_order", "place_order"]
    assert rec.statuses(update.client_order_id) == [OrderStatus.NEW, OrderStatus.ACK]


async def test_unknown_outcome_every_time_gives_up_rejected_after_the_configured_sends() -> None:
    router, broker, _rec = make()
    broker.failures["place_order"] = [BrokerError(BrokerError.TRANSPORT, "timeout") for _ in range(3)]
    update = await router.submit(intent())
    assert update.status is OrderStatus.REJECTED and "after 3 sends" in update.reason
    assert router.counters.resends == 2 and not broker.orders


async def test_a_cancel_waits_for_its_order_to_reach_the_venue() -> None:
    router, broker, rec = make()
    landing = asyncio.Event()
    broker.hold["place_order"] = landing
    submit = asyncio.create_task(router.submit(intent()))
    await asyncio.sleep(0)
    cid = next(iter(router.orders))
    cancel = asyncio.create_task(router.cancel(cid))
    await asyncio.sleep(0.01)
    assert not cancel.done() and router.counters.cancels_held == 1
    assert [c[0] for c in broker.calls] == ["place_order"]  # the cancel has not overtaken the order
    landing.set()
    await submit
    assert (await cancel).status is OrderStatus.CANCELED
    assert rec.statuses(cid) == [OrderStatus.NEW, OrderStatus.ACK, OrderStatus.CANCELED]


async def test_a_cancel_goes_as_soon_as_the_stream_reports_the_order() -> None:
    router, broker, _rec = make()
    broker.hold["place_order"] = asyncio.Event()  # the REST answer never comes in this test
    submit = asyncio.create_task(router.submit(intent()))
    await asyncio.sleep(0)
    cid = next(iter(router.orders))
    cancel = asyncio.create_task(router.cancel(cid))
    await asyncio.sleep(0)
    broker.place_now(cid)
    router.on_user_event(broker.orders[cid].event("NEW", status="NEW"))
    assert (await asyncio.wait_for(cancel, 1)).status is OrderStatus.CANCELED
    submit.cancel()


async def test_resync_leaves_an_order_on_its_way_to_its_submit() -> None:
    router, broker, rec = make()
    landing = asyncio.Event()
    broker.hold["place_order"] = landing
    submit = asyncio.create_task(router.submit(intent()))
    await asyncio.sleep(0)
    report = await router.resync()  # the venue does not list it yet: that is not a rejection
    assert report.orders_settled == 0
    landing.set()
    update = await submit
    assert update.status is OrderStatus.ACK and OrderStatus.REJECTED not in rec.statuses(update.client_order_id)


async def test_a_second_venue_order_under_one_client_id_is_tracked_apart() -> None:
    router, broker, rec = make()
    first = await router.submit(intent("1"))
    cid = first.client_order_id
    broker.orders[cid].status = "CANCELED"
    router.on_user_event(broker.orders[cid].event("CANCELED"))
    copy = broker.reuse(cid)  # the venue accepted the id again once the first order had closed
    router.on_user_event(copy.event("NEW", status="NEW"))
    router.on_user_event(broker.fill(cid, 77, "1"))
    assert router.order(cid).status is OrderStatus.CANCELED  # type: ignore[union-attr]
    twin = router.order(f"{cid}~{copy.order_id}")
    assert twin is not None and twin.status is OrderStatus.FILLED and twin.strategy_id == "mm1"
    assert [f.client_order_id for f in rec.fills] == [twin.client_order_id]
    assert router.counters.illegal_transitions == 0 and router.counters.copies == 1


async def test_a_fill_of_an_earlier_session_recovered_from_user_trades_keeps_its_strategy() -> None:
    broker = FakeBroker()
    before, _, _ = make(broker)
    placed = await before.submit(intent("1", order_type=OrderType.MARKET))
    broker.fill(placed.client_order_id, 31, "1")  # filled while the engine was down: only userTrades knows
    after, _, rec = make(broker)  # the restarted engine: a new router that never saw the order
    report = await after.resync(["BTCUSDT"])
    assert report.fills_recovered == 1 and [f.strategy_id for f in rec.fills] == ["mm1"]
    assert rec.fills[0].client_order_id == placed.client_order_id
    assert ("query_order", {"client_order_id": None, "order_id": placed.order_id}) in broker.calls
