"""The recorder process stores the engine's and the safety layer's events (exec:*, ops:events:*) exactly once:
re-published events, a database outage (WAL then replay), kill -9 with re-delivery, and malformed entries
(dead letters with a counter, never a crash)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from hftops.model.streams import ExecKind, OpsKind
from hftops.model.tables import EVENT_TABLES, FILLS
from tests.integration.recorder.conftest import RecorderProcess, lag, pending
from tests.support.cli import trading
from tests.support.events import ROWS_PER_SAMPLE, fill, one_of_each, order, publish, stream_of
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(180)

ALL_STREAMS = [stream_of(k) for k in (*ExecKind, *OpsKind)]


def table_counts(recorder: RecorderProcess) -> dict[str, tuple[int, int]]:
    union = " UNION ALL ".join(f"SELECT '{t}', count(), uniqExact(event_key) FROM {t}" for t in EVENT_TABLES)
    return {str(t): (int(n), int(u)) for t, n, u in recorder.query(union)}


def expected(samples: int) -> dict[str, tuple[int, int]]:
    return {t: (n * samples, n * samples) for t, n in ROWS_PER_SAMPLE.items()}


def drained(client: Any) -> bool:
    return all(pending(client, s) == 0 and lag(client, s) == 0 for s in ALL_STREAMS)


def test_every_event_kind_is_stored_once_and_malformed_entries_are_dead_lettered(
    recorder: RecorderProcess, valkey: Any
) -> None:
    client = valkey.client()
    recorder.start()
    url = recorder.platform.config.redis_url
    publish(url, [e for n in range(1, 4) for e in one_of_each(n)])
    publish(url, one_of_each(2) + one_of_each(3))  # the engine re-publishing what it already sent
    fills = stream_of(ExecKind.FILLS)
    evidence = stream_of(OpsKind.EVIDENCE)
    client.xadd(fills, {"d": b"\xc1 not msgpack", "kind": "SELL"})
    client.xadd(fills, {"kind": "SELL"})
    client.xadd(evidence, {"d": msgspec.msgpack.encode({"id": "x", "time_ns": "soon"})})
    client.xadd(stream_of(ExecKind.ORDERS), {"d": msgspec.msgpack.encode(order(9)).replace(b"ACK", b"ZZZ")})
    publish(url, [(ExecKind.FILLS, fill(7, time_ns=5))])  # a time in 1970: refused, named

    wait_for(lambda: table_counts(recorder) == expected(3), timeout_s=30, what="3 samples of each kind, once")
    wait_for(
        lambda: recorder.query("SELECT count() FROM dead_letters")[0][0] == 5,
        timeout_s=15,
        what="the 5 malformed event entries dead-lettered",
    )
    letters = recorder.query("SELECT reason, kind, venue, detail FROM dead_letters ORDER BY reason, kind, detail")
    assert [(r[0], r[1]) for r in letters] == [
        ("invalid_event", "exec:fills"),
        ("missing_field", "exec:fills"),
        ("undecodable_entry", "exec:fills"),
        ("undecodable_entry", "exec:orders"),
        ("undecodable_entry", "ops:evidence"),
    ]
    assert "time_ns 5 is not a nanosecond time" in letters[0][3]
    stats = recorder.get("/stats")
    assert stats["counters"]["dead_letters"] == {"invalid_event": 1, "missing_field": 1, "undecodable_entry": 3}
    assert stats["counters"]["duplicates_filtered"][FILLS] == 2
    ((qty, price, fee, maker),) = recorder.query("SELECT qty, price, fee, is_maker FROM fills WHERE trade_id = 2")
    assert (qty, price, fee, maker) == ("0.002", "101.25", "0.000081", True)
    (evidence_row,) = recorder.query(
        "SELECT trigger_values, positions, log_tail FROM autonomy_evidence WHERE id='ev-1'"
    )
    assert evidence_row == [
        {"db_write_age_s": "61.2"},
        [{"symbol": "BTCUSDT", "qty": "0.004"}],
        ["line 'one'", "line \\two\\"],
    ]
    wait_for(lambda: drained(client), timeout_s=10, what="every event stream acked")
    wait_for(lambda: all(client.xlen(s) == 0 for s in ALL_STREAMS), timeout_s=10, what="acked entries trimmed")
    assert recorder.stop()[0] == 0


def test_database_outage_walls_events_and_replays_them_exactly_once(recorder: RecorderProcess, valkey: Any) -> None:
    client = valkey.client()
    platform = recorder.platform
    url = platform.config.redis_url
    recorder.start()
    publish(url, one_of_each(1))
    wait_for(lambda: table_counts(recorder) == expected(1), timeout_s=20, what="first sample stored")
    trading(platform, "db", "fault", "down", check=True)
    publish(url, one_of_each(2) + one_of_each(3))
    wait_for(lambda: drained(client), timeout_s=20, what="outage events acked after the WAL fsync")
    assert recorder.get("/wal")["records"] >= 1
    publish(url, one_of_each(1) + one_of_each(3))  # stored before, and waiting in the WAL: both filtered
    wait_for(lambda: drained(client), timeout_s=20, what="re-published events acked")
    trading(platform, "db", "fault", "up", check=True)
    wait_for(lambda: recorder.get("/wal")["segments"] == 0, timeout_s=20, what="WAL replayed")
    assert table_counts(recorder) == expected(3)
    duplicates = recorder.get("/stats")["counters"]["duplicates_filtered"]
    assert {t: duplicates.get(t) for t in ROWS_PER_SAMPLE} == {t: 2 * n for t, n in ROWS_PER_SAMPLE.items()}
    assert recorder.stop()[0] == 0


def test_kill9_with_events_in_flight_and_in_the_wal_stores_each_once(recorder: RecorderProcess, valkey: Any) -> None:
    client = valkey.client()
    platform = recorder.platform
    url = platform.config.redis_url
    recorder.start()
    publish(url, [(ExecKind.FILLS, fill(i)) for i in range(1, 3001)])
    wait_for(lambda: table_counts(recorder)[FILLS][0] > 0, timeout_s=20, interval_s=0.01, what="some fills stored")
    recorder.kill9()  # delivered, maybe inserted, not acked
    publish(url, [(ExecKind.FILLS, fill(i)) for i in range(2900, 4001)])
    recorder.start()
    wait_for(lambda: table_counts(recorder)[FILLS] == (4000, 4000), timeout_s=30, what="4000 fills once")
    trading(platform, "db", "fault", "down", check=True)
    publish(url, [(ExecKind.FILLS, fill(i)) for i in range(3990, 5001)])
    wait_for(lambda: recorder.get("/wal")["records"] > 0, timeout_s=20, what="WAL written")
    recorder.kill9()
    trading(platform, "db", "fault", "up", check=True)
    publish(url, [(ExecKind.FILLS, fill(i)) for i in range(1, 5001, 7)])  # a resync re-sending old fills
    recorder.start()
    wait_for(lambda: table_counts(recorder)[FILLS] == (5000, 5000), timeout_s=30, what="5000 fills once")
    wait_for(lambda: drained(client), timeout_s=15, what="all acked")
    assert recorder.query("SELECT min(trade_id), max(trade_id) FROM fills") == [[1, 5000]]
    assert recorder.get("/stats")["counters"]["duplicates_filtered"][FILLS] >= 715  # the re-sent ones, at least
    assert recorder.stop()[0] == 0


def test_a_drain_waits_for_the_event_streams_too(rec_platform: Any, valkey: Any) -> None:
    from hftops.control.dataflow import drain_state

    client = valkey.client()
    config = rec_platform.config
    fills = stream_of(ExecKind.FILLS)
    assert drain_state(config) == (True, {})
    publish(config.redis_url, [(ExecKind.FILLS, fill(1))])
    drained, remaining = drain_state(config)
    assert not drained and remaining[fills]["lag"] == 1  # written, no recorder group yet
    client.xgroup_create(fills, "recorder", id="0")
    ((_, [(entry_id, _)]),) = client.xreadgroup("recorder", "recorder-0", {fills: ">"})
    drained, remaining = drain_state(config)
    assert not drained and remaining == {fills: {"pending": 1, "lag": 0}}
    client.xack(fills, "recorder", entry_id)
    assert drain_state(config) == (True, {})
