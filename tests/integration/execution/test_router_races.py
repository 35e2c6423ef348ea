"""Races between an order and its own cancel, against the real simulated venue with trading faults.

A cancel must never overtake its order at the venue, a lost or late answer must never put a second copy of
an order on the book, and whatever the timing, every order takes only legal steps
(NEW -> ACK -> PARTIALLY_FILLED -> FILLED / CANCELED / REJECTED / EXPIRED) and ends as the venue has it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import pytest

from hftops.engine.orders import OpenOrders
from hftops.execution import ExecutionLayer, build_execution
from hftops.model.orders import ORDER_TRANSITIONS, Fill, OrderStatus, OrderType, OrderUpdate, Side
from tests.integration.execution.test_broker_on_venue import SYMBOL, new, position, resting_price, venue_orders
from tests.integration.venue.helpers import VenueProcess
from tests.support.platform import TestPlatform
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.timeout(90)
REST_TIMEOUT_S = 0.5


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VenueProcess]:
    overrides = {"simulator": {"rate": 400, "burst_factor": 1}, "broker": {"timeout_s": REST_TIMEOUT_S}}
    process = VenueProcess(TestPlatform(tmp_path_factory.mktemp("races"), overrides)).start()
    yield process
    process.close()


@pytest.fixture(autouse=True)
def clean_faults(venue: VenueProcess) -> Iterator[None]:
    yield
    venue.admin("DELETE", "/admin/fault")


class Watch:
    """What the engine would see: every update goes through its own state machine (raises if illegal)."""

    def __init__(self) -> None:
        self.updates: list[OrderUpdate] = []
        self.fills: list[Fill] = []
        self.book = OpenOrders()
        self.errors: list[str] = []

    def on_order(self, update: OrderUpdate) -> None:
        self.updates.append(update)
        try:
            self.book.apply(update)
        except ValueError as exc:
            self.errors.append(str(exc))

    def statuses(self, cid: str) -> list[OrderStatus]:
        return [u.status for u in self.updates if u.client_order_id == cid]

    def assert_legal(self) -> None:
        assert not self.errors, self.errors
        for cid in {u.client_order_id for u in self.updates}:
            path = self.statuses(cid)
            assert path[0] is OrderStatus.NEW, (cid, path)
            for before, after in itertools.pairwise(path):
                assert after in ORDER_TRANSITIONS[before], (cid, path)


_sessions = itertools.count(1)


@pytest.fixture
async def layer(venue: VenueProcess) -> AsyncIterator[tuple[ExecutionLayer, Watch]]:
    watch = Watch()
    built = build_execution(
        venue.platform.config,
        environ={},
        session=f"race{next(_sessions)}",
        on_order=watch.on_order,
        on_fill=watch.fills.append,
    )
    await built.start()
    yield built, watch
    await built.stop(cancel_open_orders=True)


async def _first_post_refused(execution: ExecutionLayer, timeout_s: float = 5.0) -> None:
    """Return on the first event-loop turn after the 503 answer (a polling interval would let the resend
    land first and the race would not be tested)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while execution.rest.counters.server_errors < 1:
        assert asyncio.get_running_loop().time() < deadline, "the first POST was not refused with 503"
        await asyncio.sleep(0)


def venue_status(venue: VenueProcess, cid: str) -> list[str]:
    return [o["status"] for o in venue_orders(venue, cid)]


async def test_cancel_sent_while_the_order_is_being_resent_waits_for_it(
    venue: VenueProcess, layer: tuple[ExecutionLayer, Watch]
) -> None:
    """The order's first POST is refused with a 503 and is resent; a cancel issued in between (a quoting
    strategy re-quoting) used to reach the venue first: -2011, then -2013 on the query, so the router
    called the order REJECTED — and the resent copy then rested at the venue unseen (REJECTED -> ACK,
    REJECTED -> CANCELED refused as illegal)."""
    execution, watch = layer
    price = resting_price(venue)
    venue.admin("POST", "/admin/fault", {"fault": "rest_fail", "status": 503, "count": 1})
    submit = asyncio.create_task(execution.router.submit(new("0.01", OrderType.LIMIT, price)))

    await _first_post_refused(execution)  # at once: the order is not at the venue yet
    cid = next(iter(execution.router.orders))
    assert execution.router.order(cid).status is OrderStatus.NEW  # type: ignore[union-attr]
    canceled = await execution.router.cancel(cid)
    await submit
    assert canceled.status is OrderStatus.CANCELED
    assert venue_status(venue, cid) == ["CANCELED"]  # one order at the venue, and nothing left resting
    assert await execution.rest.open_orders(SYMBOL) == []
    assert watch.statuses(cid) == [OrderStatus.NEW, OrderStatus.ACK, OrderStatus.CANCELED]
    assert execution.router.counters.illegal_transitions == 0
    watch.assert_legal()


async def test_acks_later_than_the_rest_timeout_never_duplicate_an_order(
    venue: VenueProcess, layer: tuple[ExecutionLayer, Watch]
) -> None:
    """Answers later than the client's timeout: the order is live, its answer lost. Resending it blindly
    would put a second copy on the book once the first is closed (Binance only refuses a client order id
    that is still open) — a MARKET order would fill twice. Cancels issued at once must still land."""
    execution, watch = layer
    before = await position(execution)
    price = resting_price(venue)
    venue.admin("POST", "/admin/fault", {"fault": "delay_acks", "ms": int(REST_TIMEOUT_S * 1000 * 1.6)})
    quotes = [asyncio.create_task(execution.router.submit(new("0.01", OrderType.LIMIT, price))) for _ in range(4)]
    await asyncio.sleep(0)
    cids = list(execution.router.orders)
    cancels = [asyncio.create_task(execution.router.cancel(cid)) for cid in cids]
    market = await execution.router.submit(new("0.01", side=Side.BUY))
    await asyncio.gather(*quotes, *cancels)

    async def settled() -> bool:
        return all(execution.router.order(c).status.terminal for c in [*cids, market.client_order_id])  # type: ignore[union-attr]

    await async_wait_for(settled, 10, what="every order settled")
    for cid in cids:
        assert venue_status(venue, cid) == ["CANCELED"], cid
        assert execution.router.order(cid).status is OrderStatus.CANCELED  # type: ignore[union-attr]
    assert venue_status(venue, market.client_order_id) == ["FILLED"]
    venue.admin("DELETE", "/admin/fault")
    assert await position(execution) == before + Decimal("0.01")  # filled once, not once per resend
    assert execution.router.counters.illegal_transitions == 0
    watch.assert_legal()
