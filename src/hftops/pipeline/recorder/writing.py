"""The writer task (batch -> jobs -> database or WAL -> dead letters -> ack) and the WAL replayer task."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog
from redis.exceptions import RedisError

from hftops.pipeline.recorder import deadletters
from hftops.pipeline.recorder.batches import Batch, build_jobs
from hftops.pipeline.recorder.consumer import StreamConsumer
from hftops.pipeline.recorder.deadletters import DeadLetterPublisher
from hftops.pipeline.recorder.flags import RunFlags, redis_failed
from hftops.pipeline.recorder.metrics import RecorderMetrics
from hftops.pipeline.recorder.storage import GuardActive, Storage
from hftops.pipeline.recorder.wal import WalWriteError
from hftops.store.errors import StoreError


class BatchWriter:
    def __init__(
        self,
        storage: Storage,
        consumer: StreamConsumer,
        publisher: DeadLetterPublisher,
        *,
        queue: asyncio.Queue[Batch | None],
        metrics: RecorderMetrics,
        flags: RunFlags,
        log: structlog.stdlib.BoundLogger,
        redis_url: str,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.storage = storage
        self.consumer = consumer
        self.publisher = publisher
        self.queue = queue
        self.metrics = metrics
        self.flags = flags
        self.log = log
        self.redis_url = redis_url
        self.wall_ns = wall_ns

    async def run(self) -> None:
        while True:
            batch = await self.queue.get()
            if batch is None:
                return
            await self.handle(batch)

    async def handle(self, batch: Batch) -> None:
        """Make the batch durable and ack it; retried with the same jobs (same bytes, same tokens)."""
        while not self.flags.abandon:
            try:
                await self._attempt(batch)
                return
            except GuardActive:
                await asyncio.sleep(0.1)
            except WalWriteError as exc:
                self.log.error("wal_write_failed", error=str(exc), action="holding the batch; not acking")
                await asyncio.sleep(1.0)
            except (RedisError, OSError) as exc:
                await redis_failed(self.flags, self.metrics, self.log, self.redis_url, "write", exc)
            if self.flags.stopping:
                # Stopping while the batch cannot be made durable: leave it unacked; it is re-read at start.
                self.log.warning("batch_left_pending", entries=len(batch), reason="stopping while not durable")
                return

    async def _attempt(self, batch: Batch) -> None:
        if batch.jobs is None:
            jobs, stats = build_jobs(
                batch,
                self.storage.registry,
                self.storage.dlq_wal_ids,
                self.wall_ns() // 1000,
                self.storage.events.keys,
            )
            batch.jobs = jobs
            for table, n in stats.duplicates.items():
                self.metrics.duplicate(table, n)
            self.metrics.tallies.header_mismatches += stats.header_mismatches
            self.metrics.tallies.empty_entries += batch.empties()
        walled_before = self.metrics.tallies.rows_to_wal.total()
        # Tables insert side by side (chDB releases the GIL); each job keeps its own state on retry.
        results = await asyncio.gather(*(self.storage.persist(job) for job in batch.jobs), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        outcome = "wal" if self.metrics.tallies.rows_to_wal.total() > walled_before else "inserted"
        if not batch.poison_published:
            await self._dead_letter_poison(batch)
            batch.poison_published = True
        acked = await self.consumer.ack(batch.acks())
        self.metrics.entries_acked.inc(acked)
        self.metrics.tallies.entries_acked += acked
        self.metrics.batch(outcome if batch.jobs else "empty")

    async def _dead_letter_poison(self, batch: Batch) -> None:
        letters = []
        now = self.wall_ns()
        for entry in batch.poison():
            self.log.warning(
                "poison_entry",
                stream=entry.stream,
                entry_id=entry.entry_id.decode(),
                reason=entry.reason,
                detail=entry.detail,
            )
            letters.extend(deadletters.poison_letters(entry, now))
        await self.publisher.publish(letters)
        for letter in letters:
            self.metrics.dead_lettered(letter.reason)


class WalReplayer:
    """While the database is healthy and the WAL holds records: seal the active segment, replay, archive."""

    def __init__(self, storage: Storage, flags: RunFlags, log: structlog.stdlib.BoundLogger) -> None:
        self.storage = storage
        self.wal = storage.wal
        self.flags = flags
        self.log = log

    async def run(self) -> None:
        while not self.flags.stopping:
            if not (self.storage.db_healthy and self.wal.segments):
                await asyncio.sleep(0.05)
                continue
            try:
                active = self.wal.active
                if active is not None and active.records:
                    await self.storage.run_wal(self.wal.seal)
                for segment in self.wal.sealed_segments():
                    if not await self.storage.replay_segment(segment, lambda: self.flags.stopping):
                        break
            except (GuardActive, WalWriteError, StoreError, RedisError, OSError) as exc:
                self.log.warning("wal_replay_paused", error=str(exc), retry_in_s=1.0)
                await asyncio.sleep(1.0)
