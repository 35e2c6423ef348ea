"""The recorder process end to end: entries in valkey -> rows in chDB exactly once, acked, trimmed;
poison -> dead_letters; database outage -> WAL -> replay; disk guard; SIGTERM."""

from __future__ import annotations

import httpx
import msgspec
import pytest

from hftops.model.market import BATCH_ENCODER, DeadLetter
from hftops.model.streams import DLQ_STREAM, MdKind, md_stream
from hftops.pipeline.recorder.wal import segment_files
from tests.integration.recorder.conftest import RecorderProcess, bbo_rows, entry, lag, pending, xadd_trades
from tests.support.cli import trading
from tests.support.waiting import wait_for

BTC = md_stream("sim", MdKind.TRADE, "BTCUSDT")
ETH = md_stream("sim", MdKind.TRADE, "ETHUSDT")
BTC_BBO = md_stream("sim", MdKind.BBO, "BTCUSDT")


def test_entries_are_stored_once_acked_trimmed_and_poison_dead_lettered(
    recorder: RecorderProcess, valkey: object
) -> None:
    client = valkey.client()  # type: ignore[attr-defined]
    recorder.start()
    xadd_trades(client, "BTCUSDT", list(range(1, 2001)))
    xadd_trades(client, "ETHUSDT", list(range(1, 1001)), per_entry=7)
    xadd_trades(client, "BTCUSDT", list(range(1500, 2101)))  # a collector re-send overlapping stored ids
    client.xadd(BTC_BBO, entry(bbo_rows(list(range(10, 60)))))
    client.xadd(BTC, {"v": b"1", "n": 3, "lo": 5000, "hi": 5002, "d": b"\x92not msgpack rows", "t": 1})
    client.xadd(BTC, {"v": b"9", "d": BATCH_ENCODER.encode([])})
    collector_letter = DeadLetter(
        "collector", "bad_json", "frame is not JSON", b"{oops", 1_700_000_000_000_000_000, "sim", "BTCUSDT", "trade", -1
    )
    client.xadd(
        DLQ_STREAM, {"d": msgspec.msgpack.encode(collector_letter), "source": "collector", "reason": "bad_json"}
    )

    wait_for(lambda: recorder.counts() == (3100, 3100), timeout_s=20, what="3100 trades stored")
    assert recorder.counts("market_bbo", "update_id") == (50, 50)
    wait_for(
        lambda: recorder.query("SELECT count() FROM dead_letters")[0][0] == 5,
        timeout_s=10,
        what="3 per-id letters + 1 version letter + the collector's letter stored",
    )
    reasons = recorder.query(
        "SELECT reason, count(), groupArray(ref_id) FROM dead_letters GROUP BY reason ORDER BY reason"
    )
    assert [r[:2] for r in reasons] == [["bad_json", 1], ["undecodable_entry", 3], ["unknown_entry_version", 1]]
    assert sorted(reasons[1][2]) == [5000, 5001, 5002]
    ((min_btc, max_btc),) = recorder.query(
        "SELECT min(trade_id), max(trade_id) FROM market_trades WHERE symbol = 'BTCUSDT'"
    )
    assert (min_btc, max_btc) == (1, 2100)
    for stream in (BTC, ETH, BTC_BBO, DLQ_STREAM):
        wait_for(
            lambda s=stream: pending(client, s) == 0 and client.xlen(s) == 0,
            timeout_s=10,
            what=f"{stream} acked and trimmed",
        )
    stats = recorder.get("/stats")
    assert stats["counters"]["duplicates_filtered"]["market_trades"] == 501
    metrics = httpx.get(recorder.url + "/metrics").text
    for name in (
        "hftops_recorder_rows_inserted_total",
        "hftops_recorder_insert_seconds_bucket",
        "hftops_recorder_event_to_ingest_seconds_bucket",
        "hftops_recorder_wal_bytes",
        "hftops_recorder_dead_letters_total",
        "hftops_recorder_disk_guard",
        "hftops_recorder_db_healthy",
    ):
        assert name in metrics
    assert client.hget("ops:stats", "recorder")
    assert recorder.get("/healthz")["status"] == "ok"
    bad = httpx.post(recorder.url + "/query", json={"sql": "ALTER TABLE market_trades DELETE WHERE 1"})
    assert bad.status_code == 400 and "READONLY" in bad.json()["error"]
    assert recorder.watchdog_pings() >= 2
    code, seconds = recorder.stop()
    assert code == 0 and seconds < 3


