"""Trade id tracking: duplicates, gaps (opened, filled, split, merged), the contiguous mark, rewinds."""

from __future__ import annotations

from hftops.pipeline.collector.sequence import Seen, TradeSequence


def test_first_id_sets_the_start_and_in_order_ids_are_new() -> None:
    seq = TradeSequence("BTCUSDT")
    assert seq.contiguous_mark() is None
    assert [seq.observe(i) for i in (10, 11, 12)] == [Seen.NEW] * 3
    assert seq.next_id == 13 and seq.origin == 10 and seq.healthy and seq.contiguous_mark() == 12


def test_below_next_is_a_duplicate() -> None:
    seq = TradeSequence("BTCUSDT", next_id=5)
    assert seq.observe(5) is Seen.NEW
    assert seq.observe(5) is Seen.DUPLICATE
    assert seq.observe(1) is Seen.DUPLICATE


def test_a_skip_opens_a_gap_and_the_mark_stays_below_it() -> None:
    seq = TradeSequence("BTCUSDT", next_id=1)
    for i in (1, 2, 3, 7, 8):
        seq.observe(i)
    assert seq.gaps == [[4, 6]] and seq.missing == 3 and not seq.healthy
    assert seq.contiguous_mark() == 3
    assert seq.observe(5) is Seen.FILLED  # splits the gap
    assert seq.gaps == [[4, 4], [6, 6]]
    assert seq.observe(5) is Seen.DUPLICATE
    assert seq.observe(4) is Seen.FILLED
    assert seq.contiguous_mark() == 5
    assert seq.observe(6) is Seen.FILLED
    assert seq.healthy and seq.contiguous_mark() == 8


def test_gaps_fill_from_either_end_and_several_gaps_stay_sorted() -> None:
    seq = TradeSequence("X", next_id=0)
    seq.observe(5)
    seq.observe(10)
    assert seq.gaps == [[0, 4], [6, 9]]
    assert seq.observe(9) is Seen.FILLED and seq.observe(0) is Seen.FILLED
    assert seq.gaps == [[1, 4], [6, 8]]
    assert seq.observe(11) is Seen.NEW and seq.observe(5) is Seen.DUPLICATE


def test_overlapping_gaps_merge() -> None:
    seq = TradeSequence("X", next_id=100)
    seq.observe(110)
    seq.add_gap(95, 102)
    seq.add_gap(50, 60)
    assert seq.gaps == [[50, 60], [95, 109]]
    assert seq.contiguous_mark() == 49


def test_rewind_reopens_everything_above_and_close_removes_ids() -> None:
    seq = TradeSequence("X", next_id=1)
    for i in range(1, 21):
        seq.observe(i)
    seq.rewind(15)
    assert seq.gaps == [[15, 20]] and seq.contiguous_mark() == 14
    assert seq.close(10, 16) == 2
    assert seq.gaps == [[17, 20]]
    fresh = TradeSequence("Y")
    fresh.rewind(7)
    assert fresh.next_id == 7 and fresh.origin == 7 and fresh.healthy
