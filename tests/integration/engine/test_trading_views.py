"""`trading positions|orders|pnl|strategies` against a real engine process (no supervisor: no PID file, so
its fresh stats say it runs), then with the engine stopped: exit 2, a clear sentence, and positions from
the broker beside the last checkpoint."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import ValkeyHandle
from tests.integration.engine.helpers import ENGINE_OVERRIDES, World
from tests.support.cli import trading_json
from tests.support.platform import TestPlatform
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    valkey = ValkeyHandle(tmp_path / "valkey")
    platform = TestPlatform(tmp_path, {**ENGINE_OVERRIDES, "redis": {"url": valkey.url}})
    built = World(platform)
    try:
        yield built
    finally:
        built.close()
        valkey.stop(kill=True)


def test_views_of_a_running_then_stopped_engine(world: World) -> None:
    world.start_engine()
    world.wait_ready()
    wait_for(lambda: len(world.venue_fills()) >= 3, 60, what="fills at the venue")
    code, strategies = trading_json(world.platform, "strategies")
    assert code == 0, strategies
    by_id = {s["id"]: s for s in strategies["strategies"]}
    assert by_id["mm1"]["class"] == "hftops.engine.strategies.market_maker:QuotingMarketMaker"
    assert by_id["mm1"]["params"]["max_inventory"] == "0.05" and "rejects" in by_id["mm1"]
    assert strategies["engine"]["pid"] == world.engine.process.pid  # type: ignore[union-attr]
    code, orders = trading_json(world.platform, "orders", "--open")
    assert code == 0 and isinstance(orders["open"], list) and "recent" not in orders

    assert world.stop_engine() == 0
    code, report = trading_json(world.platform, "positions")
    assert code == 2 and "not running" in report["engine"]["problem"]
    assert report["source"] == "checkpoint" and report["broker"]["available"]
    venue = world.venue_positions()
    for symbol, row in report["symbols"].items():
        assert row["engine_qty"] is None and row["match"] is None
        assert Decimal(row["checkpoint_qty"]) == Decimal(row["broker_qty"]) == venue.get(symbol, Decimal(0)), symbol
    for command in ("pnl", "strategies", "orders"):
        code, answer = trading_json(world.platform, command)
        assert code == 2 and "not running" in answer["engine"]["problem"], (command, answer)
