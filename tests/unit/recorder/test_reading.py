"""The reader's batches on real valkey: book tickers and everything else ride in two lanes whose batches close
at least half a window apart, every entry lands in exactly one batch, and a full batch never waits."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import structlog

from hftops.config.schema import RecorderConfig
from hftops.model.market import BATCH_ENCODER, BboRow, TradeRow
from hftops.model.streams import DLQ_STREAM
from hftops.pipeline.recorder.batches import Batch
from hftops.pipeline.recorder.consumer import StreamConsumer
from hftops.pipeline.recorder.flags import RunFlags
from hftops.pipeline.recorder.guard import DiskGuard
from hftops.pipeline.recorder.metrics import RecorderMetrics
from hftops.pipeline.recorder.reading import EntryReader

TRADES = ["md:sim:trade:BTCUSDT", "md:sim:trade:ETHUSDT"]
BOOKS = ["md:sim:bbo:BTCUSDT", "md:sim:bbo:ETHUSDT"]


class StampedQueue(asyncio.Queue[Batch | None]):
    """Records when each batch was handed over (the reader's close time), whoever takes it and when."""

    def __init__(self) -> None:
        super().__init__(maxsize=1)
        self.closed_at: list[float] = []

    def put_nowait(self, item: Batch | None) -> None:
        if item is not None:
            self.closed_at.append(time.monotonic())
        super().put_nowait(item)


def entry_fields(stream: str, first_id: int, n: int) -> dict[Any, Any]:
    ids = range(first_id, first_id + n)
    if ":bbo:" in stream:
        data = BATCH_ENCODER.encode([BboRow(i, "1", "1", "2", "2", 1, 1, 1) for i in ids])
    else:
        data = BATCH_ENCODER.encode([TradeRow(i, "1", "1", False, 1, 1, 1, i, i) for i in ids])
    return {b"v": b"1", b"n": b"%d" % n, b"lo": b"%d" % ids[0], b"hi": b"%d" % ids[-1], b"d": data, b"t": b"1"}


@dataclass
class Running:
    reader: EntryReader
    queue: StampedQueue
    flags: RunFlags
    task: asyncio.Task[None]


@contextlib.asynccontextmanager
async def reading(url: str, tmp_path: Path, streams: list[str], **settings: Any) -> AsyncIterator[Running]:
    """A reader task on `streams`; on the way out, also when a test fails, it is cancelled if still running
    (nothing takes its batches then) and must end at once."""
    redis = aioredis.Redis.from_url(url)
    consumer = StreamConsumer(redis, [*streams, DLQ_STREAM], "recorder", "r0", read_count=512, claim_idle_ms=60_000)
    await consumer.ensure_groups()
    queue = StampedQueue()
    flags = RunFlags()
    reader = EntryReader(
        consumer,
        RecorderConfig(**settings),
        queue=queue,
        metrics=RecorderMetrics(),
        guard=DiskGuard(tmp_path, 1 << 30, 0, 0.1, free_bytes=lambda: 1 << 40),
        flags=flags,
        log=structlog.get_logger("test"),
        redis_url=url,
        max_rows_per_entry=256,
    )
    task = asyncio.create_task(reader.run())
    try:
        yield Running(reader, queue, flags, task)
    finally:
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5)
        await redis.aclose()
        assert task in done, "the reader did not end when cancelled"


async def drain(queue: StampedQueue, batches: list[Batch], until: int, timeout_s: float = 20.0) -> None:
    async def take() -> None:
        while len(batches) < until:
            batch = await queue.get()
            assert batch is not None, "the reader ended early"
            batches.append(batch)

    await asyncio.wait_for(take(), timeout_s)


async def stop(running: Running, batches: list[Batch], read: int) -> None:
    """Once the reader has read `read` entries (the rest would stay in Redis): stop it, take what it hands over."""

    async def take_all() -> None:
        while (batch := await running.queue.get()) is not None:
            batches.append(batch)  # the open batches are handed over on stop, then None

    async def all_read() -> None:
        while running.reader.metrics.tallies.entries_read < read:
            await asyncio.sleep(0.01)

    taker = asyncio.create_task(take_all())
    await asyncio.wait_for(all_read(), 10)
    running.flags.stopping = True
    await asyncio.wait_for(taker, 10)
    await running.task


