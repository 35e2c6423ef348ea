"""The recorder process: Redis Streams -> batches -> ClickHouse (or the WAL), exactly once.

`build_recorder(config)` is the composition root; `Recorder.run()` owns the event loop's tasks:
reader (XREADGROUP, decode, batch), writer (filter, insert or WAL, dead-letter, ack), replayer (WAL ->
database when healthy), housekeeping (probe, disk guard, trim, stats) and the watchdog.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psutil
import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from hftops.bus.client import async_client
from hftops.config.paths import DataPaths
from hftops.config.schema import Config
from hftops.lifecycle import ComponentState, notify_ready, notify_stopping, notify_watchdog
from hftops.model.components import RECORDER
from hftops.model.streams import DLQ_STREAM, md_streams
from hftops.model.tables import DEAD_LETTER_REPLAYS, DEAD_LETTERS
from hftops.pipeline.recorder import deadletters
from hftops.pipeline.recorder.batches import Batch, build_jobs, make_token
from hftops.pipeline.recorder.consumer import Delivered, StreamConsumer, trim_acknowledged
from hftops.pipeline.recorder.deadletters import DeadLetterPublisher
from hftops.pipeline.recorder.entries import Entry, PoisonEntry, decode_entry, header_ids
from hftops.pipeline.recorder.guard import DiskGuard
from hftops.pipeline.recorder.http import EmbeddedServer, bind_socket, create_app, make_server
from hftops.pipeline.recorder.idset import IdRegistry, Key
from hftops.pipeline.recorder.metrics import RecorderMetrics
from hftops.pipeline.recorder.storage import GuardActive, Storage
from hftops.pipeline.recorder.wal import Wal, WalWriteError
from hftops.store.backend import QueryResult, Store
from hftops.store.chdb_store import ChdbStore
from hftops.store.ddl import INSERT_COLUMNS
from hftops.store.errors import DatabaseUnavailable, StoreError
from hftops.store.factory import build_store
from hftops.store.rows import replay_mark_line
from hftops.model.streams import parse_md_stream

STATS_KEY = "ops:stats"
READ_PACING_S = 0.01
_STOP_TIMEOUT_S = 8.0


class Recorder:
    def __init__(self, config: Config, *, redis: aioredis.Redis, store: Store, wal: Wal, registry: IdRegistry,
                 storage: Storage, consumer: StreamConsumer, publisher: DeadLetterPublisher,
                 metrics: RecorderMetrics, guard: DiskGuard, executor: ThreadPoolExecutor,
                 read_executor: ThreadPoolExecutor, log: structlog.stdlib.BoundLogger,
                 wall_ns: Callable[[], int] = time.time_ns, monotonic: Callable[[], float] = time.monotonic,
                 max_rows_per_entry: int = 256) -> None:
        self.config = config
        self.settings = config.recorder
        self.redis = redis
        self.store = store
        self.wal = wal
        self.registry = registry
        self.storage = storage
        self.consumer = consumer
        self.publisher = publisher
        self.metrics = metrics
        self.guard = guard
        self.executor = executor
        self.read_executor = read_executor
        self.log = log
        self.wall_ns = wall_ns
        self.monotonic = monotonic
        self.state = ComponentState.INITIALISED
        self.redis_ok = False
        self._max_rows_per_entry = max_rows_per_entry
        self._queue: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize=1)
        self._stop = asyncio.Event()
        self._stopping = False
        self._abandon = False
        self._unacked: dict[str, list[bytes]] = {}
        self._server: EmbeddedServer | None = None
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._started_at = time.time()

    # -- lifecycle ---------------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        self.state = ComponentState.STARTING
        try:
            await self.start()
        except BaseException:
            await self._close()
            raise
        self.state = ComponentState.RUNNING
        notify_ready(f"recorder consuming {len(self.consumer.streams)} streams")
        self.log.info("recorder_ready", streams=len(self.consumer.streams), db=self.store.description,
                      db_healthy=self.storage.db_healthy, query_url=self.config.recorder_query_url, **self.wal.summary())
        await self._stop.wait()
        await self.shutdown()
        return 0

    async def start(self) -> None:
        self._tasks["watchdog"] = asyncio.create_task(self._watchdog(), name="watchdog")
        await self._open_store()
        await self.storage.recover_wal()
        if self.wal.torn_tails or self.wal.corrupt_records:
            self.log.warning("wal_recovered_with_damage", **self.wal.summary())
        if self.storage.db_healthy:
            await self.storage.load_stored()
        self.guard.update(self.wal.bytes)
        await self._ensure_groups()
        sock = bind_socket(self.settings.query_host, self.settings.query_port)
        self._server = make_server(create_app(self))
        self._tasks["http"] = asyncio.create_task(self._server.serve(sockets=[sock]), name="http")
        while not self._server.started:
            if self._tasks["http"].done():
                self._tasks["http"].result()  # raises what stopped it
                raise RuntimeError("recorder: the HTTP server exited during start")
            await asyncio.sleep(0.01)
        self._tasks["reader"] = asyncio.create_task(self._reader(), name="reader")
        self._tasks["writer"] = asyncio.create_task(self._writer(), name="writer")
        self._tasks["replayer"] = asyncio.create_task(self._replayer(), name="replayer")
        self._tasks["housekeeping"] = asyncio.create_task(self._housekeeping(), name="housekeeping")

    async def _open_store(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self.executor, self.store.open)
        except DatabaseUnavailable as exc:
            if isinstance(self.store, ChdbStore):
                raise  # the embedded store is a directory on this box: not opening it is fatal
            self.storage.db_error = str(exc)
            self.log.warning("database_unavailable_at_start", error=str(exc), action="writing the WAL")
            return
        self.storage.db_healthy = True
        self.storage.db_error = ""
        self.metrics.db_healthy.set(1)

    async def _ensure_groups(self) -> None:
        delay = 0.2
        while True:
            try:
                await self.consumer.ensure_groups()
                self.redis_ok = True
                return
            except (RedisError, OSError) as exc:
                self.metrics.redis_error()
                self.log.warning("redis_unavailable_at_start", url=self.config.redis_url, error=str(exc),
                                 retry_in_s=delay)
                if self._stop.is_set():
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def shutdown(self) -> None:
        self.state = ComponentState.STOPPING
        notify_stopping()
        self._stopping = True
        self.log.info("recorder_stopping")
        deadline = self.monotonic() + _STOP_TIMEOUT_S
        for name in ("reader", "writer", "replayer"):
            task = self._tasks.get(name)
            if task is None:
                continue
            try:
                await asyncio.wait_for(asyncio.shield(task), max(0.1, deadline - self.monotonic()))
            except TimeoutError:
                self._abandon = True
                task.cancel()
                self.log.warning("recorder_stop_abandoned", task=name,
                                 note="unacked entries stay pending in Redis and are re-read at the next start")
            except Exception as exc:  # noqa: BLE001 - shutting down regardless
                self.log.error("recorder_task_failed", task=name, error=repr(exc))
        await self._publish_stats()
        await self._close()
        self.state = ComponentState.STOPPED
        self.log.info("recorder_stopped", **self.wal.summary())

    async def _close(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        for name, task in self._tasks.items():
            if name != "http" and not task.done():
                task.cancel()
        http = self._tasks.get("http")
        if http is not None:
            try:
                await asyncio.wait_for(http, 2.0)
            except (TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001
                http.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.executor.shutdown, True)
        await loop.run_in_executor(None, self.storage.wal_executor.shutdown, True)
        self.read_executor.shutdown(wait=True)
        self.wal.close()
        self.store.close()
        await self.redis.aclose()

    # -- reader ------------------------------------------------------------------------------------

    def _decode(self, delivered: Delivered, redelivered: bool) -> Entry:
        max_deliveries = self.settings.max_deliveries
        if delivered.deliveries > max_deliveries and delivered.stream != DLQ_STREAM:
            venue, kind, symbol = parse_md_stream(delivered.stream)
            return PoisonEntry(
                delivered.stream, delivered.entry_id, delivered.fields, deadletters.TOO_MANY_DELIVERIES,
                f"{delivered.stream} entry {delivered.entry_id.decode()} was delivered {delivered.deliveries} "
                f"times (recorder.max_deliveries={max_deliveries}) without being stored",
                Key(venue, kind, symbol), header_ids(delivered.fields))
        entry = decode_entry(delivered.stream, delivered.entry_id, delivered.fields, redelivered)
        rows = getattr(entry, "rows", None)
        if rows is not None and len(rows) > self._max_rows_per_entry:
            self._max_rows_per_entry = len(rows)
        return entry

    def _read_count(self, batch: Batch | None) -> int:
        remaining = self.settings.batch_max_rows - (batch.rows if batch else 0)
        per_read = self._max_rows_per_entry * max(1, len(self.consumer.streams))
        return max(1, min(self.settings.read_count, remaining // per_read + 1))

    async def _reader(self) -> None:
        batch: Batch | None = None
        batch_s = self.settings.batch_max_ms / 1000
        try:
            batch = await self._recover_pending()
            claim_every = max(1.0, self.settings.claim_idle_ms / 1000)
            next_claim = self.monotonic() + claim_every
            while not self._stopping:
                now = self.monotonic()
                if batch is not None and (batch.rows >= self.settings.batch_max_rows or now - batch.started >= batch_s):
                    await self._queue.put(batch)
                    batch = None
                    continue
                if self.guard.active:
                    await asyncio.sleep(0.05)  # stop reading: the data stays in Redis
                    continue
                try:
                    if now >= next_claim:
                        next_claim = now + claim_every
                        for delivered in await self.consumer.claim_entries():
                            batch = self._add(batch, self._decode(delivered, redelivered=True))
                    block_ms = 100 if batch is None else int((batch.started + batch_s - now) * 1000) + 1
                    count = self._read_count(batch)
                    delivered_list = await self.consumer.read_new(count, block_ms)
                    self.redis_ok = True
                except (RedisError, OSError) as exc:
                    await self._redis_failed("read", exc)
                    continue
                for delivered in delivered_list:
                    batch = self._add(batch, self._decode(delivered, redelivered=False))
                if batch is not None and not self.consumer.saturated:
                    # Not backlogged: let entries gather instead of one round trip per 2 ms collector flush.
                    pause = min(READ_PACING_S, batch.started + batch_s - self.monotonic())
                    if pause > 0:
                        await asyncio.sleep(pause)
        finally:
            if batch is not None and not self._abandon:
                await self._queue.put(batch)  # SIGTERM: finish the current batch too
            await self._queue.put(None)

    def _add(self, batch: Batch | None, entry: Entry) -> Batch:
        if batch is None:
            batch = Batch(started=self.monotonic())
        batch.add(entry)
        self.metrics.entries_read.inc()
        self.metrics.tallies.entries_read += 1
        return batch

    async def _recover_pending(self) -> Batch | None:
        """Before new data: claim what dead consumers left, then re-read this consumer's pending entries."""
        while not self._stopping:
            try:
                claimed, vanished = await self.consumer.claim_ids()
                if claimed or vanished:
                    self.log.info("claimed_pending", entries=claimed, vanished=vanished,
                                  idle_ms=self.settings.claim_idle_ms)
                batch: Batch | None = None
                pending = 0
                async for chunk in self.consumer.own_pending():
                    for delivered in chunk:
                        batch = self._add(batch, self._decode(delivered, redelivered=True))
                        pending += 1
                    if batch is not None and batch.rows >= self.settings.batch_max_rows:
                        await self._queue.put(batch)
                        batch = None
                if pending:
                    self.log.info("pending_reread", entries=pending)
                return batch
            except (RedisError, OSError) as exc:
                await self._redis_failed("pending", exc)
        return None

    async def _redis_failed(self, what: str, exc: BaseException) -> None:
        self.metrics.redis_error()
        if self.redis_ok:
            self.log.warning("redis_failing", during=what, url=self.config.redis_url, error=str(exc),
                             action="retrying; unacked entries stay pending")
        self.redis_ok = False
        await asyncio.sleep(0.5)

    # -- writer ------------------------------------------------------------------------------------

    async def _writer(self) -> None:
        while True:
            batch = await self._queue.get()
            if batch is None:
                return
            await self._handle(batch)

    async def _handle(self, batch: Batch) -> None:
        while not self._abandon:
            try:
                if batch.jobs is None:
                    jobs, stats = build_jobs(batch, self.registry, self.storage.dlq_wal_ids, self.wall_ns() // 1000)
                    batch.jobs = jobs
                    for table, n in stats.duplicates.items():
                        self.metrics.duplicate(table, n)
                    self.metrics.tallies.header_mismatches += stats.header_mismatches
                    self.metrics.tallies.empty_entries += batch.empties()
                walled_before = self.metrics.tallies.rows_to_wal.total()
                # Tables insert side by side (chDB releases the GIL); each job keeps its own state on retry.
                results = await asyncio.gather(*(self.storage.persist(job) for job in batch.jobs),
                                               return_exceptions=True)
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
                return
            except GuardActive:
                await asyncio.sleep(0.1)
            except WalWriteError as exc:
                self.log.error("wal_write_failed", error=str(exc), action="holding the batch; not acking")
                await asyncio.sleep(1.0)
            except (RedisError, OSError) as exc:
                await self._redis_failed("write", exc)

    async def _dead_letter_poison(self, batch: Batch) -> None:
        letters = []
        now = self.wall_ns()
        for entry in batch.poison():
            self.log.warning("poison_entry", stream=entry.stream, entry_id=entry.entry_id.decode(),
                             reason=entry.reason, detail=entry.detail)
            letters.extend(deadletters.poison_letters(entry, now))
        await self.publisher.publish(letters)
        for letter in letters:
            self.metrics.dead_lettered(letter.reason)

    # -- WAL replay --------------------------------------------------------------------------------

    async def _replayer(self) -> None:
        while not self._stopping:
            if not (self.storage.db_healthy and self.wal.segments):
                await asyncio.sleep(0.05)
                continue
            try:
                active = self.wal.active
                if active is not None and active.records:
                    await self.storage.run_wal(self.wal.seal)
                for segment in self.wal.sealed_segments():
                    if not await self.storage.replay_segment(segment, lambda: self._stopping):
                        break
            except (GuardActive, WalWriteError, StoreError, RedisError, OSError) as exc:
                self.log.warning("wal_replay_paused", error=str(exc), retry_in_s=1.0)
                await asyncio.sleep(1.0)

    # -- housekeeping ------------------------------------------------------------------------------

    async def _watchdog(self) -> None:
        while True:
            notify_watchdog()
            await asyncio.sleep(0.5)

    async def _housekeeping(self) -> None:
        next_probe = next_trim = next_stats = 0.0
        while not self._stopping:
            now = self.monotonic()
            if self.guard.update(self.wal.bytes):
                self.metrics.disk_guard.set(int(self.guard.active))
                if self.guard.active:
                    self.log.error("disk_guard_on", reason=self.guard.reason,
                                   action="stopped writing the WAL, acking and reading; data stays in Redis")
                else:
                    self.log.info("disk_guard_off", **self.wal.summary())
            if not self.storage.db_healthy and now >= next_probe:
                next_probe = now + self.settings.db_retry_s
                await self.storage.probe()
            if now >= next_trim:
                next_trim = now + self.settings.trim_interval_s
                await self._trim()
            if now >= next_stats:
                next_stats = now + 1.0
                await self._publish_stats()
            await asyncio.sleep(0.05)

    async def _trim(self) -> None:
        try:
            for stream in self.consumer.streams:
                trimmed = await trim_acknowledged(self.redis, stream)
                if trimmed:
                    self.metrics.trimmed.inc(trimmed)
                    self.metrics.tallies.trimmed_entries += trimmed
        except (RedisError, OSError) as exc:
            self.metrics.redis_error()
            self.log.debug("trim_skipped", error=str(exc))

    async def _publish_stats(self) -> None:
        try:
            await asyncio.wait_for(self.redis.hset(STATS_KEY, RECORDER, json.dumps(self.stats())), 1.0)
        except (RedisError, OSError, TimeoutError):
            pass  # best effort: Redis being down is reported by the reader

    # -- views for HTTP ----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        wal = self.wal.summary()
        degraded = (not self.storage.db_healthy or self.guard.active or not self.redis_ok
                    or wal["records"] > 0 or wal["corrupt_records"] > 0)
        return {
            "status": "degraded" if degraded else "ok",
            "db": "healthy" if self.storage.db_healthy else "failing",
            "disk_guard": self.guard.active,
            "wal": {"segments": wal["segments"], "bytes": wal["bytes"], "records": wal["records"],
                    "torn_tails": wal["torn_tails"], "corrupt_records": wal["corrupt_records"]},
            "redis": "ok" if self.redis_ok else "failing",
            "state": self.state.value,
            "db_error": self.storage.db_error,
            "disk_guard_reason": self.guard.reason,
        }

    def wal_view(self) -> dict[str, Any]:
        wal = self.wal.summary()
        return {"segments": wal["segments"], "bytes": wal["bytes"], "records": wal["records"],
                "ids": self.registry.wal_ids()}

    def stats(self) -> dict[str, Any]:
        try:
            rss = psutil.Process(os.getpid()).memory_info().rss
        except psutil.Error:
            rss = -1
        return {
            "component": RECORDER, "pid": os.getpid(), "time": time.time(), "state": self.state.value,
            "uptime_s": round(time.time() - self._started_at, 1), "rss_bytes": rss,
            "db": {"healthy": self.storage.db_healthy, "backend": self.store.description,
                   "error": self.storage.db_error},
            "disk_guard": self.guard.as_dict(), "wal": self.wal.summary(), "redis_ok": self.redis_ok,
            "streams": len(self.consumer.streams), "queued_batches": self._queue.qsize(),
            "counters": self.metrics.tallies.as_dict(), "ids": self.registry.stored_summary(),
            "tm": __import__("tracemalloc").get_traced_memory(),
        }

    async def read_query(self, sql: str) -> QueryResult:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.read_executor, self.store.query, sql)

    async def mark_replayed(self, marks: list[tuple[str, int]], operator: str) -> int:
        """Record dead letters `trading dlq replay` re-injected (the recorder is the only writer)."""
        ids = [m[0] for m in marks]
        if not all(isinstance(i, str) and i.replace("-", "").isdigit() for i in ids):
            raise ValueError("every mark id must be an ops:dlq entry id like 1700000000000-0")
        if not marks:
            return 0
        now_us = self.wall_ns() // 1000
        body = b"\n".join(replay_mark_line(i, now_us, max(0, int(n)), operator) for i, n in marks)
        token = make_token(DEAD_LETTER_REPLAYS, ",".join(sorted(ids)), body)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.executor, self.store.insert, DEAD_LETTER_REPLAYS,
                                   INSERT_COLUMNS[DEAD_LETTER_REPLAYS], body, token)
        return len(marks)


