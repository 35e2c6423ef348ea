"""What the engine does on a transition: evidence and transition events, notifications that state scope,
reason, exposure and rearm effect, HALT cancels + one flatten per episode, REDUCE_ONLY and quarantine
cancels."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from decimal import Decimal
from pathlib import Path
from typing import Any

from hftops.model.ops_events import AutonomyTransition, EvidenceRecord
from hftops.model.streams import OpsKind
from hftops.notify import Severity
from hftops.ops.autonomy_actions import AutonomyActions, EnginePort
from hftops.ops.autonomy_state import AutonomyController
from hftops.ops.reasons import Reason
from tests.unit.engine.fakes import FakeClock


class Pos:
    def __init__(self, strategy_id: str, symbol: str, qty: str) -> None:
        self.strategy_id, self.symbol, self.qty, self.avg_price = strategy_id, symbol, Decimal(qty), Decimal(100)


class Recorder:
    def __init__(self, tmp_path: Path) -> None:
        self.published: list[tuple[OpsKind, Any]] = []
        self.notes: list[tuple[Severity, str, str]] = []
        self.calls: list[str] = []
        self.tasks: list[Awaitable[None]] = []
        self.ready = True
        log = tmp_path / "engine.log"
        log.write_text("".join(f"line {i}\n" for i in range(100)))
        self.port = EnginePort(
            publisher=self,
            notifier=lambda: self,
            positions=lambda: [Pos("mm1", "BTCUSDT", "0.5"), Pos("mom1", "ETHUSDT", "0")],
            health=lambda: {"rss_bytes": "123"},
            stream_lag=lambda: {"md:sim:trade:BTCUSDT": "7"},
            ready=lambda: self.ready,
            cancel_all=self.cancel_all,
            cancel_strategy=lambda sid: self.calls.append(f"cancel_strategy {sid}"),
            cancel_risk_increasing=lambda: self.calls.append("cancel_risk_increasing"),
            request_flatten=self.flatten,
            spawn=self.tasks.append,
            log_path=log,
        )

    def publish_ops(self, kind: OpsKind, event: Any, event_kind: str | None = None) -> None:
        self.published.append((kind, event))

    def notify(self, severity: Severity, text: str, *, key: str = "") -> None:
        self.notes.append((severity, text, key))

    async def cancel_all(self) -> None:
        self.calls.append("cancel_all")

    def flatten(self) -> str:
        self.calls.append("flatten all")
        return "job-1"

    def run_spawned(self) -> None:
        async def run() -> None:
            while self.tasks:
                await self.tasks.pop(0)

        asyncio.run(run())


def setup(tmp_path: Path) -> tuple[AutonomyController, Recorder, AutonomyActions]:
    c = AutonomyController(clock=FakeClock(), boot_grace_s=0, cooldown_s=60)
    rec = Recorder(tmp_path)
    return c, rec, AutonomyActions(c, rec.port, log_tail_lines=5)


def test_every_transition_is_published_with_its_evidence(tmp_path: Path) -> None:
    c, rec, _ = setup(tmp_path)
    c.set_condition(
        Reason.CLICKHOUSE_UNHEALTHY, True, values={"db_write_age_s": "61.2"}, thresholds={"db_write_age_s": 60}
    )
    (k1, transition), (k2, evidence) = rec.published
    assert (k1, k2) == (OpsKind.AUTONOMY, OpsKind.EVIDENCE)
    assert isinstance(transition, AutonomyTransition) and isinstance(evidence, EvidenceRecord)
    assert transition.id == evidence.id and transition.to_mode == "PLATFORM_REDUCE_ONLY"
    assert evidence.trigger_values == {"db_write_age_s": "61.2"} and evidence.thresholds == {"db_write_age_s": "60"}
    assert evidence.positions == [{"strategy": "mm1", "symbol": "BTCUSDT", "qty": "0.5", "avg_price": "100"}]
    assert evidence.health == {"rss_bytes": "123"} and evidence.stream_lag == {"md:sim:trade:BTCUSDT": "7"}
    assert evidence.log_tail == [f"line {i}" for i in range(95, 100)] and evidence.process["pid"]


def test_degradation_messages_state_scope_reason_exposure_and_rearm_effect(tmp_path: Path) -> None:
    c, rec, _ = setup(tmp_path)
    c.set_condition(Reason.REDIS_UNHEALTHY, True)
    severity, text, _key = rec.notes[-1]
    assert severity is Severity.WARNING
    assert "platform" in text and "redis_unhealthy" in text and "BTCUSDT +0.5 (mm1)" in text
    assert "recovers by itself once the condition has been clear for 60 s" in text
    c.trip(Reason.STRATEGY_EXCEPTION, strategy_id="mm1")
    assert "`trading rearm --strategy mm1" in rec.notes[-1][1] and "strategy mm1" in rec.notes[-1][1]
    c.halt("alice", "drill")
    severity, text, _key = rec.notes[-1]
    assert severity is Severity.CRITICAL and "HALT" in text and "every position flattened" in text
    c.set_condition(Reason.REDIS_UNHEALTHY, False)
    c.rearm("alice", "done")
    rec.run_spawned()
    assert any("REARMED" in t and "By: alice" in t for _, t, _ in rec.notes)
    c.set_condition(Reason.REDIS_UNHEALTHY, True)
    c.set_condition(Reason.REDIS_UNHEALTHY, False)
    c.clock.advance(60)  # type: ignore[attr-defined]
    c.poll()
    assert rec.notes[-1][0] is Severity.INFO and "RECOVERED" in rec.notes[-1][1]


def test_halt_flattens_once_per_episode(tmp_path: Path) -> None:
    # The flatten of everything cancels the resting orders itself; a separate sweep only when it does not run.
    c, rec, actions = setup(tmp_path)
    c.halt("alice", "one")
    c.trip(Reason.FLATTEN_FAILED)  # another reason, same episode
    rec.run_spawned()
    assert rec.calls == ["flatten all"] and c.halt_flatten_requested
    actions.on_ready()  # called again after boot: no second flatten
    rec.run_spawned()
    assert rec.calls.count("flatten all") == 1
    c.rearm("alice", "done")
    rec.calls.clear()
    c.halt("alice", "two")  # a new episode
    rec.run_spawned()
    assert rec.calls == ["flatten all"]
    assert actions.counters["halt_flattens"] == 2


def test_halt_before_the_engine_is_ready_waits_for_it(tmp_path: Path) -> None:
    c, rec, actions = setup(tmp_path)
    rec.ready = False
    c.halt("alice", "at boot")
    rec.run_spawned()
    assert rec.calls == []
    rec.ready = True
    actions.on_ready()
    rec.run_spawned()
    assert rec.calls == ["flatten all"]


def test_a_restored_episode_that_already_flattened_only_cancels(tmp_path: Path) -> None:
    c, rec, _ = setup(tmp_path)
    c.halt("alice", "x")
    c.mark_halt_flatten()
    rec.run_spawned()
    assert rec.calls == ["cancel_all"]


def test_reduce_only_and_quarantine_cancel_what_could_add_risk(tmp_path: Path) -> None:
    c, rec, _ = setup(tmp_path)
    c.set_condition(Reason.WAL_BACKLOG_UNHEALTHY, True)
    c.trip(Reason.STRATEGY_REJECT_SPIKE, strategy_id="mom1")
    assert rec.calls == ["cancel_risk_increasing", "cancel_strategy mom1"]
