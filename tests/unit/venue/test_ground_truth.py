"""Ground truth: appended before publishing, reloaded after a restart, sliced by id for REST backfill."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import pytest

from hftops.venue.ground_truth import RECORD_BYTES, GroundTruth, GroundTruthError, pack_trades


def _append(truth: GroundTruth, symbol: str, first_price: int, count: int, time_ms: int = 1000) -> None:
    prices = [first_price + i for i in range(count)]
    truth[symbol].append(
        pack_trades(prices, time_ms, [i + 1 for i in range(count)], [i % 2 == 0 for i in range(count)])
    )


def test_rows_by_id_range(tmp_path: Path) -> None:
    truth = GroundTruth(tmp_path, ("BTCUSDT",))
    _append(truth, "BTCUSDT", 100, 10)
    ledger = truth["BTCUSDT"]
    assert ledger.last_id == 10 and ledger.last_price_units == 109
    assert list(ledger.rows(3, 4)) == [(3, 102, 1000, 3, True), (4, 103, 1000, 4, False)]
    assert [r[0] for r in ledger.rows(0, 100)] == list(range(1, 11))  # clipped to what exists
    assert list(ledger.rows(11, 20)) == []


def test_reload_continues_where_the_last_run_stopped(tmp_path: Path) -> None:
    truth = GroundTruth(tmp_path, ("BTCUSDT", "ETHUSDT"))
    _append(truth, "BTCUSDT", 500, 7)
    truth["ETHUSDT"].set_last_book_id(33)
    truth.close()

    again = GroundTruth(tmp_path, ("BTCUSDT", "ETHUSDT", "SOLUSDT"))
    assert again["BTCUSDT"].last_id == 7 and again["BTCUSDT"].last_price_units == 506
    assert again["ETHUSDT"].last_id == 0 and again["ETHUSDT"].last_book_id == 33
    assert again["SOLUSDT"].last_id == 0 and again["SOLUSDT"].last_price_units is None
    _append(again, "BTCUSDT", 900, 2)
    assert [r[1] for r in again["BTCUSDT"].rows(6, 9)] == [505, 506, 900, 901]
    assert (tmp_path / "trades-BTCUSDT.bin").stat().st_size == 9 * RECORD_BYTES


def test_a_torn_trailing_record_is_dropped_on_reload(tmp_path: Path) -> None:
    truth = GroundTruth(tmp_path, ("BTCUSDT",))
    _append(truth, "BTCUSDT", 1, 3)
    truth.close()
    with open(tmp_path / "trades-BTCUSDT.bin", "ab") as handle:
        handle.write(b"\x01" * (RECORD_BYTES - 5))
    again = GroundTruth(tmp_path, ("BTCUSDT",))
    assert again["BTCUSDT"].last_id == 3
    assert os.path.getsize(tmp_path / "trades-BTCUSDT.bin") == 3 * RECORD_BYTES


def test_a_foreign_format_is_refused_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "meta.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(GroundTruthError, match="move the directory aside"):
        GroundTruth(tmp_path, ("BTCUSDT",))


def test_many_trades_cost_file_bytes_not_process_memory(tmp_path: Path) -> None:
    truth = GroundTruth(tmp_path, ("BTCUSDT",))
    before = tracemalloc.start() or tracemalloc.get_traced_memory()[0]
    for batch in range(300):
        _append(truth, "BTCUSDT", batch * 1000, 1000)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    ledger = truth["BTCUSDT"]
    assert ledger.last_id == 300_000 and grown < 1_000_000  # 300k trades, under 1 MB of Python memory
    assert (tmp_path / "trades-BTCUSDT.bin").stat().st_size == 300_000 * RECORD_BYTES == 7_200_000
    assert [r[:2] for r in ledger.rows(299_999, 300_000)] == [(299_999, 299_998), (300_000, 299_999)]
