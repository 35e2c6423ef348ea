"""Reconnect windows in a running collector (controlled wall clock): a dropped connection of calendar-bound
symbols (Taiwan stock 2330) waits for HFT_RECONNECT_HOURS, a 24/7 symbol's connection comes straight back,
and once the window opens the waiting connection returns and backfills what it missed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hftops.pipeline.collector.app import build_collector
from hftops.pipeline.collector.flusher import Clock
from tests.conftest import ValkeyHandle
from tests.integration.collector.fake_venue import FakeVenue
from tests.integration.collector.helpers import complete, make_config, wait_ready
from tests.support.waiting import async_wait_for
from tests.unit.ops.session_support import taipei_ns

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def venue() -> AsyncIterator[FakeVenue]:
    v = await FakeVenue(symbols=("BTCUSDT", "2330")).start()
    yield v
    await v.stop()


async def test_calendar_symbols_wait_for_their_window(tmp_path: Path, venue: FakeVenue, valkey: ValkeyHandle) -> None:
    offset = [taipei_ns(2026, 11, 20, 14) - time.time_ns()]  # 14:00 Taipei: after the 08:30-13:35 window
    clock = Clock(wall_ns=lambda: time.time_ns() + offset[0])
    config = make_config(tmp_path, venue.ws_url, venue.rest_url, valkey.url, venue.symbols)
    collector = build_collector(config, environ={"HFT_RECONNECT_HOURS": "08:30-13:35"}, clock=clock)
    assert [c.stream_set.symbols for c in collector.connections] == [("BTCUSDT",), ("2330",)]
    task = asyncio.create_task(collector.run())
    client = valkey.client()
    try:
        await wait_ready(collector)  # the first connection is never held back, window or not
        venue.publish("2330", 5)
        venue.drop_connections()

        def connections() -> dict[str, Any]:
            snap = collector.snapshot()
            return {**snap["connections"], "waiting_for_window": snap["waiting_for_window"]}  # type: ignore[dict-item]

        async def crypto_back_2330_waiting() -> bool:
            c = connections()
            return c["connected"] == 1 and "1" in c["waiting_for_window"] and collector.connections[0].connected

        await async_wait_for(crypto_back_2330_waiting, 10, what="BTCUSDT reconnected, 2330 waiting for 08:30")
        venue.publish("2330", 7)
        venue.publish("BTCUSDT", 3)
        await asyncio.sleep(1.5)  # long enough for several reconnect attempts, had they been allowed
        assert not collector.connections[1].connected
        assert connections()["waiting_for_window"]["1"] > 18 * 3600 - 60  # until 08:30 tomorrow

        offset[0] = taipei_ns(2026, 11, 21, 8, 30) - time.time_ns()  # the window opens

        async def both_connected() -> bool:
            return connections()["connected"] == 2 and connections()["waiting_for_window"] == {}

        async def all_stored() -> bool:
            return complete(client, venue, "2330") and complete(client, venue, "BTCUSDT")

        await async_wait_for(both_connected, 10, what="2330 reconnected once its window opened")
        await async_wait_for(all_stored, 10, what="what 2330 traded while away is backfilled")
    finally:
        collector.stop()
        assert await asyncio.wait_for(task, 5) == 0
