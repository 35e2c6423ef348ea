"""What the autonomy monitor looks at, gathered once per cycle into one `HealthSample`.

`EngineProbe.sample()` reads the other components' published stats (`ops:stats`: recorder, collector),
the market-data stream lengths, Redis itself (one pipelined round trip, bounded by a timeout), the
engine's own figures (feed, broker, reconciliation, PnL, strategies, event backlog) and the process.
Nothing here judges: the monitor compares the sample with the thresholds.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import psutil
import redis.asyncio as aioredis

from hftops.model.orders import RejectReason
from hftops.model.streams import STATS_HASH, MdKind, md_stream

if TYPE_CHECKING:
    from hftops.engine.service import Engine
    from hftops.ops.autonomy_store import AutonomyStore

# Rejections the safety gates produce on purpose: they never count towards a strategy's reject burst.
SAFETY_REJECTS = frozenset(
    {
        RejectReason.SESSION_PHASE.value,
        RejectReason.AUTONOMY_MODE.value,
        RejectReason.STRATEGY_QUARANTINED.value,
        RejectReason.FLATTEN_ONLY.value,
        RejectReason.REDUCE_ONLY.value,
    }
)


@dataclass
class HealthSample:
    redis_ok: bool = True
    redis_error: str = ""
    recorder: dict[str, Any] | None = None  # the recorder's ops:stats document
    collector: dict[str, Any] | None = None
    stream_lengths: dict[str, int] = field(default_factory=dict)  # market-data streams
    stream_cap: int = 0
    events_pending: int = 0  # engine events waiting for Redis
    events_max_pending: int = 0
    events_dropped: int = 0  # cumulative
    rss_bytes: int = 0
    memory_available_bytes: int | None = None
    broker_connected: bool = True
    recon_checks: int = 0  # cumulative successful broker position queries
    recon_failures: int = 0  # cumulative failed ones
    drifting: frozenset[str] = frozenset()
    equity: Decimal | None = None
    peak_equity: Decimal = Decimal(0)
    marks_complete: bool = True  # every open position has a mark (else unrealized PnL is unknown)
    last_trade_ids: dict[str, int] = field(default_factory=dict)  # symbol -> last trade id the engine saw
    strategy_errors: dict[str, int] = field(default_factory=dict)  # cumulative per strategy
    strategy_rejects: dict[str, int] = field(default_factory=dict)  # cumulative, safety gates excluded
    emergency_latch: dict[str, Any] | None = None
    persist_error: str | None = None


def _json(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class EngineProbe:
    def __init__(self, engine: Engine, redis: aioredis.Redis, store: AutonomyStore, timeout_s: float = 0.5) -> None:
        self.engine = engine
        self.redis = redis
        self.store = store
        self.timeout_s = timeout_s
        self.md_keys = [md_stream(engine.venue, MdKind.TRADE, s) for s in engine.symbols]
        if engine.config.venue.bbo:
            self.md_keys += [md_stream(engine.venue, MdKind.BBO, s) for s in engine.symbols]
        self._process = psutil.Process(os.getpid())

    async def sample(self) -> HealthSample:
        sample = HealthSample(stream_cap=self.engine.config.redis.stream_cap_entries)
        await self._from_redis(sample)
        self._from_engine(sample)
        self._from_process(sample)
        sample.emergency_latch = self.store.emergency_latch()
        return sample

    async def _from_redis(self, sample: HealthSample) -> None:
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hmget(STATS_HASH, ["recorder", "collector"])
            for key in self.md_keys:
                pipe.xlen(key)
            answers = await asyncio.wait_for(pipe.execute(), self.timeout_s)
        except Exception as exc:  # any failure to answer in time is the finding itself
            sample.redis_ok, sample.redis_error = False, f"{type(exc).__name__}: {exc}"
            return
        recorder, collector = answers[0]
        sample.recorder, sample.collector = _json(recorder), _json(collector)
        sample.stream_lengths = dict(zip(self.md_keys, (int(n) for n in answers[1:]), strict=True))

    def _from_engine(self, sample: HealthSample) -> None:
        engine = self.engine
        events = engine.publisher.counters
        sample.events_pending = len(engine.publisher._pending)
        sample.events_max_pending = engine.publisher._max_pending
        sample.events_dropped = events.dropped
        stream = getattr(engine.execution, "stream", None)
        sample.broker_connected = bool(stream is not None and stream.connected.is_set())
        sample.recon_checks, sample.recon_failures = engine.drift.checks, engine.drift.query_failures
        sample.drifting = engine.drift.drifting
        state = engine.state
        book = state.positions
        sample.marks_complete = all(p.qty == 0 or p.symbol in state.mids for p in book)
        sample.equity = book.mark(state.mids)
        sample.peak_equity = book.peak_equity
        sample.last_trade_ids = {s: t.trade_id for s, t in state.last_trade.items()}
        sample.strategy_errors = dict(engine.core.strategy_errors)
        rejects: dict[str, int] = {}
        for (strategy, _symbol, reason), n in engine.chain.counters.rejected.items():
            if reason not in SAFETY_REJECTS:
                rejects[strategy] = rejects.get(strategy, 0) + n
        for (strategy, _reason), n in engine.broker_rejects.items():
            rejects[strategy] = rejects.get(strategy, 0) + n
        sample.strategy_rejects = rejects
        autonomy = getattr(engine, "autonomy", None)
        sample.persist_error = None if autonomy is None else autonomy.persist_error

    def _from_process(self, sample: HealthSample) -> None:
        try:
            sample.rss_bytes = self._process.memory_info().rss
            sample.memory_available_bytes = psutil.virtual_memory().available
        except psutil.Error:
            pass