def test_database_outage_fills_the_wal_acks_and_replays_exactly_once(recorder: RecorderProcess, valkey: object) -> None:
    client = valkey.client()  # type: ignore[attr-defined]
    platform = recorder.platform
    recorder.start()
    xadd_trades(client, "BTCUSDT", list(range(1, 1001)))
    wait_for(lambda: recorder.counts() == (1000, 1000), timeout_s=15, what="first 1000 stored")
    trading(platform, "db", "fault", "down", check=True)
    xadd_trades(client, "BTCUSDT", list(range(1001, 3001)))
    xadd_trades(client, "ETHUSDT", list(range(1, 501)))
    xadd_trades(client, "BTCUSDT", list(range(900, 1101)))  # re-sends across stored and WAL ids
    wait_for(
        lambda: pending(client, BTC) == 0 and lag(client, BTC) == 0 and lag(client, ETH) == 0,
        timeout_s=15,
        what="outage entries acked after the WAL fsync",
    )
    wal = recorder.get("/wal")
    assert wal["records"] > 0 and wal["ids"]["sim:trade:BTCUSDT"] == [[1001, 3000]]
    assert wal["ids"]["sim:trade:ETHUSDT"] == [[1, 500]]
    health = recorder.get("/healthz")
    assert (health["status"], health["db"]) == ("degraded", "failing")
    assert recorder.counts() == (1000, 1000)
    status = trading(platform, "db", "fault", "status", check=True).stdout
    assert "down" in status and "failing" in status
    trading(platform, "db", "fault", "up", check=True)
    wait_for(lambda: recorder.get("/wal")["segments"] == 0, timeout_s=15, what="WAL replayed")
    assert recorder.counts() == (3500, 3500)
    assert segment_files(platform.data_dir / "wal" / "archive")
    assert recorder.get("/healthz")["status"] == "ok"
    assert recorder.stop()[0] == 0


def test_kill9_mid_stream_then_restart_loses_and_duplicates_nothing(recorder: RecorderProcess, valkey: object) -> None:
    client = valkey.client()  # type: ignore[attr-defined]
    recorder.start()
    xadd_trades(client, "BTCUSDT", list(range(1, 20001)), per_entry=20)
    wait_for(lambda: recorder.counts()[0] > 0, timeout_s=15, interval_s=0.01, what="some rows stored")
    recorder.kill9()  # mid-stream: entries delivered, maybe inserted, not acked
    xadd_trades(client, "BTCUSDT", list(range(19990, 25001)), per_entry=20)
    xadd_trades(client, "ETHUSDT", list(range(1, 3001)), per_entry=20)
    recorder.start()
    trading(recorder.platform, "db", "fault", "down", check=True)
    xadd_trades(client, "ETHUSDT", list(range(3001, 6001)), per_entry=20)
    wait_for(lambda: recorder.get("/wal")["records"] > 0, timeout_s=15, what="WAL written")
    recorder.kill9()  # with WAL segments on disk, possibly a torn tail
    trading(recorder.platform, "db", "fault", "up", check=True)
    recorder.start()
    wait_for(lambda: recorder.counts() == (31000, 31000), timeout_s=30, what="every id stored once")
    assert recorder.query(
        "SELECT symbol, min(trade_id), max(trade_id) FROM market_trades GROUP BY symbol ORDER BY symbol"
    ) == [["BTCUSDT", 1, 25000], ["ETHUSDT", 1, 6000]]
    wait_for(lambda: pending(client, BTC) == 0 and pending(client, ETH) == 0, timeout_s=10, what="all acked")
    assert recorder.stop()[0] == 0


