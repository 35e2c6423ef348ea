"""The collector process: connections, back-pressure, backfill and flushing wired together; lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog

from hftops.config.schema import CollectorConfig
from hftops.lifecycle import ComponentState, notify_ready, notify_stopping, notify_watchdog
from hftops.model.streams import MdKind
from hftops.pipeline.collector.backfill import Backfiller
from hftops.pipeline.collector.batcher import Batcher
from hftops.pipeline.collector.connection import ReconnectBackoff, StreamSet, VenueConnection
from hftops.pipeline.collector.decode import FrameDecoder, Rejected
from hftops.pipeline.collector.flusher import Clock, Flusher
from hftops.pipeline.collector.ingest import Ingest
from hftops.pipeline.collector.reasons import SOURCE, RejectReason
from hftops.pipeline.collector.rest import TradeHistory
from hftops.pipeline.collector.sequence import TradeSequence
from hftops.pipeline.collector.stats import FlapDetector, LatencyWindow, Totals
from hftops.pipeline.collector.writer import BusWriter

BUFFER_FULL = "buffer_full"
STREAM_CAP = "stream_cap"
_JSON = msgspec.json.Encoder()

__all__ = ["Clock", "Collector", "CollectorSettings"]


@dataclass(frozen=True)
class CollectorSettings:
    venue: str
    symbols: tuple[str, ...]
    ws_base_url: str
    stream_sets: tuple[StreamSet, ...]
    tuning: CollectorConfig
    stream_cap_entries: int
    kinds: tuple[MdKind, ...]
    origin_id: int | None  # None: a fresh start begins at the first live trade
    ws_max_size: int = 1 << 20
    shutdown_budget_s: float = 0.8
    redis_retry_max_s: float = 1.0


class Collector:
    def __init__(
        self,
        settings: CollectorSettings,
        decoder: FrameDecoder,
        writer: BusWriter,
        history: TradeHistory,
        log: structlog.stdlib.BoundLogger,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        rest_rows: str = "aggTrade",
    ) -> None:
        self.s = settings
        self.tuning = settings.tuning
        self.clock = clock or Clock()
        self.writer = writer
        self.log = log
        self.rng = rng or random.Random()
        self.totals = Totals()
        self.latency = LatencyWindow()
        self.flaps = FlapDetector()
        self.sequences = {symbol: TradeSequence(symbol) for symbol in settings.symbols}
        self.batcher = Batcher(self.tuning.flush_max, self.tuning.flush_ms, self.clock.mono_ns)
        self.ingest = Ingest(
            settings.venue,
            decoder,
            self.sequences,
            self.batcher,
            self.totals,
            self.clock.wall_ns,
            self._on_gap,
            log,
            rest_rows,
        )
        self.flusher = Flusher(
            self.ingest,
            writer,
            self.totals,
            self.latency,
            self.clock,
            log,
            want_backfill=self._on_gap,
            on_written=self._on_written,
            retry_max_s=settings.redis_retry_max_s,
        )
        self.backfiller = Backfiller(
            history,
            self.ingest,
            self.totals,
            limit=self.tuning.backfill_limit,
            may_fetch=self._may_fetch,
            mono_s=self.clock.mono_s,
            log=log,
            origin_id=settings.origin_id,
            on_rows=self.flusher.wake,
        )
        self._gate = asyncio.Event()  # set while the connections may read
        self.connections = [self._connection(i, ss) for i, ss in enumerate(settings.stream_sets)]
        self._pause_reasons: set[str] = set()
        self._stop = asyncio.Event()
        self.over_cap: dict[str, int] = {}
        self.state = ComponentState.INITIALISED
        self.ready = False

    def _connection(self, index: int, stream_set: StreamSet) -> VenueConnection:
        backoff = ReconnectBackoff(self.tuning.reconnect_initial_s, self.tuning.reconnect_max_s, self.rng)
        return VenueConnection(
            index,
            stream_set,
            self.s.ws_base_url,
            on_frame=self._on_frame,
            on_open=self._on_open,
            on_lost=self._on_lost,
            gate=self._gate,
            backoff=backoff,
            stable_s=self.tuning.reconnect_stable_s,
            mono_s=self.clock.mono_s,
            max_size=self.s.ws_max_size,
            read_slice_bytes=self.tuning.read_slice_bytes,
            log=self.log,
            wall_ns=self.clock.wall_ns,
        )

    @property
    def acked_cursor(self) -> dict[str, int]:
        return self.flusher.acked_cursor

    # --- frames in -----------------------------------------------------------------------------------------

    def _on_frame(self, payload: bytes) -> None:
        ingest = self.ingest
        ingest.frame(payload)
        self.flusher.poke()
        if ingest.held >= self.tuning.buffer_max:
            self._pause(
                BUFFER_FULL,
                f"{ingest.held} messages held while Redis does not take them "
                f"(collector.buffer_max={self.tuning.buffer_max})",
            )

    def _on_gap(self, symbol: str) -> None:
        self.backfiller.want(symbol)

    def _on_open(self, connection: VenueConnection) -> None:
        self.log.info("venue_connected", connection=connection.index, url=connection.url[:160])
        self.backfiller.probe_tail(connection.stream_set.symbols)  # what was published while we were away
        if not self.ready and all(c.opened_once for c in self.connections):
            self.ready = True
            self.state = ComponentState.RUNNING
            notify_ready(f"collector: {len(self.connections)} venue connection(s), {len(self.s.symbols)} symbols")
            self.log.info("collector_ready", connections=len(self.connections), symbols=len(self.s.symbols))

    def _on_lost(self, connection: VenueConnection, reason: str, close_code: int | None) -> None:
        if close_code == 1009:  # the WebSocket layer refused a frame before we could see it
            detail = (
                f"a frame above the WebSocket limit of {self.s.ws_max_size} bytes closed connection {connection.index}"
            )
            self.ingest.dead_letter(Rejected(RejectReason.OVERSIZED, detail), b"", self.clock.wall_ns())
            self.flusher.wake()
        if connection.opened_once:
            self.totals.reconnects += 1
            self.flaps.record(self.clock.mono_s())

    def _may_fetch(self) -> bool:
        # Pages stop while the buffer is half full, so held rows stay below buffer_max + one page.
        return STREAM_CAP not in self._pause_reasons and self.ingest.held < self.tuning.buffer_max // 2

    def _on_written(self) -> None:
        if BUFFER_FULL in self._pause_reasons and self.ingest.held <= self.tuning.buffer_max // 2:
            self._resume(BUFFER_FULL)

    # --- back-pressure -------------------------------------------------------------------------------------

    def _pause(self, reason: str, detail: str) -> None:
        if reason in self._pause_reasons:
            return
        self._pause_reasons.add(reason)
        self._gate.clear()
        self.totals.pauses += 1
        self.log.error(
            "collector_paused",
            reason=reason,
            detail=detail,
            action="stopped reading the venue; ids missed meanwhile are backfilled on resume",
        )
        for connection in self.connections:
            connection.close_soon()

    def _resume(self, reason: str) -> None:
        if reason not in self._pause_reasons:
            return
        self._pause_reasons.discard(reason)
        self.log.info("collector_resumed", reason=reason, held=self.ingest.held)
        if not self._pause_reasons and not self._stop.is_set():
            self._gate.set()

    # --- lifecycle -----------------------------------------------------------------------------------------

    async def run(self) -> int:
        self.state = ComponentState.STARTING
        tasks: list[asyncio.Task[Any]] = [asyncio.create_task(self._heartbeat(), name="heartbeat")]
        try:
            if not await self.flusher.load_cursor(self._stop, self.s.origin_id):
                return 0  # stopped before Redis ever answered
            self._gate.set()
            work = [asyncio.create_task(c.run(), name=f"venue-{c.index}") for c in self.connections]
            backfill = asyncio.create_task(self.backfiller.run(), name="backfill")
            flusher = asyncio.create_task(self.flusher.run(), name="flush")
            stop = asyncio.create_task(self._stop.wait())
            tasks += [
                *work,
                backfill,
                flusher,
                stop,
                asyncio.create_task(self._housekeeping(), name="housekeeping"),
            ]
            done, _ = await asyncio.wait([stop, flusher, *work, backfill], return_when=asyncio.FIRST_COMPLETED)
            if not self._stop.is_set():  # a part of the collector ended on its own: a bug, let the supervisor see
                ended = next(iter(done))
                error = None if ended.cancelled() else ended.exception()
                raise RuntimeError(f"collector task {ended.get_name()!r} ended unexpectedly: {error!r}") from error
            await self._shutdown(work, backfill, flusher)
            return 0
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.backfiller.history.aclose()
            await self.writer.aclose()

    def stop(self) -> None:
        if not self._stop.is_set():
            self.log.info("collector_stopping", held=self.ingest.held)
            notify_stopping()
            self.state = ComponentState.STOPPING
            self._stop.set()
            self._gate.clear()
            for connection in self.connections:
                connection.stop()

    async def _shutdown(
        self, work: list[asyncio.Task[None]], backfill: asyncio.Task[None], flusher: asyncio.Task[None]
    ) -> None:
        started = self.clock.mono_s()
        backfill.cancel()
        for task in work:
            task.cancel()
        await asyncio.wait([backfill, *work], timeout=0.3)
        self.flusher.draining = True
        self.flusher.wake()
        remaining = self.s.shutdown_budget_s - (self.clock.mono_s() - started)
        done, _ = await asyncio.wait([flusher], timeout=max(0.05, remaining))
        if not done:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            self.log.error(
                "collector_stopped_with_unwritten_data",
                held=self.ingest.held,
                detail="Redis did not take them in time; trades are backfilled from the cursor at the "
                "next start, bookTicker rows held here are lost",
            )
        self.state = ComponentState.STOPPED
        await self._publish_stats(timeout_s=0.1)
        self.log.info("collector_stopped", forwarded=self.totals.forwarded, cursor=self.acked_cursor)

    async def _heartbeat(self) -> None:
        while True:
            notify_watchdog()
            await asyncio.sleep(0.5)  # twice a second, so a late tick never looks like a missed one

    async def _housekeeping(self) -> None:
        next_at = self.clock.mono_s()
        while True:
            next_at += 1.0
            await asyncio.sleep(max(0.0, next_at - self.clock.mono_s()))
            await self._check_stream_cap()
            await self._publish_stats()

    async def _check_stream_cap(self) -> None:
        try:
            lengths = await asyncio.wait_for(self.writer.stream_lengths(self.s.symbols, self.s.kinds), 0.5)
        except Exception:
            return  # Redis down: the flush path already reports it
        cap = self.s.stream_cap_entries
        self.over_cap = {key: n for key, n in lengths.items() if n >= cap}
        if self.over_cap:
            self._pause(
                STREAM_CAP,
                f"streams at or above redis.stream_cap_entries={cap}: {self.over_cap}; "
                "is the recorder running and acknowledging?",
            )
        elif max(lengths.values(), default=0) < cap * 0.9:
            self._resume(STREAM_CAP)

    async def _publish_stats(self, timeout_s: float = 0.5) -> None:
        # Best effort: Redis being down is reported by the flush path.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.writer.publish_stats(SOURCE, _JSON.encode(self.snapshot(reset_latency=True))), timeout_s
            )

    def snapshot(self, reset_latency: bool = False) -> dict[str, object]:
        now_ns = self.clock.wall_ns()
        now_s = self.clock.mono_s()
        connected = {s for c in self.connections if c.connected for s in c.stream_set.symbols}
        symbols: dict[str, object] = {}
        for symbol, seq in self.sequences.items():
            last = self.ingest.last_live_ns.get(symbol)
            symbols[symbol] = {
                "last_id": None if seq.next_id is None else seq.next_id - 1,
                "cursor": self.acked_cursor.get(symbol),
                "open_gaps": seq.gaps[:10],
                "gap_count": len(seq.gaps),
                "missing": seq.missing,
                "healthy": seq.healthy and symbol in connected and not self.backfiller.busy(symbol),
                "last_message_age_s": None if last is None else round((now_ns - last) / 1e9, 3),
                "backfill_retry": self.backfiller.retry_state(symbol),
            }
        flapping = self.flaps.flapping(now_s)
        degraded = bool(
            self._pause_reasons
            or self.flusher.down_since is not None
            or flapping
            or any(seq.gaps for seq in self.sequences.values())
        )
        state = self.state
        if state is ComponentState.RUNNING and degraded:
            state = ComponentState.DEGRADED
        return {
            "component": SOURCE,
            "pid": os.getpid(),
            "time_ns": now_ns,
            "state": state.value,
            "ready": self.ready,
            "venue": self.s.venue,
            "connections": {
                "total": len(self.connections),
                "connected": sum(c.connected for c in self.connections),
                # reads stopped at collector.read_slice_bytes to let Redis answers through: backlogs worked off
                "read_slices_cut": sum(c.read_slices_cut for c in self.connections),
            },
            # lost outside HFT_RECONNECT_HOURS: connection index -> seconds until its reconnect window opens
            "waiting_for_window": {
                str(c.index): round(c.window_wait_s) for c in self.connections if c.window_wait_s > 0
            },
            "paused": sorted(self._pause_reasons),
            "held": self.ingest.held,
            "buffer_max": self.tuning.buffer_max,
            "redis_ok": self.flusher.down_since is None,
            "streams_over_cap": self.over_cap,
            "flapping": flapping,
            "hop_ms": self.latency.summary(reset=reset_latency),
            "hop_histogram": self.latency.cumulative(),
            "write_ms": self.flusher.write_latency.summary(reset=reset_latency),
            "flush_lag_ms": self.flusher.flush_lag.summary(reset=reset_latency),
            "absent_ids": self.backfiller.absent_ids,
            "totals": self.totals.as_dict(),
            "symbols": symbols,
        }
