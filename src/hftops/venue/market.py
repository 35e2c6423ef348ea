"""The venue's market: turns elapsed time into ticks of trades and book updates, recording trades first.

One `step` per event-loop tick (~1 ms): the configured rate (times the burst factor inside a burst window)
times the elapsed time gives how many messages are due; each symbol gets its weighted share. At high rates
one tick carries several trades per symbol, all stamped with the same millisecond, as on a real venue.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from hftops.venue.faults import FaultBook
from hftops.venue.ground_truth import GroundTruth, pack_trades
from hftops.venue.process import BookProcess, TradeProcess
from hftops.venue.symbols import SymbolSpec
from hftops.venue.wire import decimal_texts

# After a stall of the simulator's own loop (a busy box, a GC pause) it makes up at most this much time, over
# as many ticks as MAX_TICK_MESSAGES needs: a hiccup is replayed as the burst a network delay would have made,
# an outage is not. What a longer stall does not owe is counted (`shortfall`), so a run that asked for a rate
# can tell the simulator fell short of it from the pipeline losing data. At 0.1 s a 50,000 msg/s run on a busy
# 2-core box published 49,300/s; at 0.5 s, when the box was short of CPU for a minute, 47,600 to 49,900/s.
MAX_CATCH_UP_S = 2.0
MAX_TICK_MESSAGES = 4000  # bounds one tick's work so REST and admin stay responsive at any rate

log = structlog.get_logger("venue")


@dataclass(slots=True)
class TradeBatch:
    spec: SymbolSpec
    first_id: int
    prices: list[int]
    qtys: list[int]
    sides: list[bool]
    hidden: int  # leading trades recorded and served by REST but kept off the wire (skip_ids fault)
    _texts: tuple[list[bytes], list[bytes]] | None = None

    def wire_texts(self) -> tuple[list[bytes], list[bytes]]:
        """Decimal texts of the prices and quantities that go on the wire (computed once per tick)."""
        if self._texts is None:
            spec, h = self.spec, self.hidden
            self._texts = (
                decimal_texts(self.prices[h:], spec.price_decimals, spec.price_fmt),
                decimal_texts(self.qtys[h:], spec.qty_decimals, spec.qty_fmt),
            )
        return self._texts

    @property
    def wire_first_id(self) -> int:
        return self.first_id + self.hidden


@dataclass(slots=True)
class BookBatch:
    spec: SymbolSpec
    first_id: int
    quotes: list[tuple[int, int, int, int]]


@dataclass(slots=True)
class Tick:
    time_ms: int
    trades: dict[str, TradeBatch] = field(default_factory=dict)
    books: dict[str, BookBatch] = field(default_factory=dict)

    @property
    def messages(self) -> int:
        return sum(len(b.prices) for b in self.trades.values()) + sum(len(b.quotes) for b in self.books.values())


@dataclass
class RateSchedule:
    rate: float
    burst_factor: float
    burst_every_s: float
    burst_length_s: float
    start: float

    def rate_at(self, now: float) -> float:
        in_burst = (now - self.start) % self.burst_every_s < self.burst_length_s
        return self.rate * self.burst_factor if in_burst else self.rate


class Market:
    def __init__(
        self,
        specs: list[SymbolSpec],
        ground_truth: GroundTruth,
        faults: FaultBook,
        schedule: RateSchedule,
        seed: int,
        bbo_share: float,
        book_ticker: bool = True,
    ) -> None:
        self.specs = specs
        self.ground_truth = ground_truth
        self.faults = faults
        self.schedule = schedule
        self.bbo_share = bbo_share if book_ticker else 0.0
        total_weight = sum(s.weight for s in specs)
        self._share = {s.symbol: s.weight / total_weight for s in specs}
        self.trades = {
            s.symbol: TradeProcess(s, seed, ground_truth[s.symbol].last_id, ground_truth[s.symbol].last_price_units)
            for s in specs
        }
        self.books = {s.symbol: BookProcess(s, seed, ground_truth[s.symbol].last_book_id) for s in specs}
        self._trade_carry = dict.fromkeys(self._share, 0.0)
        self._book_carry = dict.fromkeys(self._share, 0.0)
        self._last: float | None = None
        self.paused = False
        self.write_errors = 0
        self.shortfall = 0  # messages the rate asked for that a stall longer than MAX_CATCH_UP_S did not owe
        self._last_error_log = float("-inf")

    @property
    def generated_until(self) -> float:
        """The venue clock's time up to which the market has been generated (0 before the first step)."""
        return self._last or 0.0

    def behind(self, now: float) -> float:
        """Seconds of market time owed but not generated yet (the loop's lag; at most MAX_CATCH_UP_S)."""
        return 0.0 if self._last is None or self.paused else min(max(0.0, now - self._last), MAX_CATCH_UP_S)

    def step(self, now: float, time_ms: int) -> Tick | None:
        """Generate what is due since the last step; None when nothing is (paused, down, or too early)."""
        if self._last is None:
            self._last = now
            return None
        rate = self.schedule.rate_at(now)
        if self.paused or self.faults.is_down(now):
            self._last = now  # nothing is owed for a pause or an outage
            return None
        behind = now - self._last
        if behind > MAX_CATCH_UP_S:
            self.shortfall += int((behind - MAX_CATCH_UP_S) * rate)
            behind = MAX_CATCH_UP_S
        elapsed = min(behind, MAX_TICK_MESSAGES / rate)
        self._last = now - (behind - elapsed)  # what a capped tick could not generate is owed to the next
        if elapsed <= 0:
            return None
        trade_rate, book_rate = rate * (1 - self.bbo_share) * elapsed, rate * self.bbo_share * elapsed
        tick = Tick(time_ms)
        for spec in self.specs:
            symbol = spec.symbol
            if self.faults.is_paused(symbol, now):
                self._trade_carry[symbol] = self._book_carry[symbol] = 0.0
                continue
            share = self._share[symbol]
            due = self._trade_carry[symbol] + trade_rate * share
            n_trades = int(due)
            self._trade_carry[symbol] = due - n_trades
            due = self._book_carry[symbol] + book_rate * share
            n_books = int(due)
            self._book_carry[symbol] = due - n_books
            if n_trades and not self._trade(tick, spec, n_trades, now):
                continue
            if n_books:
                first_id, quotes = self.books[symbol].take(n_books, self.trades[symbol].price)
                self.ground_truth[symbol].set_last_book_id(first_id + n_books - 1)
                tick.books[symbol] = BookBatch(spec, first_id, quotes)
        return tick if (tick.trades or tick.books) else None

    def _trade(self, tick: Tick, spec: SymbolSpec, count: int, now: float) -> bool:
        process = self.trades[spec.symbol]
        saved = process.next_id, process.price
        first_id, prices, qtys, sides = process.take(count)
        try:
            self.ground_truth[spec.symbol].append(pack_trades(prices, tick.time_ms, qtys, sides))
        except OSError as exc:
            # Never publish what is not recorded: roll the process back and try again next tick.
            process.next_id, process.price = saved
            self.write_errors += 1
            if now - self._last_error_log >= 1.0:
                self._last_error_log = now
                log.error(
                    "venue.ground_truth.write_failed",
                    symbol=spec.symbol,
                    error=str(exc),
                    file=str(self.ground_truth[spec.symbol].path),
                    failures=self.write_errors,
                    hint="free disk space under the data dir; trades resume once the write succeeds",
                )
            return False
        hidden = self.faults.take_skip(spec.symbol, count)
        tick.trades[spec.symbol] = TradeBatch(spec, first_id, prices, qtys, sides, hidden)
        return True

    # ------------------------------------------------------------------ ground-truth figures

    def published(self, symbol: str) -> int:
        return self.trades[symbol].next_id - 1

    def book_published(self, symbol: str) -> int:
        return self.books[symbol].next_id - 1
