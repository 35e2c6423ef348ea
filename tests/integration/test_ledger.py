"""The ledger's live readers against real Valkey (streams, a consumer group with pending entries, ops:dlq)
and real chDB (the store's DDL, the ranges SQL); venue and recorder HTTP answers come from a small local
HTTP server speaking their documented JSON."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis
from chdb import session as chdb_session

from hftops.bus.unacked import unacked_entries
from hftops.model.market import BATCH_ENCODER, DeadLetter, TradeRow
from hftops.model.streams import DLQ_STREAM, MdKind, md_stream
from hftops.pipeline.intervals import IdRanges
from hftops.pipeline.ledger import LedgerUnavailable, Published, compute_ledger
from hftops.pipeline.ledger_sources import LiveSources
from hftops.pipeline.recorder.wal import Wal, WalRecord
from hftops.store.backend import parse_json_compact
from hftops.store.ddl import schema_statements
from tests.support.http_stub import JsonEndpoints
from tests.support.platform import TestPlatform as Platform
from tests.support.ports import free_port

DB = "hftops"
GROUP = "recorder"


class Endpoints(JsonEndpoints):
    """The venue's /admin/ground-truth and the recorder's /wal, on their configured ports."""

    def __init__(self) -> None:
        super().__init__(
            {
                "/admin/ground-truth": {"venue": "sim", "trade_stream": "aggTrade", "symbols": {}},
                "/wal": {"segments": 0, "bytes": 0, "records": 0, "ids": {}},
            }
        )
        self.ground_truth: dict[str, Any] = self.routes["/admin/ground-truth"]
        self.wal: dict[str, Any] = self.routes["/wal"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    # where the platform of `env` keeps its embedded store (TestPlatform: <root>/var)
    sess = chdb_session.Session(str(tmp_path / "platform" / "var" / "clickhouse"))
    for statement in schema_statements(DB):
        sess.query(statement)
    try:
        yield sess
    finally:
        sess.close()


@pytest.fixture
def env(tmp_path: Path, valkey: Any, store: Any) -> Iterator[tuple[Platform, Endpoints, redis.Redis]]:
    (tmp_path / "platform").mkdir(exist_ok=True)
    platform = Platform(tmp_path / "platform", {"redis": {"url": valkey.url}})
    endpoints = Endpoints()
    endpoints.serve(platform.config.simulator.rest_port)
    endpoints.serve(platform.config.recorder.query_port)
    client = valkey.client()
    try:
        yield platform, endpoints, client
    finally:
        client.close()
        endpoints.close()


def sources(platform: Platform, client: redis.Redis, store: Any, **kw: Any) -> LiveSources:
    def query(sql: str) -> dict[str, Any]:
        return parse_json_compact(store.query(sql, "JSONCompact").bytes()).as_dict()

    return LiveSources(platform.config, query=query, redis_client=client, settle_timeout_s=0.0, **kw)


def insert_trades(store: Any, symbol: str, lo: int, hi: int, venue: str = "sim") -> None:
    store.query(
        f"INSERT INTO {DB}.market_trades (venue, symbol, trade_id, price, qty, first_id, last_id, "
        "buyer_is_maker, trade_time_ms, event_time_ms, receive_time_ns, ingest_time_us) "
        f"SELECT '{venue}', '{symbol}', number, '100.5', '0.01', number, number, 0, "
        f"1790000000000 + intDiv(number, 50), 1790000000000, 0, 0 FROM numbers({lo}, {hi - lo + 1})"
    )


def trade_entry(ids: list[int]) -> dict[str, Any]:
    rows = [TradeRow(i, "100.5", "0.01", False, 1, 1, 1, i, i) for i in ids]
    return {
        "v": b"1",
        "n": len(ids),
        "lo": min(ids),
        "hi": max(ids),
        "d": BATCH_ENCODER.encode(rows),
        "t": time.time_ns(),
    }


def add_batches(client: redis.Redis, stream: str, lo: int, hi: int, size: int) -> None:
    for start in range(lo, hi + 1, size):
        ids = list(range(start, min(start + size, hi + 1)))
        ids.reverse()  # rows need not be sorted inside a batch
        client.xadd(stream, trade_entry(ids))


def dead_letter(symbol: str, ref_id: int, venue: str = "sim", kind: str = "trade") -> dict[str, Any]:
    letter = DeadLetter(
        source="collector",
        reason="bad_price",
        detail="price is NaN",
        payload=b"{}",
        time_ns=1,
        venue=venue,
        symbol=symbol,
        kind=kind,
        ref_id=ref_id,
    )
    return {"d": msgspec.msgpack.encode(letter), "source": "collector", "reason": "bad_price"}


def test_every_source_read_for_real(env: Any, store: Any) -> None:
    platform, endpoints, client = env
    endpoints.ground_truth["symbols"] = {
        "BTCUSDT": {"first_id": 1, "last_id": 5000, "published": 5000, "bbo_published": 10},
        "ETHUSDT": {"first_id": 1, "last_id": 3000, "published": 3000, "bbo_published": 10},
    }
    # BTCUSDT: stored 1-1199, 1251-3000 (+100 rows stored twice); the stream holds 2901-4000, of which the
    # recorder group read four entries (2901-3300) and acknowledged the first (2901-3000, stored);
    # the WAL holds 4001-4500; dead letters 4501 (ops:dlq, unacked) and 4502 (table); 4503-5000 missing.
    insert_trades(store, "BTCUSDT", 1, 1199)
    insert_trades(store, "BTCUSDT", 1251, 3000)
    insert_trades(store, "BTCUSDT", 2001, 2100)
    btc = md_stream("sim", MdKind.TRADE, "BTCUSDT")
    add_batches(client, btc, 2901, 4000, 100)
    client.xgroup_create(btc, GROUP, id="0")
    delivered = client.xreadgroup(GROUP, "recorder-0", {btc: ">"}, count=4)
    client.xack(btc, GROUP, delivered[0][1][0][0])
    endpoints.wal["ids"] = {
        "sim:trade:BTCUSDT": [[4001, 4500]],
        "sim:bbo:BTCUSDT": [[1, 99]],
        "other:trade:BTCUSDT": [[4501, 5000]],
    }
    client.xadd(DLQ_STREAM, dead_letter("BTCUSDT", 4501))
    client.xadd(DLQ_STREAM, dead_letter("BTCUSDT", -1))
    client.xadd(DLQ_STREAM, dead_letter("BTCUSDT", 4999, kind="bbo"))
    # the recorder acked 4501's letter into its WAL (database down): still in ops:dlq, so it still counts
    client.xgroup_create(DLQ_STREAM, GROUP, id="0")
    letters = client.xreadgroup(GROUP, "recorder-0", {DLQ_STREAM: ">"})[0][1]
    client.xack(DLQ_STREAM, GROUP, *[entry_id for entry_id, _ in letters])
    store.query(
        f"INSERT INTO {DB}.dead_letters (id, source, reason, detail, venue, symbol, kind, ref_id, "
        "payload_b64, time_ns, ingest_time_us) VALUES ('1-0', 'recorder', 'bad_price', 'x', 'sim', "
        "'BTCUSDT', 'trade', 4502, '', 1, 1)"
    )
    # ETHUSDT: stored 1-2000, the rest in a stream no consumer group has read yet.
    insert_trades(store, "ETHUSDT", 1, 2000)
    add_batches(client, md_stream("sim", MdKind.TRADE, "ETHUSDT"), 2001, 3000, 256)
    # Another venue's rows never count.
    insert_trades(store, "BTCUSDT", 4503, 5000, venue="other")

    with sources(platform, client, store) as live:
        ledger = compute_ledger(platform.config, live)
    out = ledger.to_dict()
    btc_row, eth_row = out["symbols"]["sim:BTCUSDT"], out["symbols"]["sim:ETHUSDT"]
    assert btc_row["published"] == 5000
    assert btc_row["stored"] == 2949
    assert btc_row["pending"] == 1000
    assert btc_row["wal"] == 500
    assert btc_row["dlq"] == 2
    assert btc_row["missing_ranges"] == [[1200, 1250], [4503, 5000]]
    assert btc_row["missing"] == 51 + 498
    # ReplacingMergeTree: readers see FINAL, so the rows inserted twice are not duplicates to them
    assert btc_row["duplicates"] == 0
    assert btc_row["extra"] == 0
    assert eth_row == {
        **eth_row,
        "published": 3000,
        "stored": 2000,
        "pending": 1000,
        "missing": 0,
        "duplicates": 0,
        "extra": 0,
    }
    assert not ledger.balanced and ledger.exit_code == 1
    assert ledger.summary_line() == "ledger NOT balanced: BTCUSDT missing 1200-1250, 4503-5000 (549 ids)"


def test_balanced_pipeline_and_plain_merge_tree_duplicates(env: Any, store: Any) -> None:
    platform, endpoints, client = env
    endpoints.ground_truth["symbols"] = {"BTCUSDT": {"first_id": 1, "last_id": 1000, "published": 1000}}
    insert_trades(store, "BTCUSDT", 1, 1000)
    with sources(platform, client, store) as live:
        ledger = compute_ledger(platform.config, live)
    assert ledger.balanced and ledger.exit_code == 0
    assert ledger.to_dict()["symbols"]["sim:ETHUSDT"]["published"] == 0  # configured, nothing published

    # A plain MergeTree keeps every row: repeats are duplicates.
    store.query(f"CREATE TABLE {DB}.plain AS {DB}.market_trades ENGINE = MergeTree ORDER BY (venue, symbol, trade_id)")
    store.query(f"EXCHANGE TABLES {DB}.market_trades AND {DB}.plain")
    insert_trades(store, "BTCUSDT", 1, 1000)
    insert_trades(store, "BTCUSDT", 10, 12)
    with sources(platform, client, store) as live:
        ledger = compute_ledger(platform.config, live)
    assert ledger.to_dict()["symbols"]["sim:BTCUSDT"]["duplicates"] == 3
    assert not ledger.balanced and "BTCUSDT 3 duplicates" in ledger.summary_line()


def test_wal_without_recorder(env: Any, store: Any) -> None:
    platform, endpoints, client = env
    endpoints.ground_truth["symbols"] = {"BTCUSDT": {"first_id": 1, "last_id": 30, "published": 30}}
    insert_trades(store, "BTCUSDT", 1, 10)
    endpoints.stop(platform.config.recorder.query_port)
    wal_dir = platform.config.data_dir / "wal"
    # Recorder down, no WAL segment: a sure "nothing in the WAL".
    with sources(platform, client, store) as live:
        ledger = compute_ledger(platform.config, live)
    assert not ledger.unknown and ledger.to_dict()["symbols"]["sim:BTCUSDT"]["missing"] == 20

    # Recorder down, segments present: the segment files are read.
    wal = Wal(wal_dir, wal_dir / "archive", segment_bytes=1 << 20, archive_max_bytes=1 << 20)
    wal.recover()
    wal.append(
        WalRecord(
            table="market_trades",
            token="t",
            body=b"",
            rows=20,
            created_ns=1,
            dlq_ids=[],
            ids={"sim:trade:BTCUSDT": [(11, 30)], "sim:bbo:BTCUSDT": [(1, 5)]},
        )
    )
    wal.close()
    with sources(platform, client, store) as live:
        ledger = compute_ledger(platform.config, live)
    row = ledger.to_dict()["symbols"]["sim:BTCUSDT"]
    assert ledger.balanced and (row["stored"], row["wal"]) == (10, 20)


def test_unreachable_sources(env: Any, store: Any, valkey: Any) -> None:
    platform, endpoints, client = env
    endpoints.ground_truth["symbols"] = {"BTCUSDT": {"first_id": 1, "last_id": 10, "published": 10}}
    insert_trades(store, "BTCUSDT", 1, 10)
    valkey.stop(kill=True)
    with sources(platform, client, store) as live:
        ledger = compute_ledger(platform.config, live)
    assert ledger.exit_code == 2
    assert set(ledger.unknown) == {"pending", "dlq"}
    assert "redis not reachable at" in ledger.unknown["pending"]

    endpoints.close()
    with sources(platform, client, store) as live, pytest.raises(LedgerUnavailable) as info:
        compute_ledger(platform.config, live)
    assert "venue not reachable" in info.value.unknown["published"]


def test_unacked_entries_pages_through_pending_and_undelivered(valkey: Any) -> None:
    client = valkey.client()
    stream = "md:sim:trade:XRPUSDT"
    for i in range(2500):
        client.xadd(stream, {"i": str(i)})
    client.xgroup_create(stream, GROUP, id="0")
    read = client.xreadgroup(GROUP, "c", {stream: ">"}, count=1800)[0][1]
    client.xack(stream, GROUP, *[entry_id for entry_id, _ in read[:700]])
    seen = [int(fields[b"i"]) for _, fields in unacked_entries(client, stream, GROUP)]
    assert seen == list(range(700, 2500))
    assert list(unacked_entries(client, "md:sim:trade:NOSUCH", GROUP)) == []
    client.close()


def test_ranges_sql_on_many_rows(env: Any, store: Any) -> None:
    """The stored-ranges SQL finds every hole exactly (300k rows here; 3M measured in the report)."""
    platform, endpoints, client = env
    endpoints.ground_truth["symbols"] = {"BTCUSDT": {"first_id": 1, "last_id": 300_000, "published": 300_000}}
    holes = [(1, 1), (5000, 5000), (123_456, 124_000), (299_999, 300_000)]
    kept = IdRanges.single(1, 300_000) - IdRanges(holes)
    for lo, hi in kept.ranges():
        insert_trades(store, "BTCUSDT", lo, hi)
    with sources(platform, client, store) as live:
        started = time.perf_counter()
        stored = live.stored()
        elapsed = time.perf_counter() - started
    assert stored["sim:BTCUSDT"].ids == kept
    assert elapsed < 5.0


def test_settle_waits_for_the_collector_cursor_within_its_bound(env: Any, store: Any) -> None:
    platform, _, client = env
    now = [0.0]
    cursor = "md:cursor:sim"

    def sleep(seconds: float) -> None:
        now[0] += seconds
        if now[0] >= 0.1:  # the collector catches up a moment later
            client.hset(cursor, "BTCUSDT", 500)

    published = {"sim:BTCUSDT": Published(1, 500), "sim:ETHUSDT": Published(1, 80)}
    live = LiveSources(
        platform.config,
        query=lambda sql: {},
        redis_client=client,
        settle_timeout_s=1.0,
        clock=lambda: now[0],
        sleep=sleep,
    )
    client.hset(cursor, mapping={"BTCUSDT": 400})  # ETHUSDT: no cursor, no collector behind it
    live.settle(published)
    assert 0.1 <= now[0] < 0.2

    now[0] = 0.0
    client.hset(cursor, mapping={"BTCUSDT": 400, "ETHUSDT": 10})  # stays behind: a gap being backfilled
    live = LiveSources(
        platform.config,
        query=lambda sql: {},
        redis_client=client,
        settle_timeout_s=1.0,
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    live.settle(published)
    assert 1.0 <= now[0] < 1.1


def test_real_binance_venue_published_from_rest(tmp_path: Path, valkey: Any, store: Any) -> None:
    rest = JsonEndpoints({"/fapi/v1/aggTrades": [{"a": 2000, "p": "1", "q": "1", "f": 1, "l": 1, "T": 1, "m": True}]})
    port = free_port()
    rest.serve(port)
    (tmp_path / "platform").mkdir(exist_ok=True)
    platform = Platform(
        tmp_path / "platform",
        {
            "redis": {"url": valkey.url},
            "venue": {
                "kind": "binance_futures",
                "symbols": ["BTCUSDT"],
                "rest_url": f"http://127.0.0.1:{port}",
                "ws_url": "wss://fstream.binance.com",
            },
        },
    )
    insert_trades(store, "BTCUSDT", 1500, 1800)
    client = valkey.client()
    add_batches(client, md_stream("sim", MdKind.TRADE, "BTCUSDT"), 1801, 1990, 100)
    try:
        with sources(platform, client, store) as live:
            ledger = compute_ledger(platform.config, live)
    finally:
        rest.close()
        client.close()
    row = ledger.to_dict()["symbols"]["sim:BTCUSDT"]
    # from the first id held (1500) to the newest id on the exchange (2000)
    assert (row["published"], row["stored"], row["pending"]) == (501, 301, 190)
    assert row["missing_ranges"] == [[1991, 2000]]
