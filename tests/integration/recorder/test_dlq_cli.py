"""`trading dlq status|show|replay` against a running recorder (and status without one)."""

from __future__ import annotations

import json
import time

import msgspec

from hftops.model.market import DeadLetter
from hftops.model.streams import DLQ_STREAM, MdKind, md_stream
from tests.integration.recorder.conftest import RecorderProcess
from tests.support.cli import trading, trading_json
from tests.support.waiting import wait_for


def agg_trade(trade_id: int, price: str) -> bytes:
    now = int(time.time() * 1000)
    return json.dumps(
        {
            "stream": "btcusdt@aggTrade",
            "data": {
                "e": "aggTrade",
                "E": now,
                "s": "BTCUSDT",
                "a": trade_id,
                "p": price,
                "q": "0.010",
                "f": trade_id,
                "l": trade_id,
                "T": now,
                "m": False,
            },
        }
    ).encode()


def letter(reason: str, payload: bytes, ref_id: int) -> dict[str, bytes | str]:
    dead = DeadLetter(
        "collector", reason, f"test letter {reason}", payload, time.time_ns(), "sim", "BTCUSDT", "trade", ref_id
    )
    return {"d": msgspec.msgpack.encode(dead), "source": "collector", "reason": reason}


def test_status_show_and_replay_once(recorder: RecorderProcess, valkey: object) -> None:
    client = valkey.client()  # type: ignore[attr-defined]
    platform = recorder.platform
    recorder.start()
    client.xadd(DLQ_STREAM, letter("backfill_failed", agg_trade(5000, "65000.5"), 5000))
    client.xadd(DLQ_STREAM, letter("nan_price", agg_trade(5001, "NaN"), 5001))
    client.xadd(md_stream("sim", MdKind.TRADE, "BTCUSDT"), {"v": b"1", "n": 2, "lo": 7, "hi": 8, "d": b"\x01"})
    wait_for(
        lambda: recorder.query("SELECT count() FROM dead_letters") == [[4]],
        timeout_s=15,
        what="4 dead letters stored (2 from the collector, 2 per-id letters of the poison entry)",
    )

    _, status = trading_json(platform, "dlq", "status")
    assert status["total"] == 4 and status["replayed"] == 0
    assert {(g["source"], g["reason"]): g["n"] for g in status["groups"]} == {
        ("collector", "backfill_failed"): 1,
        ("collector", "nan_price"): 1,
        ("recorder", "undecodable_entry"): 2,
    }
    _, shown = trading_json(platform, "dlq", "show", "--limit", "10", "--reason", "nan_price")
    assert [(d["reason"], d["ref_id"], d["replayed"]) for d in shown] == [("nan_price", 5001, 0)]
    assert "dead letters" in trading(platform, "dlq", "status", check=True).stdout

    _, dry = trading_json(platform, "dlq", "replay", "--dry-run")
    assert (dry["replayed"], dry["rows"], dry["dry_run"]) == (1, 1, True)
    _, report = trading_json(platform, "dlq", "replay")
    assert (report["examined"], report["replayed"], report["rows"], report["entries"]) == (4, 1, 1, 1)
    assert report["still_invalid"] == 2 and report["skipped"] == 1  # NaN, undecodable; a payload-less sibling
    wait_for(
        lambda: recorder.query("SELECT trade_id, price FROM market_trades") == [[5000, "65000.5"]],
        timeout_s=15,
        what="the replayed trade stored",
    )
    _, again = trading_json(platform, "dlq", "replay")
    assert (again["examined"], again["replayed"], again["entries"]) == (3, 0, 0)
    _, status = trading_json(platform, "dlq", "status")
    assert status["replayed"] == 1

    assert recorder.stop()[0] == 0
    _, offline = trading_json(platform, "dlq", "status")  # no recorder: the store is read directly
    assert offline["total"] == 4
