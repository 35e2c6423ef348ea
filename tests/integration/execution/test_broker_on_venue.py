"""The execution layer against the real simulated venue process: signed REST, orders that fill and cancel,
the user-data stream, a dropped stream recovered by resync, faulty answers that never corrupt state."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest

from hftops.execution import BinanceFuturesRest, BrokerError, Credentials, ExecutionLayer, build_execution
from hftops.execution.signing import DEV_API_KEY
from hftops.execution.wire import AccountUpdate
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
from tests.integration.venue.helpers import VenueProcess
from tests.support.platform import TestPlatform
from tests.support.waiting import async_wait_for

SYMBOL = "BTCUSDT"


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VenueProcess]:
    platform = TestPlatform(tmp_path_factory.mktemp("exec"), {"simulator": {"rate": 400, "burst_factor": 1}})
    process = VenueProcess(platform).start()
    yield process
    process.close()


@pytest.fixture(autouse=True)
def clean_faults(venue: VenueProcess) -> Iterator[None]:
    yield
    venue.admin("DELETE", "/admin/fault")


class Seen:
    def __init__(self) -> None:
        self.updates: list[OrderUpdate] = []
        self.fills: list[Fill] = []
        self.accounts: list[AccountUpdate] = []
        self.bad: list[str] = []


_sessions = iter(range(1, 10_000))


@pytest.fixture
async def layer(venue: VenueProcess) -> AsyncIterator[tuple[ExecutionLayer, Seen]]:
    seen = Seen()
    built = build_execution(
        venue.platform.config,
        environ={},
        session=f"it{next(_sessions)}",
        on_order=seen.updates.append,
        on_fill=seen.fills.append,
        on_account=seen.accounts.append,
        on_bad_event=lambda r, p: seen.bad.append(r),
    )
    await built.start()
    yield built, seen
    await built.stop(cancel_open_orders=True)


def touch(venue: VenueProcess) -> tuple[Decimal, Decimal]:
    pos = venue.admin("GET", "/admin/positions")["positions"][SYMBOL]
    return Decimal(pos["bid"]), Decimal(pos["ask"])


def tick(venue: VenueProcess) -> Decimal:
    info = venue.admin("GET", "/fapi/v1/exchangeInfo")
    entry = next(s for s in info["symbols"] if s["symbol"] == SYMBOL)
    return Decimal(next(f["tickSize"] for f in entry["filters"] if f["filterType"] == "PRICE_FILTER"))


def resting_price(venue: VenueProcess) -> Decimal:
    bid, _ = touch(venue)
    size = tick(venue)
    return ((bid * Decimal("0.995")) / size).to_integral_value(ROUND_DOWN) * size


def new(
    qty: str, order_type: OrderType = OrderType.MARKET, price: Decimal | None = None, side: Side = Side.BUY
) -> Intent:
    return Intent(
        kind=IntentKind.NEW,
        strategy_id="it",
        symbol=SYMBOL,
        side=side,
        qty=Decimal(qty),
        price=price,
        order_type=order_type,
    )


def venue_orders(venue: VenueProcess, client_order_id: str) -> list[dict[str, Any]]:
    return [
        o
        for o in venue.admin("GET", f"/admin/orders?symbol={SYMBOL}")["orders"]
        if o["clientOrderId"] == client_order_id
    ]


async def position(layer: ExecutionLayer) -> Decimal:
    risks = await layer.rest.position_risk(SYMBOL)
    return sum((r.positionAmt for r in risks), Decimal(0))


async def test_wrong_secret_is_rejected_with_minus_1022(venue: VenueProcess) -> None:
    rest = BinanceFuturesRest(venue.platform.config.rest_base_url, Credentials(DEV_API_KEY, "not-the-secret"))
    with pytest.raises(BrokerError) as info:
        await rest.account()
    assert info.value.code == -1022 and info.value.final
    assert "not-the-secret" not in str(info.value)
    await rest.aclose()


async def test_market_order_fills_once_through_the_user_stream(
    venue: VenueProcess, layer: tuple[ExecutionLayer, Seen]
) -> None:
    execution, seen = layer
    before = await position(execution)
    placed = await execution.router.submit(new("0.01"))
    cid = placed.client_order_id

    async def filled() -> bool:
        fills = [f for f in seen.fills if f.client_order_id == cid]
        return sum((f.qty for f in fills), Decimal(0)) == Decimal("0.01")

    await async_wait_for(filled, 10, what="fills of the market order on the user-data stream")
    order = execution.router.order(cid)
    assert order is not None and order.status is OrderStatus.FILLED
    trades = await execution.rest.user_trades_since(SYMBOL, start_time_ms=execution.router.session_start_ms - 1000)
    assert sorted(f.trade_id for f in seen.fills if f.client_order_id == cid) == sorted(
        t.id for t in trades if t.orderId == order.order_id
    )
    assert await position(execution) == before + Decimal("0.01")
    await async_wait_for(lambda: _true(bool(seen.accounts)), 5, what="an ACCOUNT_UPDATE")
    assert len(venue_orders(venue, cid)) == 1
    assert execution.router.counters.illegal_transitions == 0 and not seen.bad


async def _true(value: bool) -> bool:
    return value


async def test_limit_order_rests_then_cancel_and_cancel_all(
    venue: VenueProcess, layer: tuple[ExecutionLayer, Seen]
) -> None:
    execution, seen = layer
    price = resting_price(venue)
    a = await execution.router.submit(new("0.01", OrderType.LIMIT, price))
    assert a.status is OrderStatus.ACK and a.order_id > 0
    canceled = await execution.router.cancel(a.client_order_id)
    assert canceled.status is OrderStatus.CANCELED
    b = await execution.router.submit(new("0.01", OrderType.LIMIT, price))
    c = await execution.router.submit(new("0.02", OrderType.LIMIT, price))
    report = await execution.router.cancel_all([SYMBOL])
    assert report.open_orders == 0
    assert await execution.rest.open_orders(SYMBOL) == []
    for cid in (b.client_order_id, c.client_order_id):
        assert execution.router.order(cid).status is OrderStatus.CANCELED  # type: ignore[union-attr]

    async def stream_saw_cancels() -> bool:
        return {u.client_order_id for u in seen.updates if u.status is OrderStatus.CANCELED} >= {
            a.client_order_id,
            b.client_order_id,
            c.client_order_id,
        }

    await async_wait_for(stream_saw_cancels, 5, what="CANCELED for every order")
    assert execution.router.counters.illegal_transitions == 0


async def test_wrong_order_is_rejected_with_the_venue_code(layer: tuple[ExecutionLayer, Seen]) -> None:
    execution, _ = layer
    update = await execution.router.submit(new("0.0000001"))  # below the step size
    assert update.status is OrderStatus.REJECTED and update.reason.startswith("-")


async def test_fills_missed_while_the_user_stream_is_down_are_recovered(
    venue: VenueProcess, layer: tuple[ExecutionLayer, Seen]
) -> None:
    execution, seen = layer
    venue.admin("POST", "/admin/fault", {"fault": "drop_user_stream", "seconds": 1.5})
    await async_wait_for(lambda: _true(not execution.stream.connected.is_set()), 5, what="stream dropped")
    placed = await execution.router.submit(new("0.01"))  # fills at the venue; no stream to tell us
    cid = placed.client_order_id
    await async_wait_for(lambda: _true(execution.stream.synced.is_set()), 15, what="reconnected and resynced")

    async def recovered() -> bool:
        return sum((f.qty for f in seen.fills if f.client_order_id == cid), Decimal(0)) == Decimal("0.01")

    await async_wait_for(recovered, 5, what="fills recovered by the resync")
    ids = [f.trade_id for f in seen.fills if f.client_order_id == cid]
    assert len(ids) == len(set(ids))
    assert execution.router.counters.resync_fills >= 1 and execution.stream.counters.resyncs >= 1


async def test_malformed_and_failing_answers_do_not_duplicate_orders(
    venue: VenueProcess, layer: tuple[ExecutionLayer, Seen]
) -> None:
    execution, _ = layer
    price = resting_price(venue)
    venue.admin("POST", "/admin/fault", {"fault": "malformed_json", "count": 1})
    placed = await execution.router.submit(new("0.01", OrderType.LIMIT, price))
    assert placed.status is OrderStatus.ACK
    assert len(venue_orders(venue, placed.client_order_id)) == 1  # the resend was refused as a duplicate
    assert execution.rest.counters.malformed == 1
    venue.admin("DELETE", "/admin/fault")
    venue.admin("POST", "/admin/fault", {"fault": "rest_fail", "status": 503, "count": 1})
    second = await execution.router.submit(new("0.01", OrderType.LIMIT, price))
    assert second.status is OrderStatus.ACK and len(venue_orders(venue, second.client_order_id)) == 1
    assert execution.rest.counters.server_errors >= 1


async def test_fills_before_the_delayed_ack_keep_states_legal(
    venue: VenueProcess, layer: tuple[ExecutionLayer, Seen]
) -> None:
    execution, seen = layer
    venue.admin("POST", "/admin/fault", {"fault": "delay_acks", "ms": 300})
    placed = await execution.router.submit(new("0.01", side=Side.SELL))
    assert placed.status is OrderStatus.FILLED
    statuses = [u.status for u in seen.updates if u.client_order_id == placed.client_order_id]
    assert statuses[0] is OrderStatus.NEW and statuses[-1] is OrderStatus.FILLED
    assert execution.router.counters.illegal_transitions == 0


async def test_account_leverage_and_listen_key_keepalive(venue: VenueProcess) -> None:
    config = venue.platform.config.model_copy(
        update={"broker": venue.platform.config.broker.model_copy(update={"listen_key_keepalive_s": 0.2})}
    )
    execution = build_execution(config, environ={}, session="itka")
    await execution.start()
    try:
        account = await execution.rest.account()
        assert account.totalWalletBalance > 0 and account.availableBalance <= account.totalMarginBalance
        answer = await execution.rest.set_leverage(SYMBOL, 5)
        assert (answer.symbol, answer.leverage) == (SYMBOL, 5)
        await async_wait_for(lambda: _true(execution.stream.counters.keepalives >= 2), 5, what="two keepalives")
        assert execution.stream.counters.keepalive_failures == 0
        stats = execution.stats()
        assert stats["stream"]["connected"] and stats["rest"]["requests"] >= 4
    finally:
        await execution.stop()


async def test_partial_fill_then_cancel_and_a_refused_order(
    venue: VenueProcess, layer: tuple[ExecutionLayer, Seen]
) -> None:
    """NEW -> PARTIALLY_FILLED -> CANCELED keeping the filled part, and NEW -> REJECTED, on the real venue."""
    execution, seen = layer
    venue.admin("POST", "/admin/publishing", {"paused": True})  # a still touch: the partial fill stays partial
    try:
        before = await position(execution)
        _, ask = touch(venue)
        # a buy limited to the ask takes only the touch (at most 80 units of 0.001 here) and rests the rest
        cid = (await execution.router.submit(new("0.100", OrderType.LIMIT, ask))).client_order_id

        async def partly_filled() -> OrderUpdate | None:
            update = execution.router.order(cid)
            return update if update is not None and update.status is OrderStatus.PARTIALLY_FILLED else None

        placed = await async_wait_for(partly_filled, 5, what="the order partly filled (the touch only)")
        assert Decimal(0) < placed.filled_qty < Decimal("0.1")
        canceled = await execution.router.cancel(cid)
        assert canceled.status is OrderStatus.CANCELED and canceled.filled_qty == placed.filled_qty
        (at_venue,) = venue_orders(venue, cid)
        assert at_venue["status"] == "CANCELED" and Decimal(at_venue["executedQty"]) == placed.filled_qty

        async def fills_in() -> bool:
            return sum((f.qty for f in seen.fills if f.client_order_id == cid), Decimal(0)) == placed.filled_qty

        await async_wait_for(fills_in, 5, what="the partial fills on the user stream")
        assert await position(execution) == before + placed.filled_qty
        venue.admin("POST", "/admin/fault", {"fault": "reject_orders", "count": 1})
        refused = await execution.router.submit(new("0.01"))
        assert refused.status is OrderStatus.REJECTED and refused.reason.startswith("-2010")
        assert venue_orders(venue, refused.client_order_id) == []
    finally:
        venue.admin("POST", "/admin/publishing", {"paused": False})
    for cid in (placed.client_order_id, refused.client_order_id):
        path = [u.status for u in seen.updates if u.client_order_id == cid]
        assert path[0] is OrderStatus.NEW and all(b in ORDER_TRANSITIONS[a] for a, b in itertools.pairwise(path))
    assert execution.router.counters.illegal_transitions == 0
