"""Once-a-tick chores: the disk guard, probing a failing database, trimming acknowledged entries, stats."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from hftops.config.schema import RecorderConfig
from hftops.lifecycle import notify_watchdog
from hftops.model.components import RECORDER
from hftops.pipeline.recorder.consumer import trim_all_acknowledged
from hftops.pipeline.recorder.flags import RunFlags
from hftops.pipeline.recorder.guard import DiskGuard
from hftops.pipeline.recorder.metrics import RecorderMetrics
from hftops.pipeline.recorder.storage import Storage

STATS_KEY = "ops:stats"


async def watchdog() -> None:
    """Its own task, so a slow chore (a probe waiting on the storage thread) never delays a heartbeat."""
    while True:
        notify_watchdog()
        await asyncio.sleep(0.5)


class Housekeeper:
    def __init__(
        self,
        redis: aioredis.Redis,
        streams: list[str],
        storage: Storage,
        guard: DiskGuard,
        settings: RecorderConfig,
        *,
        metrics: RecorderMetrics,
        flags: RunFlags,
        log: structlog.stdlib.BoundLogger,
        stats: Callable[[], dict[str, Any]],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.streams = streams
        self.storage = storage
        self.wal = storage.wal
        self.guard = guard
        self.settings = settings
        self.metrics = metrics
        self.flags = flags
        self.log = log
        self.stats = stats
        self.monotonic = monotonic

    async def run(self) -> None:
        next_probe = next_trim = next_stats = 0.0
        while not self.flags.stopping:
            now = self.monotonic()
            self.check_guard()
            if not self.storage.db_healthy and now >= next_probe:
                next_probe = now + self.settings.db_retry_s
                await self.storage.probe()
            if now >= next_trim:
                next_trim = now + self.settings.trim_interval_s
                await self.trim()
            if now >= next_stats:
                next_stats = now + 1.0
                await self.publish_stats()
            await asyncio.sleep(0.05)

    def check_guard(self) -> None:
        if not self.guard.update(self.wal.bytes):
            return
        self.metrics.disk_guard.set(int(self.guard.active))
        if self.guard.active:
            self.log.error(
                "disk_guard_on",
                reason=self.guard.reason,
                action="stopped writing the WAL, acking and reading; data stays in Redis",
            )
        else:
            self.log.info("disk_guard_off", **self.wal.summary())

    async def trim(self) -> None:
        try:
            trimmed = sum((await trim_all_acknowledged(self.redis, self.streams)).values())
            if trimmed:
                self.metrics.trimmed.inc(trimmed)
                self.metrics.tallies.trimmed_entries += trimmed
        except (RedisError, OSError) as exc:
            self.metrics.redis_error()
            self.log.debug("trim_skipped", error=str(exc))

    async def publish_stats(self) -> None:
        # Best effort: Redis being down is reported by the reader.
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await asyncio.wait_for(self.redis.hset(STATS_KEY, RECORDER, json.dumps(self.stats())), 1.0)
