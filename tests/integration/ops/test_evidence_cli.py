"""`trading evidence list|show` read back what the engine publishes with each transition, stored by the real
recorder (valkey + chDB) in `autonomy_evidence`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hftops.model.streams import OpsKind
from hftops.ops.autonomy_entries import Transition
from hftops.ops.evidence import autonomy_event, build_evidence
from hftops.ops.modes import Mode, Scope
from tests.integration.recorder.conftest import FAST, RecorderProcess
from tests.support.cli import trading, trading_json
from tests.support.events import publish
from tests.support.platform import TestPlatform
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def recorder(platform: TestPlatform, valkey: Any) -> Iterator[RecorderProcess]:
    platform.update({"redis": {"url": valkey.url}, **FAST})
    process = RecorderProcess(platform)
    try:
        yield process.start()
    finally:
        process.close()


def transition(n: int, trigger: str, to_mode: Mode) -> Transition:
    return Transition(
        id=f"{n:032x}",
        time_ns=1_800_000_000_000_000_000 + n * 10**9,
        scope=Scope.PLATFORM,
        strategy_id="",
        from_mode=Mode.NORMAL,
        to_mode=to_mode,
        reasons=(trigger,),
        trigger=trigger,
        values={"db_write_age_s": "61.2"},
        thresholds={"db_write_age_s": "60"},
    )


def test_evidence_list_and_show(recorder: RecorderProcess, platform: TestPlatform) -> None:
    records = []
    for n, (trigger, mode) in enumerate(
        (("clickhouse_unhealthy", Mode.PLATFORM_REDUCE_ONLY), ("manual_operator", Mode.HALT)), start=0xAB01
    ):
        t = transition(n, trigger, mode)
        record = build_evidence(
            t,
            health={"rss_bytes": "1000"},
            positions=[{"symbol": "BTCUSDT", "qty": "0.01"}],
            stream_lag={"md:sim:trade:BTCUSDT": "12"},
            process={"pid": "42"},
            log_lines=["line one", "line two"],
        )
        records.append(record)
        publish(platform.config.redis_url, [(OpsKind.AUTONOMY, autonomy_event(t)), (OpsKind.EVIDENCE, record)])

    def listed() -> list[dict[str, Any]]:
        code, rows = trading_json(platform, "evidence", "list")
        return rows if code == 0 and len(rows) == 2 else []

    rows = wait_for(listed, 30, what="both evidence records stored and listed")
    assert [r["trigger"] for r in rows] == ["manual_operator", "clickhouse_unhealthy"]  # newest first
    assert rows[0]["to_mode"] == "HALT" and rows[0]["id"] == records[1].id

    code, shown = trading_json(platform, "evidence", "show", records[0].id)
    assert code == 0
    assert shown["trigger_values"] == {"db_write_age_s": "61.2"} and shown["thresholds"] == {"db_write_age_s": "60"}
    assert shown["log_tail"] == ["line one", "line two"] and shown["process"] == {"pid": "42"}
    assert shown["positions"] == [{"symbol": "BTCUSDT", "qty": "0.01"}]

    text = trading(platform, "evidence", "show", records[1].id, check=True).stdout
    assert "manual_operator" in text and "| line two" in text
    ambiguous = trading(platform, "evidence", "show", "00000000")  # a prefix of both ids
    assert ambiguous.returncode == 1 and "several" in ambiguous.stderr
    missing = trading(platform, "evidence", "show", "ffffffff")
    assert missing.returncode == 1 and "no evidence record" in missing.stderr
    bad = trading(platform, "evidence", "show", "x'; DROP TABLE autonomy_evidence; --")
    assert bad.returncode == 1 and "hex id" in bad.stderr
