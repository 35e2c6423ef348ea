"""The real engine in this process (so a test controls its clock) beside real processes: valkey, the
simulated venue and the collector (tests.integration.engine.helpers.World)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import msgspec
import redis

from hftops.config import Config
from hftops.engine.service import Engine, build_engine
from hftops.model.ops_events import AutonomyTransition, EvidenceRecord
from hftops.model.streams import STATS_HASH, OpsKind, ops_stream
from tests.support.waiting import async_wait_for

# Thresholds of the probes a test does not exercise are out of reach, so only the one under test moves.
QUIET_AUTONOMY: dict[str, Any] = {
    "eval_interval_s": 0.1,
    "boot_grace_s": 0.0,
    "db_stale_s": 1e6,
    "feed_gap_s": 1e6,
    "feed_gap_halt_s": 1e6,
    "broker_unavailable_s": 1e6,
    "redis_unhealthy_s": 1e6,
    "memory_available_min_bytes": 0,
    "strategy_reject_burst": 1_000_000,
    "wal_backlog_max_bytes": 1000,
}


class OffsetClock:
    """Wall time plus an offset the test moves: rate limits and timeouts keep working, cooldowns jump."""

    def __init__(self) -> None:
        self.offset_ns = 0

    def __call__(self) -> int:
        return time.time_ns() + self.offset_ns

    def advance(self, seconds: float) -> None:
        self.offset_ns += int(seconds * 1e9)


class InProcessEngine:
    def __init__(self, config: Config, clock: Callable[[], int], environ: dict[str, str] | None = None) -> None:
        self.engine: Engine = build_engine(config, environ=environ or {}, clock=clock)
        self.task = asyncio.get_running_loop().create_task(self.engine.run())

    async def started(self, timeout_s: float = 30.0) -> Engine:
        await async_wait_for(self._started, timeout_s, what="in-process engine started")
        return self.engine

    async def _started(self) -> bool:
        if self.task.done():
            raise AssertionError(f"engine exited: {self.task.result()!r}")
        return self.engine.started

    async def evaluations(self, n: int = 3) -> None:
        """Wait until the monitor has judged `n` more samples (so a clock move has been seen)."""
        monitor = self.engine.autonomy_wiring.monitor
        target = monitor.evaluations + n

        async def done() -> bool:
            return monitor.evaluations >= target

        await async_wait_for(done, 10, what=f"{n} autonomy evaluations")

    async def mode(self, want: str, timeout_s: float = 10.0) -> None:
        async def reached() -> bool:
            return self.engine.autonomy.ladder_mode.value == want

        await async_wait_for(
            reached, timeout_s, what=f"autonomy mode {want} (now {self.engine.autonomy.ladder_mode.value})"
        )

    async def stop(self) -> int:
        self.engine.stop()
        return await asyncio.wait_for(self.task, 20)


def set_recorder_stats(client: redis.Redis, *, wal_bytes: int = 0, healthy: bool = True, guard: bool = False) -> None:
    """What the recorder publishes in `ops:stats` (a test stands in for it: no recorder runs here)."""
    doc = {
        "component": "recorder",
        "time": time.time(),
        "db": {"healthy": healthy, "error": None},
        "wal": {"bytes": wal_bytes, "records": 1 if wal_bytes else 0},
        "disk_guard": {"active": guard},
    }
    client.hset(STATS_HASH, "recorder", json.dumps(doc))


def ops_events(client: redis.Redis, kind: OpsKind, struct: type) -> list[Any]:
    return [msgspec.msgpack.decode(f[b"d"], type=struct) for _, f in client.xrange(ops_stream(kind))]


def transitions(client: redis.Redis) -> list[AutonomyTransition]:
    return ops_events(client, OpsKind.AUTONOMY, AutonomyTransition)


def evidence(client: redis.Redis) -> list[EvidenceRecord]:
    return ops_events(client, OpsKind.EVIDENCE, EvidenceRecord)
