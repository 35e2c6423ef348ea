"""The recorder process: Redis Streams -> batches -> ClickHouse (or the WAL), exactly once.

`build_recorder(config)` is the composition root. `Recorder.run()` opens the store, recovers the WAL,
loads the stored ids, creates the consumer groups, binds HTTP, reports ready, and then runs the tasks:
reader (reading.py), writer and WAL replayer (writing.py), housekeeping and watchdog (housekeeping.py).
"""

from __future__ import annotations

import asyncio
import gc
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
from hftops.embedded_http import EmbeddedServer
from hftops.lifecycle import ComponentState, notify_ready, notify_stopping
from hftops.model.components import RECORDER
from hftops.model.streams import DLQ_STREAM, md_streams
from hftops.model.tables import DEAD_LETTER_REPLAYS
from hftops.pipeline.recorder.batches import Batch, make_token
from hftops.pipeline.recorder.consumer import StreamConsumer
from hftops.pipeline.recorder.deadletters import DeadLetterPublisher
from hftops.pipeline.recorder.event_streams import event_streams
from hftops.pipeline.recorder.flags import RunFlags
from hftops.pipeline.recorder.guard import DiskGuard
from hftops.pipeline.recorder.housekeeping import Housekeeper, watchdog
from hftops.pipeline.recorder.http import bind_socket, create_app, make_server
from hftops.pipeline.recorder.idset import IdRegistry
from hftops.pipeline.recorder.metrics import RecorderMetrics
from hftops.pipeline.recorder.reading import EntryReader
from hftops.pipeline.recorder.storage import Storage
from hftops.pipeline.recorder.wal import Wal
from hftops.pipeline.recorder.writing import BatchWriter, WalReplayer
from hftops.store.backend import QueryResult, Store
from hftops.store.chdb_store import ChdbStore
from hftops.store.ddl import INSERT_COLUMNS
from hftops.store.errors import DatabaseUnavailable
from hftops.store.factory import build_store
from hftops.store.rows import replay_mark_line

# WAL records are replayed in inserts of at most this many rows: quick enough (a 30 s outage at 20,000
# msg/s replays in a few seconds) without the memory spike of 20,000-row inserts plus their merges.
REPLAY_MAX_ROWS = 5000
STOP_TIMEOUT_S = 8.0


