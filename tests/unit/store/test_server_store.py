"""The ClickHouse-server store through clickhouse-connect.

No server runs here, so the same client code is driven through clickhouse-connect's chDB transport
(`chdb://` DSN: the real engine, in-process): DDL, token-deduplicated inserts, read-only queries and
error mapping go through exactly the calls the HTTP transport makes. Connection failures use a real
refused TCP port.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hftops.model.streams import MdKind
from hftops.model.tables import MARKET_TRADES
from hftops.store.ddl import TRADE_INSERT_COLUMNS
from hftops.store.errors import DatabaseUnavailable, InsertRejected, QueryError
from hftops.store.faults import FaultSwitch
from hftops.store.rows import market_lines
from hftops.store.server_store import ServerStore, redact
from tests.support.ports import free_port
from tests.unit.store.test_chdb_store import trades


@pytest.fixture
def server_store(tmp_path: Path, fault: FaultSwitch) -> Iterator[ServerStore]:
    store = ServerStore(f"chdb://{tmp_path / 'engine'}", "hftops", fault)
    store.open()
    try:
        yield store
    finally:
        store.close()


def body(lo: int, n: int, price: str = "1.5") -> bytes:
    return b"\n".join(market_lines(MdKind.TRADE, "sim", "BTCUSDT", trades(lo, n, price), 1))


def test_insert_token_dedup_and_readonly_query(server_store: ServerStore) -> None:
    for _ in range(2):
        server_store.insert(MARKET_TRADES, TRADE_INSERT_COLUMNS, body(1, 3), "tok")
    result = server_store.query("SELECT count(), sum(price) FROM hftops.market_trades")
    assert result.rows == [[3, "4.5"]]
    assert result.types == ["UInt64", "Decimal(38, 18)"]
    with pytest.raises(QueryError, match="READONLY"):
        server_store.query("DROP TABLE hftops.market_trades")


def test_refused_rows_and_fault_switch(server_store: ServerStore, fault: FaultSwitch) -> None:
    with pytest.raises(InsertRejected):
        server_store.insert(MARKET_TRADES, TRADE_INSERT_COLUMNS, body(1, 1, "-3"), "neg")
    fault.set_down(True)
    with pytest.raises(DatabaseUnavailable, match="fault switch"):
        server_store.insert(MARKET_TRADES, TRADE_INSERT_COLUMNS, body(1, 1), "x")
    with pytest.raises(DatabaseUnavailable):
        server_store.ping()


def test_refused_connection_is_unavailability_with_the_address_named() -> None:
    port = free_port()
    store = ServerStore(f"http://default:secret@127.0.0.1:{port}", "hftops", None, connect_timeout_s=1)
    with pytest.raises(DatabaseUnavailable, match=f"127.0.0.1:{port}") as caught:
        store.insert(MARKET_TRADES, TRADE_INSERT_COLUMNS, body(1, 1), "x")
    assert "secret" not in str(caught.value)
    with pytest.raises(DatabaseUnavailable):
        store.ping()


def test_redact_hides_only_the_password() -> None:
    assert redact("http://u:pw@h:8123/db") == "http://u:***@h:8123/db"
    assert redact("http://h:8123") == "http://h:8123"
