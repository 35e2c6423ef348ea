"""store.reader without a recorder: the embedded store is opened for the one query, unless it is locked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hftops.config.paths import DataPaths
from hftops.model.tables import MARKET_TRADES
from hftops.store import reader
from hftops.store.chdb_store import ChdbStore, StoreLocked, chdb_locked
from hftops.store.ddl import TRADE_INSERT_COLUMNS
from hftops.store.errors import QueryError, StoreError

if TYPE_CHECKING:
    from tests.support.platform import TestPlatform
from tests.support.waiting import wait_for
from tests.unit.store.test_chdb_store import trade_body, trades


def test_direct_read_when_no_recorder_answers(platform: TestPlatform) -> None:
    config = platform.config
    with pytest.raises(StoreError, match="no database"):
        reader.query(config, "SELECT 1")
    store = ChdbStore(DataPaths(config.data_dir).clickhouse, config.clickhouse.database)
    store.open()
    store.insert(MARKET_TRADES, TRADE_INSERT_COLUMNS, trade_body(trades(1, 5)), "t")
    store.close()
    result = reader.query(config, "SELECT count(), max(trade_id), any(price) FROM market_trades")
    assert result == {
        "columns": ["count()", "max(trade_id)", "any(price)"],
        "types": ["UInt64", "UInt64", "Decimal(38, 18)"],
        "rows": [[5, 5, "65000.12345678"]],
    }
    with pytest.raises(QueryError, match="READONLY"):
        reader.query(config, "TRUNCATE TABLE market_trades")
    assert reader.query(config, "SELECT count() FROM market_trades")["rows"] == [[5]]
    assert not chdb_locked(DataPaths(config.data_dir).clickhouse)  # released after each read


def test_a_locked_store_without_a_recorder_is_named_not_opened(platform: TestPlatform, tmp_path: Path) -> None:
    path = DataPaths(platform.config.data_dir).clickhouse
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from chdb import session; s = session.Session(sys.argv[1]); "
            "print('open', flush=True); time.sleep(60)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        wait_for(lambda: chdb_locked(path), timeout_s=10, what="chDB lock held by the child")
        with pytest.raises(StoreLocked, match="does not answer"):
            reader.query(platform.config, "SELECT 1")
    finally:
        holder.kill()
        holder.wait()
