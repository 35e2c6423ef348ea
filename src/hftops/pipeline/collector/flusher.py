"""Flushing held rows to Redis: when (size, age), which cursor goes with them, what to do when Redis fails."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from hftops.model.streams import MdKind
from hftops.pipeline.collector.batcher import Chunk
from hftops.pipeline.collector.ingest import Ingest
from hftops.pipeline.collector.stats import LatencyWindow, Totals
from hftops.pipeline.collector.writer import BusWriter

MAX_CHUNKS_PER_TX = 512  # bounds one MULTI/EXEC (and the time Redis spends on it) after an outage


@dataclass(frozen=True)
class Clock:
    """Wall time stamps rows (receive_time_ns); monotonic time drives flush deadlines, backoff and ages."""

    wall_ns: Callable[[], int] = time.time_ns
    mono_ns: Callable[[], int] = time.monotonic_ns

    def mono_s(self) -> float:
        return self.mono_ns() / 1e9


class Flusher:
    """One transaction at a time: due chunks + dead letters + the cursor, acknowledged or put back.

    A failed write keeps every row (back in the batcher) and retries with backoff. The write connection
    has no silent retries, so after any failure the first thing done is to ask Redis whether it restarted
    or lost what it had acknowledged (AOF everysec); if so the lost trade ids are rewound and backfilled.
    """

    def __init__(
        self,
        ingest: Ingest,
        writer: BusWriter,
        totals: Totals,
        latency: LatencyWindow,
        clock: Clock,
        log: structlog.stdlib.BoundLogger,
        *,
        want_backfill: Callable[[str], None],
        on_written: Callable[[], None],
        retry_max_s: float = 1.0,
    ) -> None:
        self.ingest = ingest
        self.batcher = ingest.batcher
        self.sequences = ingest.sequences
        self.writer = writer
        self.totals = totals
        self.latency = latency
        self.flush_lag = LatencyWindow()  # a batch due by age until its flush starts (the event loop's delay)
        self.write_latency = LatencyWindow()  # one transaction, sent to acknowledged (part of every hop)
        self.clock = clock
        self._mono_ns = clock.mono_ns
        self.log = log
        self._want_backfill = want_backfill
        self._on_written = on_written
        self._retry_max_s = retry_max_s
        self.acked_cursor: dict[str, int] = {}  # the cursor Redis acknowledged, per symbol
        self.run_id: str | None = None
        self.down_since: float | None = None
        self.draining = False
        self._wake = asyncio.Event()
        self._armed = False  # waiting on a deadline: frames need not wake us, unless it passed
        self._deadline_ns = 0
        self._verify = False
        self._wait_until = 0.0
        self._delay_s = 0.0

    def poke(self) -> None:
        """After each frame. The event loop's timers tick in whole milliseconds; under load a frame comes
        every few tens of microseconds, so the first frame past the deadline wakes the flusher."""
        if (
            not self._armed
            or self.batcher.full_chunks
            or self.ingest.dead_letters
            or self._mono_ns() >= self._deadline_ns
        ):
            self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def _due(self) -> bool:
        if self.batcher.full_chunks or self.ingest.dead_letters or self.ingest.cursor_dirty or self._verify:
            return True
        deadline = self.batcher.next_deadline_ns()
        return deadline is not None and (self.draining or deadline <= self._mono_ns())

    async def run(self) -> None:
        """Until drained (after `draining` is set) or cancelled."""
        while True:
            if self.draining and not self.ingest.held and not self.ingest.cursor_dirty:
                return
            wait_s = self._wait_until - self.clock.mono_s()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
                continue
            if self._due():
                await self.flush_once()
                continue
            deadline = self.batcher.next_deadline_ns()
            self._wake.clear()
            self._armed, self._deadline_ns = deadline is not None, deadline or 0
            timeout = None if deadline is None else max(0.0, (deadline - self._mono_ns()) / 1e9)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._armed = False

    async def flush_once(self) -> None:
        if self._verify and not await self._verify_redis():
            return
        # When the oldest batch is due by time, every open batch goes in the same transaction: one round trip
        # instead of a train of them a fraction of a millisecond apart, each waiting for the one before.
        deadline = self.batcher.next_deadline_ns()
        time_due = deadline is not None and deadline <= self._mono_ns()
        if time_due and deadline is not None:
            self.flush_lag.record(self._mono_ns() - deadline)
        chunks = self.batcher.take_due(everything=self.draining or time_due, max_chunks=MAX_CHUNKS_PER_TX)
        letters, self.ingest.dead_letters = self.ingest.dead_letters, []
        dirty, self.ingest.cursor_dirty = self.ingest.cursor_dirty, set()
        cursors = self._cursors(chunks, dirty)
        if not (chunks or letters or cursors):
            return
        try:
            round_trip_ns, acked_ns = await self.writer.write(chunks, letters, cursors)
        except BaseException as exc:  # cancelled or failed: nothing may be lost from memory either way
            self.batcher.put_back(chunks)
            self.ingest.dead_letters[:0] = letters
            self.ingest.cursor_dirty |= dirty
            if isinstance(exc, Exception):
                self._failed(exc)
                return
            raise
        self.write_latency.record(round_trip_ns)
        self._acknowledged(chunks, cursors, acked_ns)  # the rows were in Redis when the reply arrived

    def _acknowledged(self, chunks: Sequence[Chunk], cursors: dict[str, int], ack_ns: int) -> None:
        for chunk in chunks:
            self.totals.forwarded += len(chunk.rows)
            if chunk.live_oldest_ns:
                self.latency.record(ack_ns - chunk.live_oldest_ns)
        self.totals.entries += len(chunks)
        self.acked_cursor.update(cursors)
        if self.down_since is not None:
            self.log.info(
                "redis_recovered",
                down_s=round(self.clock.mono_s() - self.down_since, 3),
                held=self.ingest.held,
            )
            self.down_since = None
        self._delay_s = 0.0
        self._on_written()

    def _cursors(self, chunks: Sequence[Chunk], dirty: set[str]) -> dict[str, int]:
        """Contiguous marks to store with this flush: below any open gap and below any row still held back."""
        symbols = dirty | {chunk.key[1] for chunk in chunks if chunk.key[0] is MdKind.TRADE}
        cursors: dict[str, int] = {}
        for symbol in symbols:
            mark = self.sequences[symbol].contiguous_mark()
            held_lo = self.batcher.pending_lo((MdKind.TRADE, symbol))
            if mark is not None and held_lo is not None:
                mark = min(mark, held_lo - 1)
            if mark is not None and mark >= 0 and mark != self.acked_cursor.get(symbol):
                cursors[symbol] = mark
        return cursors

    def _failed(self, exc: Exception) -> None:
        self.totals.redis_failures += 1
        self._verify = True
        now = self.clock.mono_s()
        self._delay_s = min(self._retry_max_s, max(0.02, self._delay_s * 2))
        self._wait_until = now + self._delay_s
        if self.down_since is None:
            self.down_since = now
            self.log.error(
                "redis_write_failed",
                url=self.writer.url,
                error=repr(exc),
                held=self.ingest.held,
                action="holding messages (up to collector.buffer_max) and retrying",
            )

    async def _verify_redis(self) -> bool:
        """Did Redis come back without data it had acknowledged? Then rewind those trade ids for backfill."""
        try:
            run_id, stored = await self.writer.server_state()
        except Exception as exc:
            self._failed(exc)
            return False
        restarted = self.run_id is not None and run_id != self.run_id
        rewound: dict[str, int] = {}
        for symbol, seq in self.sequences.items():
            acked, kept = self.acked_cursor.get(symbol), stored.get(symbol)
            behind = acked is not None and (kept is None or kept < acked)
            # After a restart, ids written above the cursor (beyond an open gap) may be gone too.
            if seq.next_id is None or not (behind or (restarted and (seq.gaps or kept is None))):
                continue
            start = kept + 1 if kept is not None else seq.origin
            if start is not None and start < seq.next_id:
                seq.rewind(start)
                rewound[symbol] = start
                self._want_backfill(symbol)
        self.acked_cursor = {s: stored[s] for s in self.sequences if s in stored}
        if restarted or rewound:
            self.totals.redis_rewinds += bool(rewound)
            self.log.warning(
                "redis_restarted" if restarted else "redis_cursor_behind",
                run_id=run_id,
                rewound_from=rewound,
                detail="trades above the stored cursor are backfilled again; "
                "bookTicker rows and dead letters of the lost window cannot be recovered",
            )
        self.run_id = run_id
        self._verify = False
        return True

    async def load_cursor(self, stop: asyncio.Event, origin_id: int | None) -> bool:
        """Where every symbol stands: its stored cursor (a restart), else the origin, else live.
        False: stopped before Redis ever answered."""
        delay = 0.05
        while True:
            try:
                self.run_id, stored = await self.writer.server_state()
                break
            except Exception as exc:
                self.log.error(
                    "redis_unavailable_at_start", url=self.writer.url, error=repr(exc), retry_in_s=delay
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return False
            delay = min(1.0, delay * 2)
        for symbol, seq in self.sequences.items():
            if symbol in stored:
                seq.next_id = seq.origin = stored[symbol] + 1
                self.acked_cursor[symbol] = stored[symbol]
            elif origin_id is not None:
                seq.next_id = seq.origin = origin_id
        self.log.info("cursor_loaded", stored=stored, origin=origin_id)
        return True
