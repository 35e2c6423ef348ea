"""The engine process against real processes (valkey, simulated venue, collector): it trades, publishes
its events, stops cleanly, restarts from its checkpoint in agreement with the broker, refuses to trade on
a corrupt checkpoint, and keeps positions right through broker 5xx and malformed answers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from hftops.config.paths import DataPaths
from hftops.engine.checkpoint import load_checkpoint
from hftops.model.exec_events import PnlSnapshot, PositionsSnapshot, ReconEvent
from hftops.model.orders import Fill, OrderUpdate
from hftops.model.streams import ExecKind
from tests.conftest import ValkeyHandle
from tests.integration.engine.helpers import ENGINE_OVERRIDES, World
from tests.support.cli import trading
from tests.support.platform import TestPlatform
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root: Path = tmp_path_factory.mktemp("engine")
    valkey = ValkeyHandle(root / "valkey")
    platform = TestPlatform(root, {**ENGINE_OVERRIDES, "redis": {"url": valkey.url}})
    built = World(platform)
    try:
        yield built
    finally:
        built.close()
        valkey.stop(kill=True)


def _fills_at_venue(world: World) -> int:
    return len(world.venue_fills())


def test_trades_publishes_stops_and_restarts_from_checkpoint(world: World) -> None:
    world.start_engine()
    stats = world.wait_ready()
    assert {s["id"] for s in stats["strategies"]} == {"mm1", "mom1"}
    assert stats["refusing_reason"] is None

    wait_for(
        lambda: len(world.events(ExecKind.FILLS)) >= 3 and _fills_at_venue(world) >= 3,
        30,
        what="engine fills in exec:fills and at the venue",
    )
    orders = world.decoded(ExecKind.ORDERS, OrderUpdate)
    fills = world.decoded(ExecKind.FILLS, Fill)
    assert {o.strategy_id for o in orders} <= {"mm1", "mom1"}
    venue_trade_ids = (
        {(f["symbol"], f["trade_id"]) for f in world.venue_fills()} if "trade_id" in world.venue_fills()[0] else None
    )
    if venue_trade_ids is not None:
        assert {(f.symbol, f.trade_id) for f in fills} <= venue_trade_ids
    wait_for(lambda: world.events(ExecKind.POSITIONS) and world.events(ExecKind.PNL), 5, what="snapshots")
    snap = world.decoded(ExecKind.POSITIONS, PositionsSnapshot)[-1]
    assert world.decoded(ExecKind.PNL, PnlSnapshot)[-1].equity > 0
    assert isinstance(snap.net, dict)

    t0 = time.monotonic()
    assert world.stop_engine() == 0
    assert time.monotonic() - t0 < 6
    assert world.venue_orders()["open"] == 0  # cancel_on_stop: nothing of ours rests at the venue
    body = load_checkpoint(world.checkpoint)
    assert body is not None
    venue = world.venue_positions()
    checkpoint_net: dict[str, Decimal] = {}
    for p in body.positions:
        checkpoint_net[p.symbol] = checkpoint_net.get(p.symbol, Decimal(0)) + p.qty
    assert all(checkpoint_net.get(s, Decimal(0)) == q for s, q in venue.items()), (checkpoint_net, venue)

    # restart mid-position: the checkpoint restores per-strategy positions, the broker agrees
    recon_before = len(world.events(ExecKind.RECON))
    world.start_engine()
    restored = world.wait_ready()
    by_strategy = {(p.strategy_id, p.symbol): p.qty for p in body.positions if p.qty != 0}
    shown = {(p["strategy"], p["symbol"]): Decimal(p["qty"]) for p in restored["positions"]}
    for key in by_strategy:
        assert key in shown, (key, shown)
    world.venue.admin("POST", "/admin/publishing", {"paused": True})
    try:
        wait_for(world.net_matches_venue, 15, what="engine net == venue positions after restart")
    finally:
        world.venue.admin("POST", "/admin/publishing", {"paused": False})
    startup = [e for e in world.decoded(ExecKind.RECON, ReconEvent)[recon_before:] if e.kind.startswith("startup")]
    assert all(e.kind in ("startup_match", "startup_adopt_broker") for e in startup), startup
    assert world.stop_engine() == 0


def test_broker_faults_never_corrupt_positions(world: World) -> None:
    world.start_engine()
    world.wait_ready()
    fills_before = _fills_at_venue(world)
    world.venue.admin("POST", "/admin/fault", {"fault": "rest_fail", "status": 500, "count": 15})
    world.venue.admin("POST", "/admin/fault", {"fault": "malformed_json", "count": 8})
    wait_for(lambda: _fills_at_venue(world) >= fills_before + 3, 30, what="trading through the faults")
    world.venue.admin("DELETE", "/admin/fault")
    world.venue.admin("POST", "/admin/publishing", {"paused": True})
    try:
        wait_for(world.net_matches_venue, 20, what="engine net == venue positions after the faults")
        stats = world.stats()
        assert stats is not None and stats["ready_to_trade"]
        assert stats["execution"]["rest"]  # the faults were met (counters present), the engine stayed up
        assert world.engine is not None and world.engine.alive()
    finally:
        world.venue.admin("POST", "/admin/publishing", {"paused": False})
    assert world.stop_engine() == 0


def test_halt_latch_cancels_resting_orders_and_blocks_new_ones(world: World) -> None:
    world.start_engine()
    world.wait_ready()
    assert world.notify is not None and world.notify.count("WATCHDOG=1") >= 1
    latch = DataPaths(world.config.data_dir).state / "autonomy_latch.json"
    latch.write_text(json.dumps({"mode": "HALT", "reason": "test_drill", "by": "pytest"}))  # emergency-stop's
    try:
        wait_for(
            lambda: ((world.stats() or {}).get("autonomy") or {}).get("mode") == "HALT",
            5,
            what="engine HALT (manual_operator) from the emergency-stop latch",
        )
        assert world.stats()["autonomy"]["reasons"] == ["manual_operator"]  # type: ignore[index]
        wait_for(lambda: world.venue_orders()["open"] == 0, 10, what="resting orders canceled under HALT")
        orders = len(world.venue_orders()["orders"])
        ticks = world.stats()["feed"]["ticks"]  # type: ignore[index]
        wait_for(
            lambda: (world.stats() or {}).get("feed", {}).get("ticks", 0) > ticks + 200,
            15,
            what="market data flowing under HALT",
        )
        flattens = [o for o in world.venue_orders()["orders"][orders:] if o.get("reduceOnly")]
        assert len(world.venue_orders()["orders"]) - orders == len(flattens)  # nothing but flatten orders
        stats = world.stats()
        assert stats is not None and not stats["ready_to_trade"]
        assert any("autonomy_mode" in s["rejects"] for s in stats["strategies"]), stats["strategies"]
    finally:
        trading(world.platform, "rearm", "--operator", "pytest", "--reason", "drill over", check=True)
    assert not latch.exists()  # only `trading rearm` clears the emergency-stop latch
    wait_for(lambda: (world.stats() or {}).get("ready_to_trade"), 5, what="trading again after the rearm")
    assert world.stop_engine() == 0


def test_corrupt_checkpoint_refuses_to_trade(world: World) -> None:
    good = world.checkpoint.read_bytes()
    world.checkpoint.write_bytes(good[: len(good) // 2])
    try:
        orders_before = len(world.venue_orders()["orders"])
        world.start_engine()
        stats = wait_for(
            lambda: (s := world.stats()) and s["feed"]["ticks"] > 200 and s,
            20,
            what="engine reading market data while refusing",
        )
        assert not stats["ready_to_trade"]
        reason = stats["refusing_reason"]
        assert str(world.checkpoint) in reason and "corrupt" in reason and "mv " in reason
        assert len(world.venue_orders()["orders"]) == orders_before  # not one order sent
        assert world.stop_engine() == 0
        assert world.checkpoint.read_bytes() == good[: len(good) // 2]  # the evidence is left as it was
        assert "checkpoint_corrupt" in (Path(world.config.data_dir) / "log" / "engine.log").read_text()
    finally:
        world.checkpoint.write_bytes(good)