async def test_book_tickers_and_trades_close_in_staggered_lanes_and_lose_nothing(valkey: Any, tmp_path: Path) -> None:
    window_ms = 120.0
    written: set[tuple[str, Any]] = set()
    batches: list[Batch] = []
    async with (
        aioredis.Redis.from_url(valkey.url) as writer,
        reading(valkey.url, tmp_path, TRADES + BOOKS, batch_max_ms=window_ms) as running,
    ):

        async def feed() -> None:
            next_id = 1
            for _ in range(120):  # a live feed: one entry per stream every few milliseconds
                for stream in TRADES + BOOKS:
                    written.add((stream, await writer.xadd(stream, entry_fields(stream, next_id, 3))))
                next_id += 3
                await asyncio.sleep(0.004)

        async with asyncio.TaskGroup() as group:  # a feed, and a writer that keeps up
            group.create_task(feed())
            group.create_task(drain(running.queue, batches, until=6))
        await stop(running, batches, read=len(written))

    lanes = []
    for batch in batches:
        streams = {e.stream for e in batch.entries}
        assert streams <= set(BOOKS) or not streams & set(BOOKS), f"a batch mixes the lanes: {sorted(streams)}"
        lanes.append("bbo" if streams <= set(BOOKS) else "rest")
    read = [(e.stream, e.entry_id) for b in batches for e in b.entries]
    assert len(read) == len(set(read)), "an entry was batched twice"
    assert set(read) == written
    # Closes by the window (not on stop) are at least half a window apart: the two lanes take turns.
    gaps = [b - a for a, b in zip(running.queue.closed_at, running.queue.closed_at[1:6], strict=False)]
    assert min(gaps) >= window_ms / 2 / 1000 * 0.99, f"closes {gaps} closer than half of {window_ms} ms"
    assert lanes[:6].count("bbo") >= 2 and lanes[:6].count("rest") >= 2, lanes


async def test_a_full_batch_closes_at_once_whatever_the_other_lane_did(valkey: Any, tmp_path: Path) -> None:
    batches: list[Batch] = []
    async with (
        aioredis.Redis.from_url(valkey.url) as writer,
        reading(valkey.url, tmp_path, TRADES + BOOKS, batch_max_ms=30_000, batch_max_rows=30) as running,
    ):
        for i in range(8):  # a backlog: 8 x 10 rows in each lane, written at once
            for stream in (TRADES[0], BOOKS[0]):
                await writer.xadd(stream, entry_fields(stream, 1 + 10 * i, 10))
        started = time.monotonic()
        await drain(running.queue, batches, until=4, timeout_s=15)
        assert time.monotonic() - started < 10, "full batches waited for the 30 s window"
        stopping = time.monotonic()
        await stop(running, batches, read=16)
        # The read blocks at most READ_BLOCK_MS: a stop is not held up by the open batches' 30 s window.
        assert time.monotonic() - stopping < 10, "the stop waited for the window"
    assert all(b.rows >= 30 for b in batches[:4])
    assert sum(b.rows for b in batches) == 160


async def test_one_lane_alone_is_not_held_back(valkey: Any, tmp_path: Path) -> None:
    """Without book tickers, trades close every window: the spacing only staggers two lanes."""
    window_ms = 100.0
    batches: list[Batch] = []
    async with (
        aioredis.Redis.from_url(valkey.url) as writer,
        reading(valkey.url, tmp_path, TRADES, batch_max_ms=window_ms) as running,
    ):
        fed = asyncio.Event()

        async def feed() -> None:
            next_id = 1
            while not fed.is_set():
                await writer.xadd(TRADES[0], entry_fields(TRADES[0], next_id, 2))
                next_id += 2
                await asyncio.sleep(0.005)

        async def take() -> None:
            await drain(running.queue, batches, until=5)
            fed.set()

        async with asyncio.TaskGroup() as group:  # the feed ends before the connection closes, also on a failure
            group.create_task(feed())
            group.create_task(take())
        await stop(running, batches, read=0)
    assert all({e.stream for e in b.entries} == {TRADES[0]} for b in batches)
    gaps = [b - a for a, b in zip(running.queue.closed_at, running.queue.closed_at[1:5], strict=False)]
    assert all(gap >= window_ms / 1000 * 0.99 for gap in gaps), gaps


async def test_a_cancelled_reader_ends_at_once_though_nothing_takes_its_batches(valkey: Any, tmp_path: Path) -> None:
    """The stop deadline passed, or the loop is closing: the reader is blocked handing over a batch to a full
    queue. Cancelled, it must end without waiting on the queue again (its entries stay pending in Redis)."""
    async with (
        aioredis.Redis.from_url(valkey.url) as writer,
        reading(valkey.url, tmp_path, TRADES, batch_max_ms=20, batch_max_rows=10) as running,
    ):
        for i in range(4):  # four full batches: one fills the queue, the reader blocks on the next
            await writer.xadd(TRADES[0], entry_fields(TRADES[0], 1 + 10 * i, 10))

        async def blocked() -> None:
            while not (running.queue.full() and running.reader.metrics.tallies.entries_read >= 2):
                await asyncio.sleep(0.01)

        await asyncio.wait_for(blocked(), 10)
        running.task.cancel()
        done, _ = await asyncio.wait({running.task}, timeout=2)
        assert running.task in done, "the cancelled reader waited on the full queue"
        assert running.task.cancelled()
