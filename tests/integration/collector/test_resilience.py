"""The collector through venue disconnects, Redis restarts (with and without data loss), Redis outages
beyond the buffer, and streams over their cap: nothing is lost, everything is counted."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import redis

from hftops.model.streams import MdKind, md_stream
from tests.conftest import ValkeyHandle
from tests.integration.collector.fake_venue import FakeVenue
from tests.integration.collector.helpers import (
    complete,
    make_config,
    running_collector,
    trade_ids,
    wait_ready,
)
from tests.support.waiting import async_wait_for


@pytest.fixture
async def venue() -> AsyncIterator[FakeVenue]:
    v = await FakeVenue().start()
    yield v
    await v.stop()


async def publish_while(venue: FakeVenue, work: asyncio.Future[object], every_s: float = 0.005) -> None:
    """Keep trading on both symbols (a trade and a quote every few ms) until `work` is done."""
    while not work.done():
        for symbol in venue.symbols:
            venue.publish(symbol, 1)
        await asyncio.sleep(every_s)
    await work


def everything_stored(client: redis.Redis, venue: FakeVenue) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return all(complete(client, venue, s) for s in venue.symbols)

    return check


async def test_dropped_connections_reconnect_and_flapping_is_reported(
    tmp_path: Path, venue: FakeVenue, valkey: ValkeyHandle
) -> None:
    client = valkey.client()
    config = make_config(tmp_path, venue.ws_url, venue.rest_url, valkey.url, venue.symbols)
    async with running_collector(config) as c:
        await wait_ready(c)
        for round_ in range(3):
            venue.publish("BTCUSDT", 20)
            venue.drop_connections()
            venue.publish("BTCUSDT", 30)  # nobody listens: only REST can bring these

            async def reconnected(expected: int = round_ + 1) -> bool:
                return c.totals.reconnects >= expected and venue.connects >= expected + 1

            await async_wait_for(reconnected, 5)
        venue.publish("ETHUSDT", 5)
        await async_wait_for(everything_stored(client, venue), 10)
        snap = c.snapshot()
        assert snap["totals"]["reconnects"] == 3 and snap["flapping"] is True
        assert snap["state"] == "degraded"


async def test_redis_restart_loses_nothing(tmp_path: Path, venue: FakeVenue, valkey: ValkeyHandle) -> None:
    client = valkey.client()
    config = make_config(tmp_path, venue.ws_url, venue.rest_url, valkey.url, venue.symbols, buffer_max=20_000)
    async with running_collector(config) as c:
        await wait_ready(c)
        venue.publish("BTCUSDT", 50)
        await publish_while(venue, asyncio.ensure_future(asyncio.to_thread(valkey.restart)))
        venue.publish("ETHUSDT", 10)
        client = valkey.client()
        await async_wait_for(everything_stored(client, venue), 10)
        assert c.totals.redis_failures >= 1


async def test_redis_that_comes_back_empty_is_refilled_from_the_venue(
    tmp_path: Path, venue: FakeVenue, valkey: ValkeyHandle
) -> None:
    config = make_config(tmp_path, venue.ws_url, venue.rest_url, valkey.url, venue.symbols, buffer_max=20_000)
    async with running_collector(config) as c:
        await wait_ready(c)
        venue.publish("BTCUSDT", 300)
        venue.publish("ETHUSDT", 30)
        await async_wait_for(everything_stored(valkey.client(), venue), 5)

        def lose_everything() -> None:  # as if the AOF had been lost with the machine
            valkey.stop(kill=True)
            shutil.rmtree(valkey.data_dir / "appendonly", ignore_errors=True)
            valkey.start()

        await publish_while(venue, asyncio.ensure_future(asyncio.to_thread(lose_everything)))
        venue.publish("BTCUSDT", 5)
        client = valkey.client()
        await async_wait_for(everything_stored(client, venue), 10)
        assert c.totals.redis_rewinds >= 1
        assert min(trade_ids(client, "BTCUSDT")) == 1


async def test_redis_outage_beyond_the_buffer_stops_reading_then_catches_up(
    tmp_path: Path, venue: FakeVenue, valkey: ValkeyHandle
) -> None:
    config = make_config(tmp_path, venue.ws_url, venue.rest_url, valkey.url, venue.symbols, buffer_max=1000)
    async with running_collector(config) as c:
        await wait_ready(c)
        venue.publish("BTCUSDT", 10)
        await async_wait_for(everything_stored(valkey.client(), venue), 5)
        await asyncio.to_thread(valkey.stop, True)
        for _ in range(30):
            venue.publish("BTCUSDT", 25)  # 50 messages a round with the quotes: 1500 > buffer_max
            venue.publish("ETHUSDT", 1)
            await asyncio.sleep(0.002)

        async def paused() -> bool:
            snap = c.snapshot()
            return snap["paused"] == ["buffer_full"] and snap["connections"]["connected"] == 0

        await async_wait_for(paused, 5)
        assert c.ingest.held <= 1000 + 1000  # bounded: buffer_max (+ at most one REST page)
        venue.publish("BTCUSDT", 100)  # while nobody reads
        await asyncio.to_thread(valkey.start)
        client = valkey.client()
        await async_wait_for(everything_stored(client, venue), 10)

        async def resumed() -> bool:
            return not c.snapshot()["paused"] and c.snapshot()["connections"]["connected"] == 1

        await async_wait_for(resumed, 5)
        assert c.totals.pauses == 1 and c.totals.reconnects == 0  # our own pause is not a venue reconnect


async def test_stream_over_cap_stops_reading_until_the_recorder_catches_up(
    tmp_path: Path, venue: FakeVenue, valkey: ValkeyHandle
) -> None:
    client = valkey.client()
    config = make_config(tmp_path, venue.ws_url, venue.rest_url, valkey.url, venue.symbols, flush_max=1)
    config = config.model_copy(update={"redis": config.redis.model_copy(update={"stream_cap_entries": 1000})})
    key = md_stream("sim", MdKind.TRADE, "BTCUSDT")
    async with running_collector(config) as c:
        await wait_ready(c)
        venue.publish("BTCUSDT", 1100, bbo=False)

        async def over_cap() -> bool:
            return "stream_cap" in c.snapshot()["paused"]

        await async_wait_for(over_cap, 5)
        assert c.snapshot()["streams_over_cap"] == {key: 1100}
        venue.publish("BTCUSDT", 50, bbo=False)  # not read while paused
        consumed = set(trade_ids(client, "BTCUSDT"))  # the "recorder" takes what is there and trims it
        client.xtrim(key, maxlen=0)

        async def caught_up() -> bool:
            return consumed | set(trade_ids(client, "BTCUSDT")) >= set(range(1, 1151))

        await async_wait_for(caught_up, 5)
        assert not c.snapshot()["paused"]
