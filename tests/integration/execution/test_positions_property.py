"""Generated order sequences executed against the real simulated venue: the engine's PositionBook, fed only by
the fills the order router reports, always equals the venue's own book — quantity per symbol, average entry
price, realized PnL and fees. Market, IOC, resting-then-canceled and reduce-only orders, both symbols, flips.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hftops.engine.positions import PositionBook
from hftops.execution import ExecutionLayer, build_execution
from hftops.model.orders import Fill, Intent, IntentKind, OrderType, Side, TimeInForce
from tests.integration.venue.helpers import VenueProcess
from tests.support.platform import TestPlatform
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.timeout(600)

SYMBOLS = ("BTCUSDT", "ETHUSDT")
STEP = {"BTCUSDT": Decimal("0.001"), "ETHUSDT": Decimal("0.001")}
TICK = {"BTCUSDT": Decimal("0.1"), "ETHUSDT": Decimal("0.01")}
MAX_UNITS = {"BTCUSDT": 60, "ETHUSDT": 600}  # up to ~1.5x the touch: larger orders walk the modelled depth
TOLERANCE = Decimal("0.000001")  # the venue's admin view prints money with 8 decimals


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VenueProcess]:
    platform = TestPlatform(tmp_path_factory.mktemp("prop"), {"simulator": {"rate": 400, "burst_factor": 1}})
    process = VenueProcess(platform).start()
    yield process
    process.close()


side_st = st.sampled_from([Side.BUY, Side.SELL])
symbol_st = st.sampled_from(SYMBOLS)
# (kind, symbol, side, quantity as a fraction of the symbol's max, limit offset in ticks from the far touch)
op_st = st.tuples(
    st.sampled_from(["market", "ioc", "rest_cancel", "reduce_only"]),
    symbol_st,
    side_st,
    st.integers(1, 100),
    st.integers(-3, 3),
)


def _qty(symbol: str, percent: int) -> Decimal:
    return max(1, MAX_UNITS[symbol] * percent // 100) * STEP[symbol]


class Run:
    """One generated example: its own strategy id and a fresh PositionBook fed by the shared router's fills."""

    def __init__(self, venue: VenueProcess, layer: ExecutionLayer, strategy_id: str) -> None:
        self.venue = venue
        self.layer = layer
        self.strategy_id = strategy_id
        self.book = PositionBook(Decimal(0))
        self.fills: list[Fill] = []

    def on_fill(self, fill: Fill) -> None:
        if fill.strategy_id == self.strategy_id:
            self.fills.append(fill)
            self.book.apply_fill(fill)

    def touch(self, symbol: str) -> tuple[Decimal, Decimal]:
        row = self.venue.admin("GET", "/admin/positions")["positions"][symbol]
        return Decimal(row["bid"]), Decimal(row["ask"])

    def venue_state(self) -> dict[str, Any]:
        return self.venue.admin("GET", "/admin/positions")

    def intent(
        self,
        symbol: str,
        side: Side,
        qty: Decimal,
        order_type: OrderType = OrderType.MARKET,
        price: Decimal | None = None,
        tif: TimeInForce = TimeInForce.GTC,
        reduce_only: bool = False,
        strategy_id: str | None = None,
    ) -> Intent:
        return Intent(
            kind=IntentKind.NEW,
            strategy_id=strategy_id or self.strategy_id,
            symbol=symbol,
            side=side,
            qty=qty,
            price=price,
            order_type=order_type,
            tif=tif,
            reduce_only=reduce_only,
        )

    async def flatten(self) -> None:
        """Close whatever earlier examples left, under another strategy id (not booked in this book)."""
        for symbol in SYMBOLS:
            for _ in range(5):
                held = Decimal(self.venue_state()["positions"][symbol]["qty"])
                if held == 0:
                    break
                side = Side.SELL if held > 0 else Side.BUY
                await self.layer.router.submit(
                    self.intent(symbol, side, abs(held), reduce_only=True, strategy_id="flat")
                )
            assert Decimal(self.venue_state()["positions"][symbol]["qty"]) == 0, f"{symbol} not flat"

    async def execute(self, op: tuple[str, str, Side, int, int]) -> None:
        kind, symbol, side, percent, offset = op
        qty = _qty(symbol, percent)
        router = self.layer.router
        if kind == "market":
            await router.submit(self.intent(symbol, side, qty))
            return
        if kind == "reduce_only":  # refused (-2022) when flat or on the wrong side: nothing to book
            await router.submit(self.intent(symbol, side, qty, reduce_only=True))
            return
        bid, ask = self.touch(symbol)
        far = ask if side is Side.BUY else bid  # offset >= 0 crosses: takes liquidity at once
        price = far + offset * TICK[symbol] * (1 if side is Side.BUY else -1)
        if kind == "ioc":
            await router.submit(self.intent(symbol, side, qty, OrderType.LIMIT, price, TimeInForce.IOC))
            return
        placed = await router.submit(self.intent(symbol, side, qty, OrderType.LIMIT, price))
        await router.cancel(placed.client_order_id)  # may have filled (partly) meanwhile: booked by its fills


