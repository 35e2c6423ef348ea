"""Manual halt and rearm through the `trading` command against the engine process: a manual latch survives
a restart with its original reason and is cleared by `trading rearm` from another process (in the running
engine within 2 s, or on the persisted state while no engine runs); every command is audited once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hftops.config.paths import DataPaths
from hftops.control.audit import AuditLog
from hftops.model.streams import STATS_HASH
from tests.conftest import ValkeyHandle
from tests.integration.engine.helpers import ENGINE_OVERRIDES, World
from tests.integration.ops.harness import set_recorder_stats
from tests.support.cli import trading, trading_json
from tests.support.platform import TestPlatform
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root: Path = tmp_path_factory.mktemp("rearm")
    valkey = ValkeyHandle(root / "valkey")
    built = World(
        TestPlatform(root, {**ENGINE_OVERRIDES, "redis": {"url": valkey.url}, "autonomy": {"boot_grace_s": 2.0}})
    )
    try:
        yield built
    finally:
        built.close()
        valkey.stop(kill=True)


def autonomy(world: World) -> dict[str, Any]:
    return (world.stats() or {}).get("autonomy") or {}


def audit_events(world: World) -> list[str]:
    return [e["event"] for e in AuditLog(DataPaths(world.config.data_dir).audit).tail(1000)]


def manual_entry(view: dict[str, Any]) -> dict[str, Any]:
    return next(d for d in view["details"] if d["reason"] == "manual_operator")


def test_a_manual_latch_survives_a_restart_and_is_cleared_by_rearm_from_another_process(world: World) -> None:
    world.start_engine()
    world.wait_ready()
    audit_before = audit_events(world)

    code, answer = trading_json(world.platform, "halt", "--operator", "alice", "--reason", "maintenance window")
    assert code == 0 and answer["ok"] and answer["engine"] == "running" and answer["mode"] == "HALT"
    wait_for(lambda: autonomy(world).get("mode") == "HALT", 2, what="HALT in the running engine within 2 s")
    latched = manual_entry(autonomy(world))
    assert latched["operator"] == "alice" and latched["detail"] == "maintenance window"
    assert world.stop_engine() == 0

    code, status = trading_json(world.platform, "status")
    view = status["autonomy"]
    assert view["mode"] == "HALT" and view["source"] == "persisted" and view["manual_rearm_required"]
    assert manual_entry(view)["operator"] == "alice"

    world.start_engine()  # boot never starts NORMAL over a stored latch
    wait_for(
        lambda: autonomy(world).get("mode") == "HALT" and (world.stats() or {}).get("state") == "running",
        20,
        what="the restarted engine up and still in HALT",
    )
    restored = manual_entry(autonomy(world))
    assert restored["operator"] == "alice" and restored["detail"] == "maintenance window"
    assert restored["since_ns"] == latched["since_ns"] and restored["restored"]
    assert not world.stats()["ready_to_trade"]  # type: ignore[index]

    issued = time.monotonic()
    result = trading(world.platform, "rearm", "--operator", "bob", "--reason", "window over", check=True)
    assert "cleared manual_operator" in result.stdout
    wait_for(lambda: autonomy(world).get("mode") == "NORMAL", 2, what="NORMAL in the running engine within 2 s")
    assert time.monotonic() - issued < 10
    wait_for(lambda: (world.stats() or {}).get("ready_to_trade"), 5, what="trading again")
    assert world.stop_engine() == 0
    assert audit_events(world)[len(audit_before) :] == ["HALT", "REARM"]  # exactly one entry per command


def test_halt_and_rearm_without_an_engine_change_what_the_next_boot_restores(world: World) -> None:
    audit_before = audit_events(world)
    code, answer = trading_json(world.platform, "halt", "--operator", "carol", "--reason", "offline halt")
    assert code == 0 and answer["engine"].startswith("not running")
    world.start_engine()
    wait_for(lambda: autonomy(world).get("mode") == "HALT", 20, what="the offline HALT honoured at boot")
    assert manual_entry(autonomy(world))["operator"] == "carol"
    assert world.stop_engine() == 0

    code, refused = trading_json(world.platform, "rearm", "--operator", "carol", "--reason", "x", "--strategy", "mm1")
    assert code == 1 and "not quarantined" in refused["error"]
    code, answer = trading_json(world.platform, "rearm", "--operator", "carol", "--reason", "offline rearm")
    assert code == 0 and answer["mode"] == "NORMAL"
    state = json.loads((Path(world.config.data_dir) / "state" / "autonomy.json").read_text())
    assert state["mode"] == "NORMAL" and state["reasons"] == []
    world.start_engine()
    world.wait_ready()
    assert world.stop_engine() == 0
    assert audit_events(world)[len(audit_before) :] == ["HALT", "REARM_REFUSED", "REARM"]


def test_the_emergency_stop_latch_is_honoured_at_boot_and_cleared_by_rearm(world: World) -> None:
    latch = Path(world.config.data_dir) / "state" / "autonomy_latch.json"
    latch.write_text(json.dumps({"mode": "HALT", "reason": "manual_operator", "by": "dave"}))
    world.start_engine()
    wait_for(lambda: autonomy(world).get("mode") == "HALT", 20, what="emergency-stop latch honoured")
    assert manual_entry(autonomy(world))["operator"] == "dave"
    trading(world.platform, "rearm", "--operator", "dave", "--reason", "incident closed", check=True)
    assert not latch.exists()
    wait_for(lambda: (world.stats() or {}).get("ready_to_trade"), 5, what="trading again")
    assert world.stop_engine() == 0


def test_a_rearm_is_refused_while_the_condition_is_present_and_forced_is_audited_as_such(world: World) -> None:
    world.start_engine()
    world.wait_ready()
    audit_before = audit_events(world)
    set_recorder_stats(world.redis, wal_bytes=10**12)  # the recorder reporting a huge WAL backlog
    try:
        wait_for(lambda: autonomy(world).get("mode") == "PLATFORM_REDUCE_ONLY", 10, what="REDUCE_ONLY")
        refused = trading(world.platform, "rearm", "--operator", "erin", "--reason", "looks fine")
        assert refused.returncode == 1 and "still present: wal_backlog_unhealthy" in refused.stderr
        forced = trading(world.platform, "rearm", "--operator", "erin", "--reason", "accepted", "--force", check=True)
        assert "FORCED over wal_backlog_unhealthy" in forced.stdout
        wait_for(lambda: autonomy(world).get("mode") == "NORMAL", 2, what="NORMAL within 2 s")
    finally:
        world.redis.hdel(STATS_HASH, "recorder")
    assert audit_events(world)[len(audit_before) :] == ["REARM_REFUSED", "REARM_FORCED"]
    assert world.stop_engine() == 0