class Recorder:
    def __init__(
        self,
        config: Config,
        *,
        redis: aioredis.Redis,
        store: Store,
        storage: Storage,
        consumer: StreamConsumer,
        publisher: DeadLetterPublisher,
        metrics: RecorderMetrics,
        guard: DiskGuard,
        read_executor: ThreadPoolExecutor,
        log: structlog.stdlib.BoundLogger,
        wall_ns: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], float] = time.monotonic,
        max_rows_per_entry: int = 256,
    ) -> None:
        self.config = config
        self.settings = config.recorder
        self.redis = redis
        self.store = store
        self.storage = storage
        self.wal = storage.wal
        self.registry = storage.registry
        self.consumer = consumer
        self.metrics = metrics
        self.guard = guard
        self.read_executor = read_executor
        self.log = log
        self.wall_ns = wall_ns
        self.monotonic = monotonic
        self.state = ComponentState.INITIALISED
        self.flags = RunFlags()
        self.exit_code = 0
        queue: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize=1)  # bounded: memory does not grow
        self._queue = queue
        url = config.redis_url
        self.reader = EntryReader(
            consumer,
            self.settings,
            queue=queue,
            metrics=metrics,
            guard=guard,
            flags=self.flags,
            log=log,
            redis_url=url,
            max_rows_per_entry=max_rows_per_entry,
            monotonic=monotonic,
        )
        self.writer = BatchWriter(
            storage,
            consumer,
            publisher,
            queue=queue,
            metrics=metrics,
            flags=self.flags,
            log=log,
            redis_url=url,
            wall_ns=wall_ns,
        )
        self.replayer = WalReplayer(storage, self.flags, log)
        self.housekeeper = Housekeeper(
            redis,
            consumer.streams,
            storage,
            guard,
            self.settings,
            metrics=metrics,
            flags=self.flags,
            log=log,
            stats=self.stats,
            monotonic=monotonic,
        )
        self._stop = asyncio.Event()
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
        # Everything built so far (modules, app, clients) lives as long as the process: keep it out of the
        # collector's full passes, which otherwise stall the loop ~60 ms each at 20,000 msg/s.
        gc.collect()
        gc.freeze()
        notify_ready(f"recorder consuming {len(self.consumer.streams)} streams")
        self.log.info(
            "recorder_ready",
            streams=len(self.consumer.streams),
            db=self.store.description,
            db_healthy=self.storage.db_healthy,
            query_url=self.config.recorder_query_url,
            **self.wal.summary(),
        )
        await self._stop.wait()
        await self.shutdown()
        return self.exit_code

    async def start(self) -> None:
        self._tasks["watchdog"] = asyncio.create_task(watchdog(), name="watchdog")
        await self._open_store()
        await self.storage.recover_wal()
        if self.wal.torn_tails or self.wal.corrupt_records:
            self.log.warning("wal_recovered_with_damage", **self.wal.summary())
        if self.storage.db_healthy:
            await self.storage.load_stored()
        self.housekeeper.check_guard()
        await self._ensure_groups()
        sock = bind_socket(self.settings.query_host, self.settings.query_port)
        self._server = make_server(create_app(self))
        self._tasks["http"] = asyncio.create_task(self._server.serve(sockets=[sock]), name="http")
        while not self._server.started:
            if self._tasks["http"].done():
                self._tasks["http"].result()  # raises what stopped it
                raise RuntimeError("recorder: the HTTP server exited during start")
            await asyncio.sleep(0.01)
        for name, work in (
            ("reader", self.reader.run()),
            ("writer", self.writer.run()),
            ("replayer", self.replayer.run()),
            ("housekeeping", self.housekeeper.run()),
        ):
            self._tasks[name] = asyncio.create_task(work, name=name)
            self._tasks[name].add_done_callback(self._task_ended)

    def _task_ended(self, task: asyncio.Task[Any]) -> None:
        """A worker task only ends when stopping; anything else is a bug: fail loudly and let the supervisor
        restart the recorder (unacked entries are re-read, the WAL is recovered)."""
        if self.flags.stopping or task.cancelled():
            return
        error = task.exception()
        self.log.error(
            "recorder_task_crashed", task=task.get_name(), error=repr(error), exc_info=error if error else None
        )
        self.exit_code = 1
        self.request_stop()

    async def _open_store(self) -> None:
        try:
            await self.storage.run_db(self.store.open)
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
                self.flags.redis_ok = True
                return
            except (RedisError, OSError) as exc:
                self.metrics.redis_error()
                self.log.warning(
                    "redis_unavailable_at_start", url=self.config.redis_url, error=str(exc), retry_in_s=delay
                )
                if self._stop.is_set():
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def shutdown(self) -> None:
        """Finish the batch in hand (database or WAL) and ack it; anything unfinished stays pending."""
        self.state = ComponentState.STOPPING
        notify_stopping()
        self.flags.stopping = True
        self.log.info("recorder_stopping")
        deadline = self.monotonic() + STOP_TIMEOUT_S
        for name in ("reader", "writer", "replayer"):
            task = self._tasks.get(name)
            if task is None:
                continue
            try:
                await asyncio.wait_for(asyncio.shield(task), max(0.1, deadline - self.monotonic()))
            except TimeoutError:
                self.flags.abandon = True
                task.cancel()
                self.log.warning(
                    "recorder_stop_abandoned",
                    task=name,
                    note="unacked entries stay pending in Redis and are re-read at the next start",
                )
            except Exception as exc:
                self.log.error("recorder_task_failed", task=name, error=repr(exc))
        await self.housekeeper.publish_stats()
        await self._close()
        self.state = ComponentState.STOPPED
        self.log.info("recorder_stopped", **self.wal.summary())

    async def _close(self) -> None:
        if self._server is not None:
            self._server.request_exit()
        for name, task in self._tasks.items():
            if name != "http" and not task.done():
                task.cancel()
        http = self._tasks.get("http")
        if http is not None:
            try:
                await asyncio.wait_for(http, 2.0)
            except (TimeoutError, asyncio.CancelledError, Exception):
                http.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.storage.executor.shutdown, True)
        await loop.run_in_executor(None, self.storage.wal_executor.shutdown, True)
        self.read_executor.shutdown(wait=True)
        self.wal.close()
        self.store.close()
        await self.redis.aclose()

    # -- views for HTTP ----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        wal = self.wal.summary()
        degraded = (
            not self.storage.db_healthy
            or self.guard.active
            or not self.flags.redis_ok
            or wal["records"] > 0
            or wal["corrupt_records"] > 0
        )
        return {
            "status": "degraded" if degraded else "ok",
            "db": "healthy" if self.storage.db_healthy else "failing",
            "disk_guard": self.guard.active,
            "wal": {k: wal[k] for k in ("segments", "bytes", "records", "torn_tails", "corrupt_records")},
            "redis": "ok" if self.flags.redis_ok else "failing",
            "state": self.state.value,
            "db_error": self.storage.db_error,
            "disk_guard_reason": self.guard.reason,
        }

    def wal_view(self) -> dict[str, Any]:
        wal = self.wal.summary()
        return {
            "segments": wal["segments"],
            "bytes": wal["bytes"],
            "records": wal["records"],
            "ids": self.registry.wal_ids(),
        }

    def stats(self) -> dict[str, Any]:
        try:
            rss = psutil.Process(os.getpid()).memory_info().rss
        except psutil.Error:
            rss = -1
        return {
            "component": RECORDER,
            "pid": os.getpid(),
            "time": time.time(),
            "state": self.state.value,
            "uptime_s": round(time.time() - self._started_at, 1),
            "rss_bytes": rss,
            "db": {
                "healthy": self.storage.db_healthy,
                "backend": self.store.description,
                "error": self.storage.db_error,
            },
            "disk_guard": self.guard.as_dict(),
            "wal": self.wal.summary(),
            "redis_ok": self.flags.redis_ok,
            "streams": len(self.consumer.streams),
            "queued_batches": self._queue.qsize(),
            "counters": self.metrics.tallies.as_dict(),
            "ids": self.registry.stored_summary(),
            "event_keys": self.storage.events.keys.summary(),
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
        await self.storage.run_db(
            self.store.insert, DEAD_LETTER_REPLAYS, INSERT_COLUMNS[DEAD_LETTER_REPLAYS], body, token
        )
        return len(marks)


def build_recorder(
    config: Config,
    *,
    log: structlog.stdlib.BoundLogger | None = None,
    wall_ns: Callable[[], int] = time.time_ns,
    monotonic: Callable[[], float] = time.monotonic,
    free_bytes: Callable[[], int] | None = None,
) -> Recorder:
    """The composition root: every object of the recorder, wired; nothing is started here."""
    paths = DataPaths(config.data_dir).ensure()
    settings = config.recorder
    log = log or structlog.get_logger(RECORDER).bind(component=RECORDER)
    metrics = RecorderMetrics()
    redis = async_client(config.redis_url)
    store = build_store(config)
    streams = [
        *md_streams(config.venue.name, config.venue.symbols, with_bbo=config.venue.bbo),
        DLQ_STREAM,
        *event_streams(config.venue.name),  # the engine's and the safety layer's events (event_streams.py)
    ]
    consumer = StreamConsumer(
        redis,
        streams,
        settings.group,
        settings.consumer,
        read_count=settings.read_count,
        claim_idle_ms=settings.claim_idle_ms,
    )
    publisher = DeadLetterPublisher(redis)

    def wal_event(event: str, info: dict[str, Any]) -> None:
        loud = "corrupt" in event or "quarantine" in event or "unreadable" in event
        (log.error if loud else log.warning)(event, **info)

    wal = Wal(paths.wal, paths.wal_archive, settings.wal_segment_bytes, settings.wal_archive_max_bytes, wal_event)
    guard = DiskGuard(
        paths.wal, settings.wal_max_bytes, settings.disk_free_min_bytes, settings.disk_guard_hysteresis, free_bytes
    )
    storage = Storage(
        store=store,
        wal=wal,
        registry=IdRegistry(),
        publisher=publisher,
        metrics=metrics,
        guard=guard,
        executor=ThreadPoolExecutor(max_workers=2, thread_name_prefix="recorder-db"),
        wal_executor=ThreadPoolExecutor(max_workers=1, thread_name_prefix="recorder-wal"),
        venue=config.venue.name,
        rejected_dir=paths.dlq,
        wall_ns=wall_ns,
        log=log,
        replay_max_rows=min(settings.batch_max_rows, REPLAY_MAX_ROWS),
    )
    return Recorder(
        config,
        redis=redis,
        store=store,
        storage=storage,
        consumer=consumer,
        publisher=publisher,
        metrics=metrics,
        guard=guard,
        read_executor=ThreadPoolExecutor(max_workers=2, thread_name_prefix="recorder-query"),
        log=log,
        wall_ns=wall_ns,
        monotonic=monotonic,
        max_rows_per_entry=config.collector.flush_max,
    )
