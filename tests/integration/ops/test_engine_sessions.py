"""Sessions in the running engine (valkey, simulated venue and collector are real processes; the engine runs
in the test's loop so its session governor can be given a controlled clock): the default XTAI `stock` track
moves OPEN -> CLOSE_ONLY -> FORCE_FLAT -> CLOSED on Friday 2026-11-20. Every transition is published on
ops:events:session; leaving OPEN cancels resting orders; CLOSE_ONLY refuses a risk-increasing order and
passes a reducing one; FORCE_FLAT flattens the track at the venue; a restart inside FORCE_FLAT flattens
again; the 24/7 crypto track stays OPEN throughout."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hftops.engine.service import Engine, build_engine
from hftops.model.ops_events import FlattenReport, SessionTransition
from hftops.model.orders import Intent, IntentKind, OrderType, RejectReason, Side, TimeInForce
from hftops.model.phases import Phase
from hftops.model.streams import OpsKind, ops_stream
from tests.conftest import ValkeyHandle
from tests.integration.engine.helpers import ENGINE_OVERRIDES, World
from tests.integration.ops.session_probe import SessionProbe
from tests.support.platform import TestPlatform
from tests.support.waiting import async_wait_for
from tests.unit.ops.session_support import WallClock, taipei_ns

pytestmark = pytest.mark.timeout(240)

SYM = "2330"
OVERRIDES: dict[str, Any] = {
    **ENGINE_OVERRIDES,
    "venue": {"symbols": ["BTCUSDT", SYM]},
    "engine": {
        **ENGINE_OVERRIDES["engine"],
        "strategies": [
            {
                "id": "probe",
                "path": "tests.integration.ops.session_probe:SessionProbe",
                "symbols": [SYM],
                "limits": {
                    "max_position_qty": "10",
                    "max_order_qty": "10",
                    "max_notional": "1000000",
                    "price_band_bps": "500",
                },
            }
        ],
    },
    # only the sessions may stop orders here (no recorder runs, the session clock is not the feed's clock)
    "autonomy": {"db_stale_s": 3600, "feed_gap_s": 600, "feed_gap_halt_s": 3600},
    "flatten": {"deadline_s": 15, "retry_max_s": 0.5},
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root: Path = tmp_path_factory.mktemp("sessions")
    valkey = ValkeyHandle(root / "valkey")
    built = World(TestPlatform(root, {**OVERRIDES, "redis": {"url": valkey.url}}))
    try:
        yield built
    finally:
        built.close()
        valkey.stop(kill=True)


class Running:
    """One engine in this loop, its session governor on `clock`."""

    def __init__(self, world: World, clock: WallClock) -> None:
        self.engine: Engine = build_engine(world.config, environ={})
        self.engine.sessions.clock = clock  # only the sessions run on the controlled clock
        self.task = asyncio.create_task(self.engine.run())
        probe = self.engine.core.strategies["probe"]
        assert isinstance(probe, SessionProbe)
        self.probe = probe

    async def ready(self) -> None:
        await until(lambda: self.engine.started and self.engine.phase == "running", 30, "engine running")

    async def stop(self) -> None:
        self.engine.stop()
        assert await asyncio.wait_for(self.task, 20) == 0

    def send(self, *intents: Intent) -> None:
        self.probe.script = list(intents)  # sent at the next book update of SYM

    def position(self) -> Decimal:
        return self.engine.state.positions.qty("probe", SYM)


async def until(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    async def check() -> bool:
        return bool(condition())

    await async_wait_for(check, timeout_s, what=what)


def market(side: Side, qty: int) -> Intent:
    return Intent(
        kind=IntentKind.NEW,
        strategy_id="probe",
        symbol=SYM,
        side=side,
        qty=Decimal(qty),
        order_type=OrderType.MARKET,
        tif=TimeInForce.IOC,
    )


def session_events(world: World) -> list[SessionTransition]:
    return [
        msgspec.msgpack.decode(f[b"d"], type=SessionTransition)
        for _, f in world.redis.xrange(ops_stream(OpsKind.SESSION))
    ]


def flatten_reports(world: World) -> list[FlattenReport]:
    return [
        msgspec.msgpack.decode(f[b"d"], type=FlattenReport) for _, f in world.redis.xrange(ops_stream(OpsKind.FLATTEN))
    ]


def venue_qty(world: World) -> Decimal:
    return world.venue_positions().get(SYM, Decimal(0))


def stock(world: World, to_phase: str, cause: str) -> list[SessionTransition]:
    return [e for e in session_events(world) if e.track == "stock" and e.to_phase == to_phase and e.cause == cause]


async def test_a_trading_day_close_through_the_engine(world: World) -> None:
    clock = WallClock(taipei_ns(2026, 11, 20, 13, 24, 50))
    run = Running(world, clock)
    engine = run.engine
    try:
        await run.ready()
        await until(lambda: stock(world, "OPEN", "boot"), 5, "stock INIT -> OPEN published")
        assert engine.sessions.is_open("BTCUSDT") and engine.sessions.is_open(SYM)

        # OPEN: a position and an order resting below the market
        await until(lambda: engine.state.mids.get(SYM), 15, f"a {SYM} quote")
        run.send(market(Side.BUY, 4))
        await until(lambda: venue_qty(world) == 4 and run.position() == 4, 15, "long 4 at the venue")
        mid = engine.state.mids[SYM]
        below = (mid * Decimal("0.98") / 5).quantize(Decimal(1), rounding=ROUND_DOWN) * 5
        run.send(
            Intent(kind=IntentKind.NEW, strategy_id="probe", symbol=SYM, side=Side.BUY, qty=Decimal(1), price=below)
        )
        await until(lambda: any(o.symbol == SYM for o in engine.state.orders), 10, "a resting bid")

        # 13:25 CLOSE_ONLY: the resting bid is cancelled, a buy refused, a sell passes
        clock.set(taipei_ns(2026, 11, 20, 13, 25))
        await until(lambda: stock(world, "CLOSE_ONLY", "schedule"), 5, "OPEN -> CLOSE_ONLY published")
        await until(lambda: not any(o.symbol == SYM for o in engine.state.orders), 10, "the bid cancelled")
        assert world.venue_orders()["open"] == 0
        run.send(market(Side.BUY, 1), market(Side.SELL, 1))
        await until(lambda: venue_qty(world) == 3 and run.position() == 3, 15, "the reducing sell filled")
        refused, result = run.probe.rejections[-1]
        assert (refused.side, result.reason, result.gate) == (Side.BUY, RejectReason.SESSION_PHASE, "session")
        assert "CLOSE_ONLY" in result.detail
        assert engine.session_gate.drops[("probe", SYM, "CLOSE_ONLY")] == 1

        # 13:29 FORCE_FLAT: the flattener closes the track at the venue; new orders are refused
        clock.set(taipei_ns(2026, 11, 20, 13, 29))
        await until(lambda: venue_qty(world) == 0 and run.position() == 0, 20, "the stock track flat at the venue")
        await until(lambda: [r for r in flatten_reports(world) if r.trigger == "force_flat"], 20, "flatten report")
        report = next(r for r in flatten_reports(world) if r.trigger == "force_flat")
        assert (report.scope, report.scope_id, report.ok) == ("track", "stock", True)
        run.send(market(Side.SELL, 1))
        await until(lambda: len(run.probe.rejections) == 2, 10, "a NEW refused in FORCE_FLAT")
        assert "FORCE_FLAT" in run.probe.rejections[-1][1].detail

        # 13:30 CLOSED; the next transition is Monday's pre-open; crypto never left OPEN
        clock.set(taipei_ns(2026, 11, 20, 13, 30))
        await until(lambda: engine.sessions.track_phase("stock") is Phase.CLOSED, 5, "stock CLOSED")
        sessions = engine.stats()["sessions"]
        assert {k: sessions["stock"][k] for k in ("phase", "next_phase", "next_at")} == {
            "phase": "CLOSED",
            "next_phase": "PRE_OPEN",
            "next_at": "2026-11-23T08:30:00+08:00",
        }
        assert sessions["crypto"]["phase"] == "OPEN"
        # The event reaches its stream after the phase changed in memory: wait for it, then compare the lot.
        await until(lambda: "CLOSED" in [e.to_phase for e in session_events(world)], 10, "the CLOSED event")
        assert [e.to_phase for e in session_events(world) if e.track == "stock"] == [
            "OPEN",
            "CLOSE_ONLY",
            "FORCE_FLAT",
            "CLOSED",
        ]
        assert [e.to_phase for e in session_events(world) if e.track == "crypto"] == ["OPEN"]
    finally:
        await run.stop()


async def test_a_restart_inside_force_flat_flattens_again(world: World) -> None:
    clock = WallClock(taipei_ns(2026, 11, 20, 13, 20))
    run = Running(world, clock)
    try:
        await run.ready()
        await until(lambda: run.engine.state.mids.get(SYM), 15, f"a {SYM} quote")
        run.send(market(Side.BUY, 2))
        await until(lambda: venue_qty(world) == 2, 15, "long 2 at the venue")
    finally:
        await run.stop()
    assert venue_qty(world) == 2  # a stop does not flatten

    before = len(stock(world, "FORCE_FLAT", "boot"))
    reports_before = len(flatten_reports(world))
    clock.set(taipei_ns(2026, 11, 20, 13, 29, 30))  # the engine comes back inside 13:29-13:30
    again = Running(world, clock)
    try:
        await again.ready()
        await until(lambda: len(stock(world, "FORCE_FLAT", "boot")) == before + 1, 5, "INIT -> FORCE_FLAT (boot)")
        await until(lambda: venue_qty(world) == 0 and again.position() == 0, 20, "flattened again after restart")
        await until(lambda: len(flatten_reports(world)) > reports_before, 20, "its flatten report")
        report = flatten_reports(world)[-1]
        assert (report.scope_id, report.trigger, report.ok) == ("stock", "force_flat", True)
    finally:
        await again.stop()