class Shared:
    """One execution layer for every example (a new one per example would replay the last minute of fills)."""

    def __init__(self) -> None:
        self.run: Run | None = None

    def on_fill(self, fill: Fill) -> None:
        if self.run is not None:
            self.run.on_fill(fill)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(venue: VenueProcess) -> AsyncIterator[tuple[ExecutionLayer, Shared]]:
    hub = Shared()
    layer = build_execution(venue.platform.config, environ={}, session="prop", on_fill=hub.on_fill)
    await layer.start()
    yield layer, hub
    await layer.stop(cancel_open_orders=True)


_examples = itertools.count(1)


@pytest.mark.asyncio(loop_scope="module")
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(op_st, min_size=1, max_size=8))
async def test_generated_orders_keep_the_position_book_equal_to_the_venue(
    venue: VenueProcess, shared: tuple[ExecutionLayer, Shared], ops: list[tuple[str, str, Side, int, int]]
) -> None:
    layer, hub = shared
    run = hub.run = Run(venue, layer, f"prop{next(_examples)}")
    counters = (layer.router.counters.illegal_transitions, layer.router.counters.overfills)
    await run.flatten()
    before = run.venue_state()
    for op in ops:
        await run.execute(op)
    await layer.router.resync(SYMBOLS)  # whatever the stream has not delivered yet comes from userTrades

    async def quantities_agree() -> bool:
        held = {s: Decimal(run.venue_state()["positions"][s]["qty"]) for s in SYMBOLS}
        return all(run.book.net().get(s, Decimal(0)) == held[s] for s in SYMBOLS)

    await async_wait_for(quantities_agree, 10, what="PositionBook net == venue positions")
    after = run.venue_state()
    assert len({(f.symbol, f.trade_id) for f in run.fills}) == len(run.fills)  # every venue fill booked once
    for symbol in SYMBOLS:
        was, now = before["positions"][symbol], after["positions"][symbol]
        position = run.book.position(run.strategy_id, symbol)
        assert position.qty == Decimal(now["qty"])
        assert abs(position.avg_price - Decimal(now["entry_price"])) <= TOLERANCE, (symbol, position)
        realized = Decimal(now["realized_pnl"]) - Decimal(was["realized_pnl"])
        assert abs(position.realized_pnl - realized) <= TOLERANCE, (symbol, position.realized_pnl, realized)
    fees = Decimal(after["fees_paid"]) - Decimal(before["fees_paid"])
    assert abs(run.book.fees() - fees) <= TOLERANCE * (1 + len(run.fills)), (run.book.fees(), fees)
    assert (layer.router.counters.illegal_transitions, layer.router.counters.overfills) == counters
