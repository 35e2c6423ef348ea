"""The embedded store against real chDB: schema, inserts with tokens, refusals, the fault switch, reads."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hftops.model.market import BboRow, DeadLetter, TradeRow
from hftops.model.streams import MdKind
from hftops.model.tables import DEAD_LETTERS, MARKET_BBO, MARKET_TRADES
from hftops.store.chdb_store import ChdbStore
from hftops.store.ddl import BBO_INSERT_COLUMNS, DEAD_LETTER_INSERT_COLUMNS, TRADE_INSERT_COLUMNS
from hftops.store.errors import DatabaseUnavailable, InsertRejected, QueryError
from hftops.store.faults import FaultSwitch
from hftops.store.rows import dead_letter_line, market_lines

T_MS = 1_700_000_000_123
T_NS = 1_700_000_000_123_456_789


def trades(lo: int, n: int, price: str = "65000.12345678") -> list[TradeRow]:
    return [TradeRow(i, price, "0.001", i % 2 == 0, T_MS, T_MS + 1, T_NS, i, i + 2) for i in range(lo, lo + n)]


def trade_body(rows: list[TradeRow], symbol: str = "BTCUSDT") -> bytes:
    return b"\n".join(market_lines(MdKind.TRADE, "sim", symbol, rows, 1_700_000_001_000_000))


def count(store: ChdbStore, table: str) -> int:
    return int(store.query(f"SELECT count() FROM {table}").rows[0][0])


def test_schema_is_idempotent_and_ordered_by_venue_ids(tmp_path: Path, fault: FaultSwitch) -> None:
    for _ in range(2):  # the second open re-runs every CREATE against existing tables
        store = ChdbStore(tmp_path / "ch", "hftops", fault)
        store.open()
        try:
            tables = {
                r[0]: r[1:]
                for r in store.query(
                    "SELECT name, engine, sorting_key, partition_key FROM system.tables WHERE database = 'hftops'"
                ).rows
            }
        finally:
            store.close()
    assert tables[MARKET_TRADES] == ["ReplacingMergeTree", "venue, symbol, trade_id", "toDate(trade_time)"]
    assert tables[MARKET_BBO] == ["ReplacingMergeTree", "venue, symbol, update_id", "toDate(event_time)"]
    assert tables[DEAD_LETTERS][0:2] == ["ReplacingMergeTree", "id"]


def test_market_tables_merge_wider_in_the_embedded_store_also_when_created_before(tmp_path: Path) -> None:
    def merge_settings(store: ChdbStore) -> dict[str, bool]:
        rows = store.query(
            "SELECT name, create_table_query LIKE '%merge\\_selector\\_base = 20%' FROM system.tables "
            "WHERE database = 'hftops' AND name IN ('market_trades', 'market_bbo', 'dead_letters')"
        ).rows
        return {name: bool(found) for name, found in rows}

    store = ChdbStore(tmp_path / "ch", "hftops")
    store.open()
    try:
        assert merge_settings(store) == {MARKET_TRADES: True, MARKET_BBO: True, DEAD_LETTERS: False}
        for table in (MARKET_TRADES, MARKET_BBO):  # as a data directory from before the setting
            store._write.query(f"ALTER TABLE hftops.{table} RESET SETTING merge_selector_base")
        assert merge_settings(store)[MARKET_TRADES] is False
    finally:
        store.close()
    store.open()
    try:
        assert merge_settings(store) == {MARKET_TRADES: True, MARKET_BBO: True, DEAD_LETTERS: False}
    finally:
        store.close()


def test_rows_round_trip_with_exact_decimals_and_times(chdb_store: ChdbStore) -> None:
    chdb_store.insert(MARKET_TRADES, TRADE_INSERT_COLUMNS, trade_body(trades(1, 2)), "t1")
    result = chdb_store.query(
        "SELECT venue, symbol, trade_id, price, qty, taker_side, first_id, last_id, toString(trade_time), "
        "toString(event_time), toString(receive_time), toString(ingest_time) FROM market_trades ORDER BY trade_id"
    )
    assert result.rows[0] == [
        "sim",
        "BTCUSDT",
        1,
        "65000.12345678",
        "0.001",
        "buy",
        1,
        3,
        "2023-11-14 22:13:20.123",
        "2023-11-14 22:13:20.124",
        "2023-11-14 22:13:20.123456789",
        "2023-11-14 22:13:21.000000",
    ]
    assert result.rows[1][5] == "sell"  # buyer_is_maker: the taker sold
    bbo = BboRow(7, "1.5", "2", "1.6", "0", T_MS, T_MS, T_NS)
    chdb_store.insert(
        MARKET_BBO, BBO_INSERT_COLUMNS, b"\n".join(market_lines(MdKind.BBO, "sim", "ETHUSDT", [bbo], 1)), "b1"
    )
    assert chdb_store.query("SELECT update_id, bid_price, ask_qty FROM market_bbo").rows == [[7, "1.5", "0"]]


def test_same_token_is_stored_once_even_across_day_partitions(chdb_store: ChdbStore) -> None:
    rows = [*trades(1, 3), TradeRow(9, "1", "1", True, T_MS + 3 * 86_400_000, T_MS, T_NS, 9, 9)]
    body = trade_body(rows)
    for _ in range(3):
        chdb_store.insert(MARKET_TRADES, TRADE_INSERT_COLUMNS, body, "same-token")
    assert count(chdb_store, MARKET_TRADES) == 4
    chdb_store.insert(MARKET_TRADES, TRADE_INSERT_COLUMNS, trade_body(trades(100, 1)), "other-token")
    assert count(chdb_store, MARKET_TRADES) == 5


@pytest.mark.parametrize("price", ["abc", "-1", "0", "nan", "1e400", ""])
def test_bad_rows_are_refused_as_data_not_as_an_outage(chdb_store: ChdbStore, price: str) -> None:
    with pytest.raises(InsertRejected) as caught:
        chdb_store.insert(MARKET_TRADES, TRADE_INSERT_COLUMNS, trade_body(trades(1, 2, price)), f"bad-{price}")
    assert caught.value.code is not None
    assert count(chdb_store, MARKET_TRADES) == 0


def test_fault_switch_makes_inserts_and_probes_fail_but_not_reads(chdb_store: ChdbStore, fault: FaultSwitch) -> None:
    fault.set_down(True)
    with pytest.raises(DatabaseUnavailable, match="trading db fault up"):
        chdb_store.insert(MARKET_TRADES, TRADE_INSERT_COLUMNS, trade_body(trades(1, 1)), "x")
    with pytest.raises(DatabaseUnavailable):
        chdb_store.ping()
    assert count(chdb_store, MARKET_TRADES) == 0
    fault.set_down(False)
    chdb_store.ping()
    chdb_store.insert(MARKET_TRADES, TRADE_INSERT_COLUMNS, trade_body(trades(1, 1)), "x")
    assert count(chdb_store, MARKET_TRADES) == 1


@pytest.mark.parametrize(
    "sql",
    [
        "DROP TABLE market_trades",
        "INSERT INTO market_trades (venue) VALUES ('x')",
        "SELECT 1; DROP TABLE market_trades",
        "SELECT * FROM file('/etc/hostname', 'LineAsString')",
        "SET readonly = 0",
        "SELEC 1",
    ],
)
def test_reads_are_read_only_and_refusals_carry_clickhouse_messages(chdb_store: ChdbStore, sql: str) -> None:
    with pytest.raises(QueryError, match="Code: "):
        chdb_store.query(sql)
    assert chdb_store.query("SELECT count() FROM market_trades").rows == [[0]]


def test_dead_letter_payload_is_kept_byte_exact(chdb_store: ChdbStore) -> None:
    payload = bytes(range(256))
    letter = DeadLetter(
        "collector", "bad_json", "detail ünïcode", payload, time.time_ns(), "sim", "BTCUSDT", "trade", 42
    )
    chdb_store.insert(DEAD_LETTERS, DEAD_LETTER_INSERT_COLUMNS, dead_letter_line("1-0", letter, 5), "d1")
    row = chdb_store.query("SELECT id, reason, detail, ref_id, base64Encode(payload) FROM dead_letters").rows[0]
    import base64

    assert row[:4] == ["1-0", "bad_json", "detail ünïcode", 42]
    assert base64.b64decode(row[4]) == payload
