"""Batching: chunks flush at flush_max rows or after flush_ms, whichever first; failed chunks come back."""

from __future__ import annotations

from hftops.model.market import TradeRow
from hftops.model.streams import MdKind
from hftops.pipeline.collector.batcher import Batcher


class FakeMono:
    def __init__(self) -> None:
        self.now = 1_000_000_000

    def __call__(self) -> int:
        return self.now

    def advance_ms(self, ms: float) -> None:
        self.now += int(ms * 1_000_000)


def row(i: int) -> TradeRow:
    return TradeRow(i, "1", "1", False, 0, 0, 0, i, i)


def fill(batcher: Batcher, symbol: str, ids: range, live_ns: int = 0) -> None:
    for i in ids:
        batcher.add(MdKind.TRADE, symbol, row(i), i, live_ns)


def test_size_flush_is_due_at_once_and_the_rest_waits_for_its_time() -> None:
    clock = FakeMono()
    batcher = Batcher(flush_max=10, flush_ms=2.0, mono_ns=clock)
    fill(batcher, "A", range(1, 26))
    assert batcher.buffered == 25 and batcher.full_chunks == 2
    due = batcher.take_due()
    assert [len(c) for c in due] == [10, 10]
    assert [(c.lo, c.hi) for c in due] == [(1, 10), (11, 20)]
    assert batcher.take_due() == [] and batcher.buffered == 5
    clock.advance_ms(1.9)
    assert batcher.take_due() == []
    assert batcher.next_deadline_ns() == clock.now + 100_000
    clock.advance_ms(0.1)
    (last,) = batcher.take_due()
    assert (len(last), last.lo, last.hi) == (5, 21, 25)
    assert batcher.buffered == 0 and batcher.next_deadline_ns() is None


def test_time_flush_per_symbol_and_everything_on_drain() -> None:
    clock = FakeMono()
    batcher = Batcher(flush_max=100, flush_ms=2.0, mono_ns=clock)
    fill(batcher, "A", range(1, 4), live_ns=123)
    clock.advance_ms(1.5)
    fill(batcher, "B", range(1, 3))
    clock.advance_ms(0.5)
    (a,) = batcher.take_due()
    assert a.key == (MdKind.TRADE, "A") and a.live_oldest_ns == 123
    (b,) = batcher.take_due(everything=True)
    assert b.key == (MdKind.TRADE, "B") and b.live_oldest_ns == 0  # no live row: no hop sample


def test_put_back_keeps_rows_first_in_line_and_counts() -> None:
    clock = FakeMono()
    batcher = Batcher(flush_max=3, flush_ms=2.0, mono_ns=clock)
    fill(batcher, "A", range(1, 7))
    taken = batcher.take_due()
    assert batcher.buffered == 0 and batcher.full_chunks == 0
    fill(batcher, "A", range(7, 8))
    batcher.put_back(taken)
    assert batcher.buffered == 7 and batcher.full_chunks == 2
    assert batcher.pending_lo((MdKind.TRADE, "A")) == 1
    again = batcher.take_due()
    assert [(c.lo, c.hi) for c in again] == [(1, 3), (4, 6)]
    assert batcher.pending_lo((MdKind.TRADE, "A")) == 7


def test_max_chunks_bounds_one_transaction() -> None:
    batcher = Batcher(flush_max=1, flush_ms=2.0, mono_ns=FakeMono())
    fill(batcher, "A", range(10))
    assert len(batcher.take_due(max_chunks=4)) == 4
    assert len(batcher.take_due(max_chunks=100)) == 6
