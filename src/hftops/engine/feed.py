"""Market data for the engine: plain XREAD of `md:{venue}:{trade|bbo}:{SYMBOL}` from the latest entry.

No consumer group: the engine wants the present, not a replay; the recorder owns durable consumption.
A batch that cannot be decoded is dead-lettered (`ops:dlq`, source `engine`) and counted, never dropped
silently; a bad row inside a good batch is skipped the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import msgspec
import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from hftops.engine.marketdata import BadMarketData, bbo_from_row, tick_from_row
from hftops.model.market import BBO_BATCH_DECODER, TRADE_BATCH_DECODER, DeadLetter
from hftops.model.orders import Bbo, Tick
from hftops.model.streams import DLQ_STREAM, F_DATA, MdKind, md_stream

log = structlog.get_logger("engine.feed")
SOURCE = "engine"
_DLQ_ENCODER = msgspec.msgpack.Encoder()


@dataclass
class FeedCounters:
    entries: int = 0
    ticks: int = 0
    bbos: int = 0
    bad_batches: int = 0
    bad_rows: int = 0
    read_failures: int = 0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class MarketFeed:
    def __init__(
        self, redis: aioredis.Redis, venue: str, symbols: tuple[str, ...], with_bbo: bool = True, block_ms: int = 200
    ) -> None:
        self._redis = redis
        self._venue = venue
        self._keys: dict[str, tuple[MdKind, str]] = {}
        for symbol in symbols:
            for kind in (MdKind.TRADE, MdKind.BBO) if with_bbo else (MdKind.TRADE,):
                self._keys[md_stream(venue, kind, symbol)] = (kind, symbol)
        self._cursor: dict[str, str] = {}
        self._block_ms = block_ms
        self.counters = FeedCounters()
        self.last_data_ns = 0

    async def position_at_latest(self) -> None:
        """Start each stream after its newest entry (or at the beginning of a stream not created yet)."""
        for key in self._keys:
            newest: Any = await self._redis.xrevrange(key, count=1)
            self._cursor[key] = _text(newest[0][0]) if newest else "0-0"

    async def run(
        self, stopping: asyncio.Event, on_tick: Callable[[Tick], None], on_bbo: Callable[[Bbo], None]
    ) -> None:
        if not self._cursor:
            await self.position_at_latest()
        while not stopping.is_set():
            try:
                answer: Any = await self._redis.xread(self._cursor, count=100, block=self._block_ms)  # type: ignore[arg-type]
            except (RedisError, OSError) as exc:
                self.counters.read_failures += 1
                if self.counters.read_failures == 1 or self.counters.read_failures % 50 == 0:
                    log.warning(
                        "feed.read_failed",
                        error=f"{type(exc).__name__}: {exc}",
                        hint="market data paused until Redis answers again",
                    )
                await asyncio.sleep(0.5)
                continue
            for raw_key, entries in answer or ():
                key = _text(raw_key)
                kind, symbol = self._keys[key]
                for entry_id, fields in entries:
                    self._cursor[key] = _text(entry_id)
                    self.counters.entries += 1
                    await self._handle(key, kind, symbol, fields, on_tick, on_bbo)
                self.last_data_ns = time.time_ns()
            await asyncio.sleep(0)  # let order sends and callbacks run between batches

    async def _handle(
        self,
        key: str,
        kind: MdKind,
        symbol: str,
        fields: dict[bytes, bytes],
        on_tick: Callable[[Tick], None],
        on_bbo: Callable[[Bbo], None],
    ) -> None:
        payload = fields.get(F_DATA.encode(), b"")
        try:
            rows: list[Any] = (TRADE_BATCH_DECODER if kind is MdKind.TRADE else BBO_BATCH_DECODER).decode(payload)
        except msgspec.DecodeError as exc:
            self.counters.bad_batches += 1
            await self._dead_letter(
                "bad_batch", f"{key}: batch does not decode as {kind} rows: {exc}", payload, symbol, kind
            )
            return
        for row in rows:
            try:
                if kind is MdKind.TRADE:
                    view_tick = tick_from_row(symbol, row)
                    self.counters.ticks += 1
                    on_tick(view_tick)
                else:
                    view_bbo = bbo_from_row(symbol, row)
                    self.counters.bbos += 1
                    on_bbo(view_bbo)
            except BadMarketData as exc:
                self.counters.bad_rows += 1
                await self._dead_letter(
                    "bad_row",
                    str(exc),
                    msgspec.msgpack.encode(row),
                    symbol,
                    kind,
                    ref_id=getattr(row, "trade_id", getattr(row, "update_id", -1)),
                )

    async def _dead_letter(
        self, reason: str, detail: str, payload: bytes, symbol: str, kind: MdKind, ref_id: int = -1
    ) -> None:
        log.error("feed.bad_market_data", reason=reason, detail=detail)
        letter = DeadLetter(
            source=SOURCE,
            reason=reason,
            detail=detail,
            payload=payload,
            time_ns=time.time_ns(),
            venue=self._venue,
            symbol=symbol,
            kind=kind.value,
            ref_id=ref_id,
        )
        try:
            await self._redis.xadd(DLQ_STREAM, {"d": _DLQ_ENCODER.encode(letter), "source": SOURCE, "reason": reason})
        except (RedisError, OSError) as exc:
            log.error("feed.dead_letter_failed", error=str(exc), detail=detail)

    def stats(self) -> dict[str, Any]:
        return asdict(self.counters)
