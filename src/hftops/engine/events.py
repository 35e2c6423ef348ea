"""Publishing the engine's events to Redis: `exec:{venue}:{orders|fills|positions|pnl|recon}`, the safety
layer's `ops:events:{session|autonomy|evidence|flatten|margin}` and `ops:stats`. Every event entry is the
same shape: field "d" = msgpack of the struct, field "kind" = a plain label; the recorder stores them.

Callers enqueue without awaiting (order and fill callbacks are synchronous); one task writes the queue
with pipelined XADDs (no MAXLEN: the recorder stores these and acks them). While Redis is down the
events wait in memory and are written once it is back; above `max_pending` the oldest are dropped with
an error log and a counter, because an engine that runs out of memory trades nothing at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import msgspec
import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from hftops.model.streams import DLQ_STREAM, F_DATA, F_KIND, STATS_HASH, ExecKind, OpsKind, exec_stream, ops_stream

log = structlog.get_logger("engine.events")
_ENCODER = msgspec.msgpack.Encoder()
BATCH = 500


@dataclass
class PublisherCounters:
    published: int = 0
    dropped: int = 0  # pending events dropped above max_pending while Redis was down
    write_failures: int = 0
    pending: int = 0


class EventPublisher:
    def __init__(self, redis: aioredis.Redis, venue: str, component: str = "engine", max_pending: int = 200_000):
        self._redis = redis
        self._streams = {kind: exec_stream(venue, kind) for kind in ExecKind}
        self._ops_streams = {kind: ops_stream(kind) for kind in OpsKind}
        self._component = component
        self._pending: deque[tuple[str, dict[str, bytes | str]]] = deque()
        self._max_pending = max_pending
        self._wake = asyncio.Event()
        self.counters = PublisherCounters()

    def publish(self, kind: ExecKind, event: msgspec.Struct, event_kind: str | None = None) -> None:
        self._enqueue(self._streams[kind], event, event_kind or kind.value)

    def publish_ops(self, kind: OpsKind, event: msgspec.Struct, event_kind: str | None = None) -> None:
        """A safety-layer event (model.ops_events) to `ops:events:{kind}`, e.g.
        `publisher.publish_ops(OpsKind.SESSION, transition)`; the recorder stores it in its table."""
        self._enqueue(self._ops_streams[kind], event, event_kind or kind.value)

    def _enqueue(self, stream: str, event: msgspec.Struct, label: str) -> None:
        fields: dict[str, bytes | str] = {F_DATA: _ENCODER.encode(event), F_KIND: label}
        self._pending.append((stream, fields))
        if len(self._pending) > self._max_pending:
            self._pending.popleft()
            self.counters.dropped += 1
            if self.counters.dropped == 1 or self.counters.dropped % 10_000 == 0:
                log.error(
                    "events.dropped",
                    dropped=self.counters.dropped,
                    max_pending=self._max_pending,
                    hint="Redis has been unreachable for long; the recorder misses these exec events",
                )
        self._wake.set()

    def dead_letter(self, letter: msgspec.Struct) -> None:
        """Refused input (a bad broker report) to `ops:dlq`, with `source`/`reason` beside the struct."""
        fields: dict[str, bytes | str] = {
            F_DATA: _ENCODER.encode(letter),
            "source": getattr(letter, "source", ""),
            "reason": getattr(letter, "reason", ""),
        }
        self._pending.append((DLQ_STREAM, fields))
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        """Write pending events until `stopping`, then a last flush (best effort)."""
        while not stopping.is_set():
            self._wake.clear()
            if not await self.flush():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), 0.5)  # Redis down: retry shortly
                continue
            if not self._pending:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 0.5)
        await self.flush()

    async def flush(self) -> bool:
        """Write everything pending; False when Redis refused (the events stay pending)."""
        while self._pending:
            batch = [self._pending[i] for i in range(min(BATCH, len(self._pending)))]
            try:
                pipe = self._redis.pipeline(transaction=False)
                for stream, fields in batch:
                    pipe.xadd(stream, fields)  # type: ignore[arg-type]
                await asyncio.wait_for(pipe.execute(), 2.0)
            except (RedisError, OSError, TimeoutError) as exc:
                self.counters.write_failures += 1
                if self.counters.write_failures == 1 or self.counters.write_failures % 20 == 0:
                    log.warning("events.write_failed", error=f"{type(exc).__name__}: {exc}", pending=len(self._pending))
                return False
            for _ in batch:
                self._pending.popleft()
            self.counters.published += len(batch)
        return True

    async def publish_stats(self, snapshot: dict[str, Any]) -> None:
        """`ops:stats` field `engine` (best effort: skipped silently while Redis is down)."""
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await asyncio.wait_for(
                self._redis.hset(STATS_HASH, self._component, json.dumps(snapshot, default=str)), 1.0
            )

    def stats(self) -> dict[str, Any]:
        self.counters.pending = len(self._pending)
        return asdict(self.counters)
