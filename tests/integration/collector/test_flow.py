"""The collector against a small Binance-format venue and a real Valkey: batching, gaps, backfill, DLQ."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from hftops.config import Config
from hftops.model.market import DeadLetter
from hftops.model.streams import MdKind
from hftops.pipeline.collector.reasons import RejectReason
from tests.conftest import ValkeyHandle
from tests.integration.collector.fake_venue import FakeVenue
from tests.integration.collector.helpers import (
    bbo_ids,
    complete,
    cursor,
    dead_letters,
    entries,
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


def config_for(tmp_path: Path, venue: FakeVenue, valkey: ValkeyHandle, **collector: object) -> Config:
    return make_config(tmp_path, venue.ws_url, venue.rest_url, valkey.url, venue.symbols, **collector)


async def test_entries_are_batches_flushed_by_size_then_by_time(
    tmp_path: Path, venue: FakeVenue, valkey: ValkeyHandle
) -> None:
    client = valkey.client()
    async with running_collector(config_for(tmp_path, venue, valkey, flush_max=10, flush_ms=400)) as c:
        await wait_ready(c)
        venue.publish("BTCUSDT", 25, bbo=False)

        async def two_full_entries() -> bool:
            return len(entries(client, "BTCUSDT")) >= 2

        await async_wait_for(two_full_entries, 2, what="size-triggered flushes")
        first = entries(client, "BTCUSDT")
        assert len(first) == 2, "the partial batch must wait for flush_ms"
        assert [int(f[b"n"]) for _, f in first] == [10, 10]
        _, fields = first[0]
        assert set(fields) == {b"v", b"n", b"lo", b"hi", b"d", b"t"} and fields[b"v"] == b"1"
        assert (int(fields[b"lo"]), int(fields[b"hi"])) == (1, 10)

        async def all_25() -> bool:
            return trade_ids(client, "BTCUSDT") == list(range(1, 26))

        await async_wait_for(all_25, 3, what="time-triggered flush of the last 5")
        assert [int(f[b"n"]) for _, f in entries(client, "BTCUSDT")] == [10, 10, 5]
        assert cursor(client)["BTCUSDT"] == 25
        assert c.totals.entries == 3 and c.totals.forwarded == 25


async def test_time_flush_batches_one_entry_per_symbol_and_kind(
    tmp_path: Path, venue: FakeVenue, valkey: ValkeyHandle
) -> None:
    client = valkey.client()
    async with running_collector(config_for(tmp_path, venue, valkey, flush_max=1000, flush_ms=100)) as c:
        await wait_ready(c)
        venue.publish("BTCUSDT", 7)
        venue.publish("ETHUSDT", 3)

        async def flushed() -> bool:
            return all(complete(client, venue, s) for s in venue.symbols) and len(bbo_ids(client, "ETHUSDT")) == 3

        await async_wait_for(flushed, 3)
        assert len(entries(client, "BTCUSDT")) == 1 and len(entries(client, "ETHUSDT")) == 1
        assert bbo_ids(client, "BTCUSDT") == list(range(1, 8))
        assert len(entries(client, "BTCUSDT", MdKind.BBO)) == 1
        stats = json.loads(client.hget("ops:stats", "collector") or b"{}") or c.snapshot()
        assert stats["component"] == "collector"


async def test_a_lone_message_after_a_quiet_spell_is_flushed_by_time(
    tmp_path: Path, venue: FakeVenue, valkey: ValkeyHandle
) -> None:
    """No later frame finds it due: the flusher's own timer must take it, armed by the frame that started it."""
    client = valkey.client()
    async with running_collector(config_for(tmp_path, venue, valkey, flush_max=1000, flush_ms=20)) as c:
        await wait_ready(c)
        venue.publish("BTCUSDT", 3, bbo=False)

        async def stored(n: int) -> bool:
            return trade_ids(client, "BTCUSDT") == list(range(1, n + 1)) and c.ingest.held == 0

        await async_wait_for(lambda: stored(3), 3, what="the first three trades")
        for n in (4, 5):  # each alone, after the flusher has gone idle with nothing held
            venue.publish("BTCUSDT", 1, bbo=False)
            await async_wait_for(lambda n=n: stored(n), 2, what=f"lone trade {n} flushed by flush_ms alone")
        assert [int(f[b"n"]) for _, f in entries(client, "BTCUSDT")][-2:] == [1, 1]


