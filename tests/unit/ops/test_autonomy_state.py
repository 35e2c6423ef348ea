"""The AutonomyController: the ladder, cooldowns, latches, rearm rules, persistence and boot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hftops.ops.autonomy_entries import Transition
from hftops.ops.autonomy_state import AutonomyController, RearmRefused
from hftops.ops.autonomy_store import AutonomyStore
from hftops.ops.modes import Mode, Scope
from hftops.ops.reasons import AUTO_RECOVERABLE, HALTING, Reason
from tests.unit.engine.fakes import FakeClock

COOLDOWN = 60.0


def controller(clock: FakeClock, tmp_path: Path | None = None, grace: float = 0.0) -> AutonomyController:
    store = AutonomyStore(tmp_path) if tmp_path is not None else None
    return AutonomyController(
        clock=clock, cooldown_s=COOLDOWN, boot_grace_s=grace, store=store, strategy_ids=("mm1", "mom1")
    )


def recording(c: AutonomyController) -> list[Transition]:
    seen: list[Transition] = []
    c.listeners.append(seen.append)
    return seen


def test_vocabulary_is_consistent() -> None:
    assert not AUTO_RECOVERABLE & HALTING
    assert Reason.MANUAL_OPERATOR not in AUTO_RECOVERABLE and Reason.PNL_PEAK_DRAWDOWN in HALTING


def test_auto_recoverable_reason_recovers_after_exactly_the_cooldown() -> None:
    clock = FakeClock()
    c = controller(clock)
    seen = recording(c)
    assert c.set_condition(Reason.CLICKHOUSE_UNHEALTHY, True, values={"db_write_age_s": 61})
    assert c.mode is Mode.PLATFORM_REDUCE_ONLY
    assert seen[-1].from_mode is Mode.NORMAL and seen[-1].to_mode is Mode.PLATFORM_REDUCE_ONLY
    assert seen[-1].trigger == "clickhouse_unhealthy" and seen[-1].values == {"db_write_age_s": "61"}
    clock.advance(5)
    c.set_condition(Reason.CLICKHOUSE_UNHEALTHY, False)  # clear from here
    clock.advance(COOLDOWN - 0.001)
    c.set_condition(Reason.CLICKHOUSE_UNHEALTHY, False)
    c.poll()
    assert c.mode is Mode.PLATFORM_REDUCE_ONLY
    clock.advance(0.001)
    c.poll()
    assert c.mode is Mode.NORMAL
    assert seen[-1].trigger == "recovered" and seen[-1].to_mode is Mode.NORMAL


def test_cooldown_restarts_when_the_condition_returns() -> None:
    clock = FakeClock()
    c = controller(clock)
    c.set_condition(Reason.REDIS_UNHEALTHY, True)
    c.set_condition(Reason.REDIS_UNHEALTHY, False)
    clock.advance(COOLDOWN - 1)
    c.set_condition(Reason.REDIS_UNHEALTHY, True)  # back before the cooldown ran out
    c.set_condition(Reason.REDIS_UNHEALTHY, False)
    clock.advance(COOLDOWN - 1)
    c.poll()
    assert c.mode is Mode.PLATFORM_REDUCE_ONLY
    clock.advance(1)
    c.poll()
    assert c.mode is Mode.NORMAL


def test_latching_reasons_wait_for_a_rearm_and_halt_never_recovers() -> None:
    clock = FakeClock()
    c = controller(clock)
    c.set_condition(Reason.RECONCILIATION_DRIFT, True)
    c.set_condition(Reason.PNL_PEAK_DRAWDOWN, True)
    assert c.mode is Mode.HALT
    c.set_condition(Reason.RECONCILIATION_DRIFT, False)
    c.set_condition(Reason.PNL_PEAK_DRAWDOWN, False)
    clock.advance(10 * COOLDOWN)
    c.poll()
    assert c.mode is Mode.HALT
    assert c.snapshot()["manual_rearm_required"] is True
    result = c.rearm("alice", "checked the book")
    assert c.mode is Mode.NORMAL
    assert sorted(result["cleared"]) == ["pnl_peak_drawdown", "reconciliation_drift"]


def test_rearm_is_refused_while_the_condition_is_present_unless_forced() -> None:
    clock = FakeClock()
    c = controller(clock)
    seen = recording(c)
    c.set_condition(Reason.RECONCILIATION_DRIFT, True, values={"symbols": "BTCUSDT"})
    with pytest.raises(RearmRefused, match="still present: reconciliation_drift"):
        c.rearm("alice", "looks fine")
    assert c.mode is Mode.PLATFORM_REDUCE_ONLY
    result = c.rearm("alice", "accepting the drift", force=True)
    assert result["forced_over"] == ["reconciliation_drift"]
    assert c.mode is Mode.NORMAL and seen[-1].forced and seen[-1].operator == "alice"
    # a forced rearm accepts the present condition: it latches again only after clearing and returning
    c.set_condition(Reason.RECONCILIATION_DRIFT, True)
    assert c.mode is Mode.NORMAL
    c.set_condition(Reason.RECONCILIATION_DRIFT, False)
    c.set_condition(Reason.RECONCILIATION_DRIFT, True)
    assert c.mode is Mode.PLATFORM_REDUCE_ONLY


def test_rearm_with_nothing_latched_is_refused() -> None:
    c = controller(FakeClock())
    with pytest.raises(RearmRefused, match="nothing to rearm"):
        c.rearm("alice", "why not")
    with pytest.raises(RearmRefused, match="not quarantined"):
        c.rearm("alice", "why not", strategy_id="mm1")


def test_strategy_quarantine_and_strategy_rearm() -> None:
    clock = FakeClock()
    c = controller(clock)
    seen = recording(c)
    assert c.trip(Reason.STRATEGY_EXCEPTION, strategy_id="mm1", values={"in_window": 5})
    assert not c.trip(Reason.STRATEGY_EXCEPTION, strategy_id="mm1")  # already latched
    c.trip(Reason.STRATEGY_REJECT_SPIKE, strategy_id="mom1")
    c.halt("bob", "drill")
    assert c.mode is Mode.HALT and c.quarantined == {"mm1", "mom1"}
    assert [(t.scope, t.strategy_id, t.to_mode) for t in seen] == [
        (Scope.STRATEGY, "mm1", Mode.STRATEGY_QUARANTINED),
        (Scope.STRATEGY, "mom1", Mode.STRATEGY_QUARANTINED),
        (Scope.PLATFORM, "", Mode.HALT),
    ]
    c.rearm("bob", "fixed mm1", strategy_id="mm1")
    assert c.quarantined == {"mom1"} and c.mode is Mode.HALT  # a strategy rearm lifts that quarantine only
    assert seen[-1].scope is Scope.STRATEGY and seen[-1].to_mode is Mode.NORMAL
    c.rearm("bob", "all good")
    assert c.mode is Mode.NORMAL and not c.quarantined
    snap = c.snapshot()
    assert snap["mode"] == "NORMAL" and snap["strategies"]["mm1"]["state"] == "normal"


def test_ladder_mode_shows_a_quarantine_when_the_platform_is_normal() -> None:
    c = controller(FakeClock())
    c.trip(Reason.STRATEGY_EXCEPTION, strategy_id="mm1")
    snap = c.snapshot()
    assert c.mode is Mode.NORMAL and snap["mode"] == "STRATEGY_QUARANTINED"
    assert snap["strategies"]["mm1"] == {
        "state": "quarantined",
        "reasons": ["strategy_exception"],
        "since": snap["since"],
    }
    assert snap["strategies"]["mom1"]["state"] == "normal"


def test_boot_grace_suppresses_probes_but_not_trips() -> None:
    clock = FakeClock()
    c = controller(clock, grace=30)
    c.set_condition(Reason.BROKER_UNAVAILABLE, True)
    c.set_condition(Reason.RECONCILIATION_DRIFT, True)
    assert c.mode is Mode.NORMAL and c.counters["suppressed_in_grace"] == 2
    c.trip(Reason.FLATTEN_FAILED, detail="deadline missed")
    assert c.mode is Mode.HALT
    c.rearm("alice", "flattened by hand")
    clock.advance(30)
    c.set_condition(Reason.BROKER_UNAVAILABLE, True)  # still there after the grace: now it counts
    assert c.mode is Mode.PLATFORM_REDUCE_ONLY


def test_halt_episode_is_new_per_episode() -> None:
    c = controller(FakeClock())
    c.halt("alice", "one")
    first = c.halt_episode
    c.trip(Reason.FLATTEN_FAILED)  # a second reason in the same episode
    assert c.halt_episode == first
    c.mark_halt_flatten()
    c.rearm("alice", "done")
    assert c.halt_episode == "" and not c.halt_flatten_requested
    c.halt("alice", "two")
    assert c.halt_episode not in ("", first) and not c.halt_flatten_requested


def test_latches_survive_a_restart_with_their_original_reasons(tmp_path: Path) -> None:
    clock = FakeClock()
    c = controller(clock, tmp_path)
    c.halt("alice", "maintenance window")
    c.set_condition(Reason.CLICKHOUSE_UNHEALTHY, True)
    c.trip(Reason.STRATEGY_EXCEPTION, strategy_id="mm1", detail="ZeroDivisionError x5")
    since = c.active(Reason.MANUAL_OPERATOR).since_ns  # type: ignore[union-attr]
    c.mark_halt_flatten()
    clock.advance(3600)

    booted = controller(clock, tmp_path, grace=30)
    seen = recording(booted)
    dropped = booted.restore()
    assert dropped == ["clickhouse_unhealthy"]  # a stale auto-recoverable flag is cleared at boot
    assert booted.mode is Mode.HALT and booted.quarantined == {"mm1"}
    manual = booted.active(Reason.MANUAL_OPERATOR)
    assert manual is not None and manual.operator == "alice" and manual.detail == "maintenance window"
    assert manual.since_ns == since and manual.restored
    assert booted.halt_episode == c.halt_episode and booted.halt_flatten_requested
    assert {t.trigger for t in seen} == {"restored"} and seen[0].to_mode is Mode.HALT


def test_a_damaged_state_file_fails_closed_and_is_kept(tmp_path: Path) -> None:
    (tmp_path / "autonomy.json").write_text('{"mode": "NORM')
    c = controller(FakeClock(), tmp_path)
    c.restore()
    assert c.mode is Mode.HALT
    assert "unreadable" in c.active(Reason.MANUAL_OPERATOR).detail  # type: ignore[union-attr]
    kept = list(tmp_path.glob("autonomy.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text() == '{"mode": "NORM'
    assert json.loads((tmp_path / "autonomy.json").read_text())["mode"] == "HALT"


def test_an_unknown_stored_reason_fails_closed(tmp_path: Path) -> None:
    (tmp_path / "autonomy.json").write_text(json.dumps({"reasons": [{"reason": "cosmic_rays", "latched": True}]}))
    c = controller(FakeClock(), tmp_path)
    c.restore()
    assert c.mode is Mode.HALT and "cosmic_rays" in c.active(Reason.MANUAL_OPERATOR).detail  # type: ignore[union-attr]


def test_every_change_is_persisted_before_listeners_hear_of_it(tmp_path: Path) -> None:
    c = controller(FakeClock(), tmp_path)
    on_disk: list[str] = []
    c.listeners.append(lambda t: on_disk.append(json.loads((tmp_path / "autonomy.json").read_text())["mode"]))
    c.halt("alice", "x")
    c.rearm("alice", "y")
    assert on_disk == ["HALT", "NORMAL"]


def test_a_failing_listener_does_not_undo_a_transition() -> None:
    c = controller(FakeClock())

    def broken(_t: Transition) -> None:
        raise RuntimeError("boom")

    c.listeners.append(broken)
    c.halt("alice", "x")
    assert c.mode is Mode.HALT


def test_a_failed_persist_is_reported_and_retried(tmp_path: Path) -> None:
    c = controller(FakeClock(), tmp_path)
    blocker = tmp_path / "autonomy.json"
    blocker.mkdir()  # the rename onto it fails (even as root)
    c.halt("alice", "x")
    assert c.persist_error is not None and c.mode is Mode.HALT  # the transition still holds in memory
    blocker.rmdir()
    c.poll()
    assert c.persist_error is None
    assert json.loads((tmp_path / "autonomy.json").read_text())["mode"] == "HALT"
