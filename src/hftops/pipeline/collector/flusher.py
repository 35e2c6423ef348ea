"""Flushing held rows to Redis: when (size, age), which cursor goes with them, what to do when Redis fails."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from hftops.model.streams import MdKind
from hftops.pipeline.collector.batcher import NEVER_NS, Chunk
from hftops.pipeline.collector.ingest import DeadLetterFields, Ingest
from hftops.pipeline.collector.stats import LatencyWindow, Totals
from hftops.pipeline.collector.writer import BusWriter

MAX_CHUNKS_PER_TX = 512  # bounds one write (and the time Redis spends on it) after an outage
# Writes submitted and not yet answered. Two: a due batch waits for at most one round trip. More would make
# every flush_ms its own set of entries (one per stream) whatever Redis takes, and the recorder and Valkey pay
# per entry; a batch due while both are out keeps gathering rows until an answer frees a slot.
MAX_IN_FLIGHT = 2


@dataclass(frozen=True)
class Clock:
    """Wall time stamps rows (receive_time_ns); monotonic time drives flush deadlines, backoff and ages."""

    wall_ns: Callable[[], int] = time.time_ns
    mono_ns: Callable[[], int] = time.monotonic_ns

    def mono_s(self) -> float:
        return self.mono_ns() / 1e9


@dataclass
class _Write:
    """A write submitted and not yet answered, kept whole so a failure can put everything back."""

    chunks: list[Chunk]
    letters: list[DeadLetterFields]
    dirty: set[str]
    cursors: dict[str, int]
    future: asyncio.Future[tuple[int, int]]


class Flusher:
    """Hands due chunks + dead letters + the cursor to the writer, and settles what it answers.

    A batch is due when it is full or `flush_ms` old; it is submitted from the frame that finds it due
    (`poke`), so a backlog of frames on the event loop does not hold it back, and from this task when no
    frame comes. Up to MAX_IN_FLIGHT writes may wait for their answer; they land in submission order.

    A failed write keeps every row: once every write in flight has been answered, the failed ones go back to
    the batcher (in order) and are retried with backoff. The write connection has no silent retries, so
    after any failure the first thing done is to ask Redis whether it restarted or lost what it had
    acknowledged (AOF everysec); if so the lost trade ids are rewound and backfilled.
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
        self.flush_lag = LatencyWindow()  # a batch due by age until it is submitted
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
        self.in_flight: deque[_Write] = deque()
        self._failed_writes: list[_Write] = []  # answered with an error, waiting for the rest in flight
        self._failure: Exception | None = None
        self._wake = asyncio.Event()
        # When the flusher task looks again by itself: its timer, NEVER_NS asleep without one, -1 busy or
        # waiting for an answer (which wakes it)
        self._looks_at_ns = -1
        self._verify = False
        self._wait_until = 0.0
        self._delay_s = 0.0

    def poke(self) -> None:
        """After each frame: submit what it made due. The event loop's timers tick in whole milliseconds;
        under load a frame comes every few tens of microseconds, so the first frame past the deadline
        flushes."""
        batcher = self.batcher
        due_at = batcher.due_at_ns
        if batcher.full_chunks or self.ingest.dead_letters or self._mono_ns() >= due_at:
            if self._may_submit():
                self._submit()
            elif not self.in_flight:
                self._wake.set()  # backing off or verifying: the flusher task decides (an answer wakes it too)
        elif due_at < self._looks_at_ns:
            self._wake.set()  # a first batch, due before the flusher would look again: let it set its timer

    def wake(self) -> None:
        self._wake.set()

    def _may_submit(self) -> bool:
        return (
            len(self.in_flight) < MAX_IN_FLIGHT
            and self._failure is None
            and not self._verify
            and self.clock.mono_s() >= self._wait_until
        )

    def _due(self) -> bool:
        if self.batcher.full_chunks or self.ingest.dead_letters or self.ingest.cursor_dirty:
            return True
        deadline = self.batcher.next_deadline_ns()
        return deadline is not None and (self.draining or deadline <= self._mono_ns())

    async def run(self) -> None:
        """Until drained (after `draining` is set) or cancelled."""
        while True:
            self._looks_at_ns = -1
            if self.draining and not self.ingest.held and not self.ingest.cursor_dirty and not self.in_flight:
                return
            if self._failure is None and not self.in_flight:
                wait_s = self._wait_until - self.clock.mono_s()
                if wait_s > 0:
                    await asyncio.sleep(wait_s)
                    continue
                if self._verify:
                    await self._verify_redis()
                    continue
            if self._may_submit() and self._due():
                self._submit()
                continue
            deadline = self.batcher.next_deadline_ns()
            self._wake.clear()
            timeout = None
            if self._may_submit():
                self._looks_at_ns = NEVER_NS if deadline is None else deadline
                if deadline is not None:
                    timeout = max(0.0, (deadline - self._mono_ns()) / 1e9)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _submit(self) -> None:
        # When the oldest batch is due by time, every open batch goes in the same transaction: one round trip
        # instead of a train of them a fraction of a millisecond apart, each waiting for the one before.
        deadline = self.batcher.next_deadline_ns()
        now_ns = self._mono_ns()
        time_due = deadline is not None and deadline <= now_ns
        if time_due and deadline is not None:
            self.flush_lag.record(now_ns - deadline)
        chunks = self.batcher.take_due(everything=self.draining or time_due, max_chunks=MAX_CHUNKS_PER_TX)
        letters, self.ingest.dead_letters = self.ingest.dead_letters, []
        dirty, self.ingest.cursor_dirty = self.ingest.cursor_dirty, set()
        cursors = self._cursors(chunks, dirty)
        if not (chunks or letters or cursors):
            return
        write = _Write(chunks, letters, dirty, cursors, self.writer.submit(chunks, letters, cursors))
        self.in_flight.append(write)
        write.future.add_done_callback(self._answered)

    def _answered(self, _future: asyncio.Future[tuple[int, int]]) -> None:
        """Settle answered writes in submission order (the writer answers them in that order)."""
        in_flight = self.in_flight
        while in_flight and in_flight[0].future.done():
            write = in_flight.popleft()
            future = write.future
            error = future.exception() if not future.cancelled() else asyncio.CancelledError()
            if error is None and self._failure is None:
                round_trip_ns, acked_ns = future.result()
                self.write_latency.record(round_trip_ns)
                self._acknowledged(write.chunks, write.cursors, acked_ns)  # in Redis when the reply came
                continue
            self._failed_writes.append(write)
            if self._failure is None:
                self._failure = error if isinstance(error, Exception) else RuntimeError(repr(error))
        if self._failure is not None and not in_flight:
            self._put_back()
        if self.batcher.full_chunks or self._mono_ns() >= self.batcher.due_at_ns:
            self.poke()  # a slot is free: what became due meanwhile goes now
        self._wake.set()

    def _put_back(self) -> None:
        """Every failed write back where it came from, the oldest in front; then back off and verify."""
        failure, self._failure = self._failure, None
        for write in reversed(self._failed_writes):
            self.batcher.put_back(write.chunks)
            self.ingest.dead_letters[:0] = write.letters
            self.ingest.cursor_dirty |= write.dirty
        self._failed_writes = []
        assert failure is not None
        self._failed(failure)

    def _acknowledged(self, chunks: Sequence[Chunk], cursors: dict[str, int], ack_ns: int) -> None:
        self.batcher.acknowledged(chunks)
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
                self.log.error("redis_unavailable_at_start", url=self.writer.url, error=repr(exc), retry_in_s=delay)
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