async def test_skipped_ids_are_detected_and_backfilled_from_rest(
    tmp_path: Path, venue: FakeVenue, valkey: ValkeyHandle
) -> None:
    client = valkey.client()
    async with running_collector(config_for(tmp_path, venue, valkey, flush_ms=5)) as c:
        await wait_ready(c)
        venue.publish("BTCUSDT", 10)
        venue.publish("BTCUSDT", 2500, skip_wire=2400, bbo=False)  # a gap of 2400: three REST pages
        venue.publish("ETHUSDT", 5, skip_wire=1)

        async def whole() -> bool:
            return all(complete(client, venue, s) for s in venue.symbols)

        await async_wait_for(whole, 10, what="gap closed through REST")
        ids = trade_ids(client, "BTCUSDT")
        assert sorted(set(ids)) == list(range(1, 2511))
        assert c.totals.gaps_opened >= 2 and c.totals.backfilled >= 2401
        snap = c.snapshot()
        assert snap["symbols"]["BTCUSDT"]["open_gaps"] == [] and snap["symbols"]["BTCUSDT"]["cursor"] == 2510
        assert cursor(client) == {"BTCUSDT": 2510, "ETHUSDT": 5}

        async def healthy() -> bool:
            return all(s["healthy"] for s in c.snapshot()["symbols"].values())

        await async_wait_for(healthy, 3)


async def test_rest_failures_are_retried_until_the_gap_closes(
    tmp_path: Path, venue: FakeVenue, valkey: ValkeyHandle
) -> None:
    client = valkey.client()
    async with running_collector(config_for(tmp_path, venue, valkey)) as c:
        await wait_ready(c)
        venue.publish("ETHUSDT", 3)
        venue.rest_failures[:] = [500, 429, "malformed", 503]
        venue.publish("ETHUSDT", 20, skip_wire=10)

        async def gap_reported() -> bool:
            sym = c.snapshot()["symbols"]["ETHUSDT"]
            return bool(sym["open_gaps"]) and not sym["healthy"]

        await async_wait_for(gap_reported, 3, interval_s=0.005)

        async def whole() -> bool:
            return complete(client, venue, "ETHUSDT")

        await async_wait_for(whole, 10)
        failures = c.totals.rest_failures
        assert failures["http_5xx"] == 2 and failures["http_429"] == 1 and failures["malformed"] == 1


async def test_bad_frames_go_to_the_dead_letter_stream_with_reasons(
    tmp_path: Path, venue: FakeVenue, valkey: ValkeyHandle
) -> None:
    client = valkey.client()
    async with running_collector(config_for(tmp_path, venue, valkey, max_frame_bytes=1024)) as c:
        await wait_ready(c)
        venue.publish("BTCUSDT", 2)
        nan = venue.make_trade("BTCUSDT") | {"p": "NaN"}  # id 3 on the wire is bad; REST has the good one
        venue.send_raw(venue.trade_frame(nan))
        bad = {
            RejectReason.BAD_JSON: b"{not json",
            RejectReason.BAD_PRICE: venue.trade_frame({**venue.trades["ETHUSDT"][0], "p": "-1"})
            if venue.trades["ETHUSDT"]
            else None,
            RejectReason.UNKNOWN_SYMBOL: b'{"stream":"dogeusdt@aggTrade","data":{}}',
            RejectReason.BAD_EVENT: b'{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade"}}',
            RejectReason.OVERSIZED: b'{"stream":"btcusdt@aggTrade","data":{"pad":"' + b"x" * 2000 + b'"}}',
        }
        for payload in bad.values():
            if payload is not None:
                venue.send_raw(payload)
        venue.publish("BTCUSDT", 2)

        async def all_there() -> bool:
            return len(dead_letters(client)) >= 5 and complete(client, venue, "BTCUSDT")

        await async_wait_for(all_there, 5)
        letters = dead_letters(client)
        reasons = sorted(fields[b"reason"].decode() for fields, _ in letters)
        assert reasons == sorted(["bad_price", "bad_json", "unknown_symbol", "bad_event", "oversized"])
        by_reason = {letter.reason: (fields, letter) for fields, letter in letters}
        fields, letter = by_reason["bad_price"]
        assert isinstance(letter, DeadLetter) and fields[b"source"] == b"collector"
        assert letter.ref_id == 3 and letter.symbol == "BTCUSDT" and letter.kind == "trade"
        assert msgspec.json.decode(letter.payload)["data"]["p"] == "NaN"
        assert "price" in letter.detail and letter.time_ns > 0 and letter.venue == "sim"
        assert c.totals.dlq == {
            "bad_price": 1,
            "bad_json": 1,
            "unknown_symbol": 1,
            "bad_event": 1,
            "oversized": 1,
        }
        assert sorted(set(trade_ids(client, "BTCUSDT"))) == [1, 2, 3, 4, 5]  # 3 came back good from REST


async def test_duplicates_are_skipped_and_counted(tmp_path: Path, venue: FakeVenue, valkey: ValkeyHandle) -> None:
    client = valkey.client()
    async with running_collector(config_for(tmp_path, venue, valkey)) as c:
        await wait_ready(c)
        venue.publish("BTCUSDT", 5, bbo=False)
        for trade in venue.trades["BTCUSDT"][:3]:
            venue.send_raw(venue.trade_frame(trade))
        venue.publish("BTCUSDT", 1, bbo=False)

        async def done() -> bool:
            return complete(client, venue, "BTCUSDT") and c.totals.duplicates == 3

        await async_wait_for(done, 3)
        assert trade_ids(client, "BTCUSDT") == [1, 2, 3, 4, 5, 6]