def test_disk_guard_stops_acking_and_resumes_with_hysteresis(recorder: RecorderProcess, valkey: object) -> None:
    client = valkey.client()  # type: ignore[attr-defined]
    recorder.platform.update({"recorder": {"wal_max_bytes": 65536, "wal_segment_bytes": 16384, "batch_max_rows": 200}})
    recorder.start()
    trading(recorder.platform, "db", "fault", "down", check=True)
    xadd_trades(client, "BTCUSDT", list(range(1, 20001)), per_entry=100)
    wait_for(lambda: recorder.get("/healthz")["disk_guard"], timeout_s=15, what="disk guard on")
    health = recorder.get("/healthz")
    assert "wal_max_bytes" in health["disk_guard_reason"]
    stalled = lag(client, BTC)
    assert stalled > 0  # entries neither acked nor read: the data stays in Redis
    wal_bytes = recorder.get("/wal")["bytes"]
    assert wal_bytes <= 65536 + 40_000  # over the limit by at most the one batch that crossed it
    assert recorder.get("/wal")["bytes"] == wal_bytes and lag(client, BTC) == stalled  # no progress while on
    code, seconds = recorder.stop()  # a batch that cannot be made durable is left pending, not waited for
    assert code == 0 and seconds < 3
    recorder.start()  # the recovered WAL is still over the limit: the guard is on again from the start
    assert recorder.get("/healthz")["disk_guard"] and recorder.get("/wal")["bytes"] == wal_bytes
    trading(recorder.platform, "db", "fault", "up", check=True)
    wait_for(lambda: recorder.counts() == (20000, 20000), timeout_s=30, what="everything stored after the guard")
    assert not recorder.get("/healthz")["disk_guard"]
    assert recorder.stop()[0] == 0


def test_entries_delivered_too_often_are_dead_lettered(recorder: RecorderProcess, valkey: object) -> None:
    client = valkey.client()  # type: ignore[attr-defined]
    client.xgroup_create(BTC, "recorder", id="0", mkstream=True)
    xadd_trades(client, "BTCUSDT", list(range(1, 11)), per_entry=10)
    for _ in range(6):  # as if six recorder incarnations had died on this entry
        client.xreadgroup("recorder", "recorder-0", {BTC: "0" if _ else ">"}, count=10)
    xadd_trades(client, "BTCUSDT", list(range(11, 21)), per_entry=10)
    recorder.start()
    wait_for(lambda: recorder.counts() == (10, 10), timeout_s=15, what="the healthy entry stored")
    wait_for(
        lambda: recorder.query("SELECT count() FROM dead_letters WHERE reason = 'too_many_deliveries'") == [[10]],
        timeout_s=10,
        what="one dead letter per id of the poison entry",
    )
    assert recorder.query("SELECT min(trade_id) FROM market_trades") == [[11]]
    assert pending(client, BTC) == 0
    assert recorder.stop()[0] == 0


@pytest.mark.parametrize("signal_name", ["SIGINT"])
def test_sigint_also_exits_zero(recorder: RecorderProcess, signal_name: str) -> None:
    import signal as sig

    recorder.start()
    assert recorder.proc is not None
    recorder.proc.send_signal(getattr(sig, signal_name))
    assert recorder.proc.wait(10) == 0


def test_a_feed_of_small_entries_is_read_many_entries_at_a_time(recorder: RecorderProcess, valkey: object) -> None:
    """A live collector flushes every couple of milliseconds: entries of a few rows. COUNT follows the entries
    seen, not the largest an entry may hold (collector.flush_max), or each read takes a handful of entries and
    the recorder falls behind the feed."""
    client = valkey.client()  # type: ignore[attr-defined]
    recorder.platform.update({"recorder": {"batch_max_rows": 2000}, "collector": {"flush_max": 256}})
    xadd_trades(client, "BTCUSDT", list(range(1, 2401)), per_entry=2)  # 1,200 entries waiting
    client.config_resetstat()
    recorder.start()
    wait_for(lambda: recorder.counts() == (2400, 2400), timeout_s=30, what="2400 trades stored")
    reads = client.info("commandstats")["cmdstat_xreadgroup"]["calls"]
    # Sized by flush_max, a read takes at most 2000 // (256 rows x the streams) + 1 entries: 600+ reads here.
    assert reads < 300, f"{reads} XREADGROUP calls for 1,200 entries"