def build_recorder(config: Config, *, log: structlog.stdlib.BoundLogger | None = None,
                   wall_ns: Callable[[], int] = time.time_ns, monotonic: Callable[[], float] = time.monotonic,
                   free_bytes: Callable[[], int] | None = None) -> Recorder:
    """The composition root: every object of the recorder, wired; nothing is started here."""
    paths = DataPaths(config.data_dir).ensure()
    settings = config.recorder
    log = log or structlog.get_logger(RECORDER).bind(component=RECORDER)
    metrics = RecorderMetrics()
    redis = async_client(config.redis_url)
    store = build_store(config)
    streams = [*md_streams(config.venue.name, config.venue.symbols, with_bbo=config.venue.bbo), DLQ_STREAM]
    consumer = StreamConsumer(redis, streams, settings.group, settings.consumer, read_count=settings.read_count,
                              claim_idle_ms=settings.claim_idle_ms)
    publisher = DeadLetterPublisher(redis)

    def wal_event(event: str, info: dict[str, Any]) -> None:
        log.error(event, **info) if "corrupt" in event or "quarantine" in event or "unreadable" in event \
            else log.warning(event, **info)

    wal = Wal(paths.wal, paths.wal_archive, settings.wal_segment_bytes, settings.wal_archive_max_bytes, wal_event)
    guard = DiskGuard(paths.wal, settings.wal_max_bytes, settings.disk_free_min_bytes, settings.disk_guard_hysteresis,
                      free_bytes)
    registry = IdRegistry()
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="recorder-store")
    wal_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recorder-wal")
    read_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="recorder-query")
    storage = Storage(store=store, wal=wal, registry=registry, publisher=publisher, metrics=metrics, guard=guard,
                      executor=executor, wal_executor=wal_executor, venue=config.venue.name,
                      rejected_dir=paths.dlq, wall_ns=wall_ns, log=log, replay_max_rows=int(os.environ.get('RMR', settings.batch_max_rows)))
    return Recorder(config, redis=redis, store=store, wal=wal, registry=registry, storage=storage, consumer=consumer,
                    publisher=publisher, metrics=metrics, guard=guard, executor=executor, read_executor=read_executor,
                    log=log, wall_ns=wall_ns, monotonic=monotonic, max_rows_per_entry=config.collector.flush_max)


__all__ = ["DEAD_LETTERS", "Recorder", "build_recorder"]