async def test_stop_flushes_what_is_held_and_writes_the_cursor(
    tmp_path: Path, venue: FakeVenue, valkey: ValkeyHandle
) -> None:
    client = valkey.client()
    async with running_collector(config_for(tmp_path, venue, valkey, flush_ms=1000, flush_max=100_000)) as c:
        await wait_ready(c)
        venue.publish("BTCUSDT", 40)
        venue.publish("ETHUSDT", 4)

        async def held() -> bool:
            return c.ingest.held == 88

        await async_wait_for(held, 3)
        assert entries(client, "BTCUSDT") == []
    assert trade_ids(client, "BTCUSDT") == list(range(1, 41)) and bbo_ids(client, "ETHUSDT") == [1, 2, 3, 4]
    assert cursor(client) == {"BTCUSDT": 40, "ETHUSDT": 4}


async def test_many_symbols_spread_over_connections(tmp_path: Path, valkey: ValkeyHandle) -> None:
    symbols = tuple(f"S{i:03d}USDT" for i in range(120))  # 240 streams: two connections
    venue = await FakeVenue(symbols).start()
    client = valkey.client()
    try:
        async with running_collector(make_config(tmp_path, venue.ws_url, venue.rest_url, valkey.url, symbols)) as c:
            await wait_ready(c)
            assert len(c.connections) == 2 and venue.connects == 2
            for symbol in symbols:
                venue.publish(symbol, 2)

            async def whole() -> bool:
                return len(cursor(client)) == 120 and set(cursor(client).values()) == {2}

            await async_wait_for(whole, 5)
    finally:
        await venue.stop()


async def test_a_frame_beyond_the_websocket_limit_is_dead_lettered_and_the_feed_resumes(
    tmp_path: Path, venue: FakeVenue, valkey: ValkeyHandle
) -> None:
    client = valkey.client()
    async with running_collector(config_for(tmp_path, venue, valkey, max_frame_bytes=1024)) as c:
        await wait_ready(c)
        venue.publish("BTCUSDT", 3)
        venue.send_raw(b"x" * 20_000)  # above 16 x max_frame_bytes: the WebSocket layer closes with 1009
        venue.publish("BTCUSDT", 3)

        async def recovered() -> bool:
            return complete(client, venue, "BTCUSDT") and c.totals.reconnects == 1

        await async_wait_for(recovered, 5)
        ((_fields, letter),) = dead_letters(client)
        assert letter.reason == "oversized" and "1024" not in letter.detail and "16384" in letter.detail


async def test_a_fragmented_message_is_assembled_and_one_above_the_limit_is_refused(
    tmp_path: Path, venue: FakeVenue, valkey: ValkeyHandle
) -> None:
    """Binance sends whole frames, but the protocol allows continuations: they are joined (up to the same limit
    as a single frame) before decoding."""
    client = valkey.client()
    async with running_collector(config_for(tmp_path, venue, valkey, max_frame_bytes=1024)) as c:
        await wait_ready(c)
        venue.publish("BTCUSDT", 1, bbo=False)
        (trade,) = [venue.make_trade("BTCUSDT")]
        venue.send_fragmented(venue.trade_frame(trade), parts=4)
        venue.publish("BTCUSDT", 1, bbo=False)

        async def three() -> bool:
            return trade_ids(client, "BTCUSDT") == [1, 2, 3]

        await async_wait_for(three, 5, what="the fragmented trade between two whole ones")
        assert dead_letters(client) == [] and c.totals.reconnects == 0

        venue.send_fragmented(b"y" * 20_000, parts=10)  # each frame is small; the message is above 16 x 1024
        venue.publish("BTCUSDT", 2, bbo=False)

        async def recovered() -> bool:
            return complete(client, venue, "BTCUSDT") and c.totals.reconnects == 1

        await async_wait_for(recovered, 5, what="reconnected and caught up after the refused message")
        ((_fields, letter),) = dead_letters(client)
        assert letter.reason == "oversized" and "16384" in letter.detail


async def test_a_stray_continuation_frame_is_a_protocol_error_the_collector_reconnects_and_backfills(
    tmp_path: Path, venue: FakeVenue, valkey: ValkeyHandle
) -> None:
    client = valkey.client()
    async with running_collector(config_for(tmp_path, venue, valkey)) as c:
        await wait_ready(c)
        venue.publish("BTCUSDT", 2, bbo=False)
        venue.send_continuation(b"orphan")
        venue.publish("BTCUSDT", 2, bbo=False)  # may be lost with the connection: REST has them

        async def recovered() -> bool:
            return complete(client, venue, "BTCUSDT") and c.totals.reconnects == 1

        await async_wait_for(recovered, 5, what="reconnected after the protocol error and backfilled")
        assert trade_ids(client, "BTCUSDT") == [1, 2, 3, 4]
