"""The reader task: pending entries first (claimed and own), then XREADGROUP into bounded batches, in two lanes
(book tickers; everything else) whose batches close in turn, half a window apart."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import structlog
from redis.exceptions import RedisError

from hftops.config.schema import RecorderConfig
from hftops.model.streams import DLQ_STREAM, MdKind
from hftops.pipeline.recorder import deadletters
from hftops.pipeline.recorder.batches import Batch
from hftops.pipeline.recorder.consumer import Delivered, StreamConsumer
from hftops.pipeline.recorder.entries import Entry, PoisonEntry, decode_entry, event_label, header_ids, md_key
from hftops.pipeline.recorder.event_streams import is_event_stream
from hftops.pipeline.recorder.flags import RunFlags, redis_failed
from hftops.pipeline.recorder.guard import DiskGuard
from hftops.pipeline.recorder.metrics import RecorderMetrics

READ_PACING_S = 0.01  # not backlogged: let entries gather instead of one round trip per 2 ms collector flush
READ_BLOCK_MS = 100
BBO_LANE = 1


def _is_bbo_stream(stream: str) -> bool:
    key = None if stream == DLQ_STREAM else md_key(stream)
    return key is not None and key.kind is MdKind.BBO


class EntryReader:
    def __init__(
        self,
        consumer: StreamConsumer,
        settings: RecorderConfig,
        *,
        queue: asyncio.Queue[Batch | None],
        metrics: RecorderMetrics,
        guard: DiskGuard,
        flags: RunFlags,
        log: structlog.stdlib.BoundLogger,
        redis_url: str,
        max_rows_per_entry: int,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.consumer = consumer
        self.settings = settings
        self.queue = queue
        self.metrics = metrics
        self.guard = guard
        self.flags = flags
        self.log = log
        self.redis_url = redis_url
        self.monotonic = monotonic
        # Rows in the largest entry of late (at first the collector's flush_max): it sizes COUNT so one read
        # of a backlog cannot pull far more than batch_max_rows rows into memory. It halves with every read
        # that brings only smaller entries, down to a quarter of flush_max (so a backlog of full entries after
        # small ones overshoots at most 4x, once): held at flush_max, a live feed of 2 ms entries was read 4
        # entries per stream at a time, and at 20k msg/s the recorder fell seconds behind.
        self.max_rows_per_entry = max_rows_per_entry
        self._rows_floor = max(1, max_rows_per_entry // 4)
        self._largest_in_read = 0
        # Event streams carry one event per entry: only the market-data streams size a read.
        self.md_stream_count = max(1, sum(1 for s in consumer.streams if not is_event_stream(s)))
        # Two lanes, each its own batches: book tickers, and everything else (trades, events, dead letters).
        # chDB runs one insert at a time, so one batch of both tables made the second insert wait for the
        # first; staggered half a window apart, each table's insert runs alone and a row waits for one.
        self._lane_of = {s: BBO_LANE for s in consumer.streams if _is_bbo_stream(s)}
        self._lanes: list[Batch | None] = [None, None]
        self._last_close = float("-inf")

    async def run(self) -> None:
        batch_s = self.settings.batch_max_ms / 1000
        cancelled = False
        try:
            await self._recover_pending()
            claim_every = max(1.0, self.settings.claim_idle_ms / 1000)
            next_claim = self.monotonic() + claim_every
            while not self.flags.stopping:
                now = self.monotonic()
                due = self._due_lane(now, batch_s)
                if due is not None:
                    batch, self._lanes[due] = self._lanes[due], None
                    self._last_close = now
                    await self.queue.put(batch)
                    continue
                if self.guard.active:
                    await asyncio.sleep(0.05)  # stop reading: the data stays in Redis
                    continue
                try:
                    if now >= next_claim:
                        next_claim = now + claim_every
                        for delivered in await self.consumer.claim_entries():
                            self._add_to_lane(self._decode(delivered, redelivered=True))
                    # At most READ_BLOCK_MS, so a stop request is seen promptly whatever the window.
                    next_due = self._next_due(batch_s)
                    until_due = READ_BLOCK_MS if next_due is None else max(0, int((next_due - now) * 1000)) + 1
                    block_ms = min(READ_BLOCK_MS, until_due)
                    delivered_list = await self.consumer.read_new(self._read_count(), block_ms)
                    self.flags.redis_ok = True
                except (RedisError, OSError) as exc:
                    await redis_failed(self.flags, self.metrics, self.log, self.redis_url, "read", exc)
                    continue
                self._largest_in_read = 0
                for delivered in delivered_list:
                    self._add_to_lane(self._decode(delivered, redelivered=False))
                if delivered_list:
                    self.max_rows_per_entry = max(self._largest_in_read, self.max_rows_per_entry // 2, self._rows_floor)
                next_due = self._next_due(batch_s)
                if next_due is not None and not self.consumer.saturated:
                    pause = min(READ_PACING_S, next_due - self.monotonic())
                    if pause > 0:
                        await asyncio.sleep(pause)
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            await self._hand_over(cancelled)

    async def _hand_over(self, cancelled: bool) -> None:
        """On a stop, the open batches go to the writer too, then None. Cancelled (the stop deadline passed, or
        the loop is closing), nothing is awaited: a wait on a full queue would swallow the cancel and hang the
        shutdown. Nothing is lost either way: an entry is acked only once stored."""
        lanes, self._lanes = self._lanes, [None, None]
        if cancelled:
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(None)
            return
        for batch in lanes:
            if batch is not None and not self.flags.abandon:
                await self.queue.put(batch)  # SIGTERM: finish the current batches too
        await self.queue.put(None)

    # -- lanes -----------------------------------------------------------------------------------------

    def _due_lane(self, now: float, batch_s: float) -> int | None:
        """The lane whose batch must close now: a full one at once; else the oldest one whose window has
        passed, but not within half a window of the last close (that is what staggers the lanes)."""
        spaced = now - self._last_close >= batch_s / 2
        due: int | None = None
        oldest = float("inf")
        for lane, batch in enumerate(self._lanes):
            if batch is None:
                continue
            if batch.rows >= self.settings.batch_max_rows:
                return lane
            if spaced and now - batch.started >= batch_s and batch.started < oldest:
                due, oldest = lane, batch.started
        return due

    def _next_due(self, batch_s: float) -> float | None:
        """When the next lane becomes due (None with nothing open): the read blocks and paces up to then."""
        open_ = [b.started + batch_s for b in self._lanes if b is not None]
        if not open_:
            return None
        return max(min(open_), self._last_close + batch_s / 2)

    def _add_to_lane(self, entry: Entry) -> None:
        lane = self._lane_of.get(entry.stream, 0)
        self._lanes[lane] = self._add(self._lanes[lane], entry)

    def _decode(self, delivered: Delivered, redelivered: bool) -> Entry:
        max_deliveries = self.settings.max_deliveries
        if delivered.deliveries > max_deliveries and delivered.stream != DLQ_STREAM:
            return PoisonEntry(
                delivered.stream,
                delivered.entry_id,
                delivered.fields,
                deadletters.TOO_MANY_DELIVERIES,
                f"{delivered.stream} entry {delivered.entry_id.decode()} was delivered {delivered.deliveries} "
                f"times (recorder.max_deliveries={max_deliveries}) without being stored",
                md_key(delivered.stream),
                header_ids(delivered.fields),
                event_label(delivered.stream),
            )
        entry = decode_entry(delivered.stream, delivered.entry_id, delivered.fields, redelivered)
        rows = getattr(entry, "rows", None)
        if rows is not None and len(rows) > self._largest_in_read:
            self._largest_in_read = len(rows)
        return entry

    def _read_count(self) -> int:
        remaining = self.settings.batch_max_rows - max((b.rows for b in self._lanes if b is not None), default=0)
        per_read = self.max_rows_per_entry * self.md_stream_count
        return max(1, min(self.settings.read_count, remaining // per_read + 1))

    def _add(self, batch: Batch | None, entry: Entry) -> Batch:
        if batch is None:
            batch = Batch(started=self.monotonic())
        batch.add(entry)
        self.metrics.entries_read.inc()
        self.metrics.tallies.entries_read += 1
        return batch

    async def _recover_pending(self) -> None:
        """Before new data: claim what dead consumers left, then re-read this consumer's pending entries
        (into batches of every stream: they are due at once)."""
        while not self.flags.stopping:
            try:
                claimed, vanished = await self.consumer.claim_ids()
                if claimed or vanished:
                    self.log.info(
                        "claimed_pending", entries=claimed, vanished=vanished, idle_ms=self.settings.claim_idle_ms
                    )
                batch: Batch | None = None
                pending = 0
                async for chunk in self.consumer.own_pending():
                    for delivered in chunk:
                        batch = self._add(batch, self._decode(delivered, redelivered=True))
                        pending += 1
                    if batch is not None and batch.rows >= self.settings.batch_max_rows:
                        await self.queue.put(batch)
                        batch = None
                if pending:
                    self.log.info("pending_reread", entries=pending)
                self.flags.redis_ok = True
                if batch is not None:
                    await self.queue.put(batch)
                return
            except (RedisError, OSError) as exc:
                await redis_failed(self.flags, self.metrics, self.log, self.redis_url, "pending", exc)
