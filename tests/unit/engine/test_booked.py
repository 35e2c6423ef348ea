"""A restart books every venue fill exactly once: the checkpoint's floor plus the trade ids booked just before it."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

from hftops.engine.booked import WINDOW_NS, BookedFills
from hftops.engine.checkpoint import checkpoint_path, load_checkpoint, write_checkpoint
from hftops.model.orders import Fill, Side

S = 1_000_000_000
W = 1_800_000_000 * S  # the checkpoint's write time


def fill(trade_id: int, time_ns: int, symbol: str = "BTCUSDT") -> Fill:
    return Fill(
        strategy_id="mm1",
        symbol=symbol,
        side=Side.BUY,
        qty=Decimal("0.01"),
        price=Decimal(100),
        trade_id=trade_id,
        time_ns=time_ns,
    )


def test_a_fill_older_than_the_write_but_not_in_the_checkpoint_is_booked_at_restart() -> None:
    before = BookedFills(floor_ns=0)
    before.record(fill(1, W - 5 * S), now_ns=W - 5 * S)  # booked before the write
    listed = before.for_checkpoint(W)
    assert listed == {"BTCUSDT": [1]}
    restarted = BookedFills.from_checkpoint(W, listed)
    assert restarted.already_booked(fill(1, W - 5 * S))  # in the checkpoint: not again
    # made by the venue 2 ms before the write, delivered after it: time alone would call it booked
    assert not restarted.already_booked(fill(2, W - 2_000_000))
    assert restarted.already_booked(fill(0, W - WINDOW_NS))  # older than the window: in the checkpoint


def test_a_venue_clock_ahead_of_ours_does_not_book_a_fill_twice() -> None:
    before = BookedFills(floor_ns=0)
    before.record(fill(7, W + 800_000_000), now_ns=W - S)  # venue stamps it 0.8 s after our write time
    restarted = BookedFills.from_checkpoint(W, before.for_checkpoint(W))
    assert restarted.already_booked(fill(7, W + 800_000_000))
    assert not restarted.already_booked(fill(8, W + 900_000_000))


def test_listed_ids_are_carried_into_the_next_checkpoint_until_they_leave_the_window() -> None:
    restarted = BookedFills.from_checkpoint(W, {"ETHUSDT": [3, 4]})
    restarted.record(fill(5, W + S, "ETHUSDT"), now_ns=W + S)
    assert restarted.for_checkpoint(W + 2 * S) == {"ETHUSDT": [3, 4, 5]}
    assert restarted.for_checkpoint(W + WINDOW_NS + 2 * S) == {}


def test_checkpoint_keeps_booked_ids_and_reads_files_written_before_the_field(tmp_path: Path) -> None:
    path = checkpoint_path(tmp_path)
    write_checkpoint(path, [], date(2026, 11, 23), W, Decimal(0), {"BTCUSDT": [1, 2]})
    body = load_checkpoint(path)
    assert body is not None and body.booked_trade_ids == {"BTCUSDT": [1, 2]}
    write_checkpoint(path, [], date(2026, 11, 23), W, Decimal(0))
    assert "booked_trade_ids" not in json.loads(path.read_text())["body"]  # the old shape, same checksum
    body = load_checkpoint(path)
    assert body is not None and body.booked_trade_ids == {}
