"""Closing trade-id gaps from the venue's REST history, page by page, retrying until every gap is closed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from hftops.pipeline.collector.decode import rest_row_id
from hftops.pipeline.collector.ingest import Ingest
from hftops.pipeline.collector.reasons import RestFailure
from hftops.pipeline.collector.rest import RestError, TradeHistory
from hftops.pipeline.collector.stats import Totals


@dataclass
class _Retry:
    at_s: float = 0.0
    delay_s: float = 0.0
    failures: int = 0


class Backfiller:
    """Fetches, for every symbol that `want`s it, its lowest open gap (or, after a (re)connect, whatever the
    venue has beyond the last id seen) and hands the rows to `Ingest.backfill`.

    A failed page is retried with backoff, for ever: the gap stays open, counted and visible in stats,
    so the symbol is reported unhealthy rather than silently incomplete.
    """

    def __init__(
        self,
        history: TradeHistory,
        ingest: Ingest,
        totals: Totals,
        *,
        limit: int,
        may_fetch: Callable[[], bool],
        mono_s: Callable[[], float],
        log: structlog.stdlib.BoundLogger,
        concurrency: int = 4,
        retry_initial_s: float = 0.1,
        retry_max_s: float = 10.0,
        origin_id: int | None = None,
        on_rows: Callable[[], None] = lambda: None,
    ) -> None:
        self.history = history
        self._ingest = ingest
        self._sequences = ingest.sequences
        self._totals = totals
        self.limit = limit
        self._may_fetch = may_fetch
        self._mono_s = mono_s
        self._log = log
        self._concurrency = concurrency
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._on_rows = on_rows
        # Ids below the first one the venue serves from the origin are before its history, not lost.
        self._origin_id = origin_id
        self._wanted: set[str] = set()
        self._tail: set[str] = set()  # symbols to read beyond the last id seen (after a connect)
        self._retry: dict[str, _Retry] = {}
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._hold_until_s = 0.0  # the venue asked everyone to wait (HTTP 429 Retry-After)
        self._wake = asyncio.Event()
        self.absent_ids = 0

    def want(self, symbol: str) -> None:
        self._wanted.add(symbol)
        self._wake.set()

    def probe_tail(self, symbols: tuple[str, ...] | list[str]) -> None:
        for symbol in symbols:
            if self._sequences[symbol].next_id is not None:
                self._tail.add(symbol)
                self._wanted.add(symbol)
        self._wake.set()

    def busy(self, symbol: str) -> bool:
        """True while the symbol has an open gap or an unread tail: it cannot be called complete."""
        return symbol in self._wanted

    def retry_state(self, symbol: str) -> dict[str, float | int] | None:
        state = self._retry.get(symbol)
        if state is None or not state.failures:
            return None
        return {"failures": state.failures, "retry_in_s": round(max(0.0, state.at_s - self._mono_s()), 3)}

    async def run(self) -> None:
        try:
            while True:
                now = self._mono_s()
                next_at = self._start_ready(now)
                self._wake.clear()
                timeout = None if next_at is None else max(0.005, next_at - now)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
        finally:
            for task in self._inflight.values():
                task.cancel()

    def _start_ready(self, now: float) -> float | None:
        """Start pages for ready symbols; returns when to look again (None: only when woken)."""
        next_at: float | None = None
        if now < self._hold_until_s:
            return self._hold_until_s
        for symbol in sorted(self._wanted):
            if symbol in self._inflight:
                continue
            retry = self._retry.get(symbol)
            if retry is not None and retry.at_s > now:
                next_at = retry.at_s if next_at is None else min(next_at, retry.at_s)
                continue
            if len(self._inflight) >= self._concurrency:
                break
            if not self._may_fetch():
                return now + 0.05  # back-pressure: the buffer has no room for another page yet
            task = asyncio.get_running_loop().create_task(self._page(symbol))
            self._inflight[symbol] = task
        return next_at

    async def _page(self, symbol: str) -> None:
        try:
            await self._fetch_one(symbol)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not kill backfill for good; the gap stays open and is retried
            self._log.exception("backfill_page_crashed", symbol=symbol, error=repr(exc))
            self._fail(symbol, RestFailure.MALFORMED, f"internal error: {exc!r}", None)
        finally:
            self._inflight.pop(symbol, None)
            self._wake.set()

    async def _fetch_one(self, symbol: str) -> None:
        seq = self._sequences[symbol]
        if seq.gaps:
            lo, hi = seq.gaps[0]
            limit, tail = min(self.limit, hi - lo + 1), False
        elif symbol in self._tail and seq.next_id is not None:
            lo, limit, tail = seq.next_id, self.limit, True
        else:
            self._wanted.discard(symbol)
            self._tail.discard(symbol)
            return
        try:
            rows = await self.history.trades(symbol, lo, limit)
        except RestError as exc:
            self._fail(symbol, exc.failure, exc.detail, exc.retry_after_s)
            return
        if not rows:
            if tail:
                self._tail.discard(symbol)
                if not seq.gaps:
                    self._wanted.discard(symbol)
                self._succeeded(symbol)
            else:
                self._fail(symbol, RestFailure.EMPTY, f"no rows from id {lo} yet ({self.history.path})", None)
            return
        self._close_absent(symbol, lo, min(rest_row_id(r) for r in rows), tail)
        self._ingest.backfill(symbol, rows)
        self._on_rows()
        if tail and len(rows) < limit:
            self._tail.discard(symbol)
        if not seq.gaps and symbol not in self._tail:
            self._wanted.discard(symbol)
        self._succeeded(symbol)

    def _close_absent(self, symbol: str, lo: int, first: int, tail: bool) -> None:
        """The venue answered fromId=lo with a first id above lo: ids lo..first-1 do not exist there."""
        if first <= lo:
            return
        seq = self._sequences[symbol]
        if tail:
            if seq.next_id == lo:
                seq.next_id = first
        else:
            seq.close(lo, first - 1)
        self._ingest.cursor_dirty.add(symbol)
        if lo == self._origin_id:
            return  # the venue's history starts at `first`
        self.absent_ids += first - lo
        self._log.error(
            "venue_history_missing_ids",
            symbol=symbol,
            ids=[lo, first - 1],
            path=self.history.path,
            detail="the venue's REST history has no trades with these ids; they cannot be recovered",
        )

    def _fail(self, symbol: str, failure: RestFailure, detail: str, retry_after_s: float | None) -> None:
        self._totals.rest_failures[failure.value] += 1
        state = self._retry.setdefault(symbol, _Retry())
        state.failures += 1
        state.delay_s = min(self._retry_max_s, max(self._retry_initial_s, state.delay_s * 2))
        delay = state.delay_s if retry_after_s is None else max(state.delay_s, retry_after_s)
        now = self._mono_s()
        state.at_s = now + delay
        if failure is RestFailure.HTTP_429:
            self._hold_until_s = now + delay  # rate limits are per client: every symbol waits
        seq = self._sequences[symbol]
        log = self._log.warning if state.failures < 5 else self._log.error
        log(
            "backfill_failed",
            symbol=symbol,
            failure=failure.value,
            detail=detail,
            attempt=state.failures,
            retry_in_s=round(delay, 3),
            open_gaps=seq.gaps[:5],
            missing=seq.missing,
        )

    def _succeeded(self, symbol: str) -> None:
        state = self._retry.pop(symbol, None)
        if state is not None and state.failures >= 1:
            self._log.info("backfill_recovered", symbol=symbol, after_failures=state.failures)
