"""The margin monitor's judgement: levels with hysteresis, one warning per episode, margin_critical into the
real autonomy controller (REDUCE_ONLY) and out again after its cooldown, failures counted and changing nothing."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from pydantic import ValidationError

from hftops.config.flatten_margin import MarginConfig
from hftops.model.ops_events import MarginEvent
from hftops.ops.autonomy_state import AutonomyController
from hftops.ops.margin_monitor import MarginLevel, MarginMonitor, MarginReading, classify
from hftops.ops.modes import Mode
from hftops.ops.reasons import Reason
from tests.unit.engine.fakes import FakeClock

CONFIG = MarginConfig.model_validate({})  # recovery 0.75, warning 0.8, critical 0.9


def reading(ratio: str) -> MarginReading:
    """used / available == ratio exactly (available 100)."""
    used = D(ratio) * 100
    return MarginReading(used=used, available=D(100), balance=used + 100)


class Account:
    """An answer of GET /fapi/v2/account as far as the monitor reads it."""

    def __init__(self, used: D, available: D) -> None:
        self.totalInitialMargin, self.availableBalance, self.totalMarginBalance = used, available, used + available


class Broker:
    def __init__(self) -> None:
        self.answer: Account | Exception = Account(D(0), D(1000))

    async def account(self) -> Account:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def monitor(clock: FakeClock, autonomy: Any = None) -> tuple[MarginMonitor, list[MarginEvent], Broker]:
    events: list[MarginEvent] = []
    broker = Broker()
    return MarginMonitor(broker, autonomy, None, clock, config=CONFIG, publish=events.append), events, broker


def test_levels_and_hysteresis() -> None:
    assert classify(reading("0.5"), CONFIG) is MarginLevel.OK
    assert classify(reading("0.8"), CONFIG) is MarginLevel.WARNING
    assert classify(reading("0.9"), CONFIG) is MarginLevel.CRITICAL
    assert classify(MarginReading(used=D(5), available=D(0), balance=D(5)), CONFIG) is MarginLevel.CRITICAL
    assert classify(MarginReading(used=D(0), available=D(-3), balance=D(-3)), CONFIG) is MarginLevel.CRITICAL
    # inside an episode the level stays WARNING until below the recovery ratio: no flapping at 0.8
    assert classify(reading("0.78"), CONFIG, MarginLevel.WARNING) is MarginLevel.WARNING
    assert classify(reading("0.78"), CONFIG, MarginLevel.OK) is MarginLevel.OK
    assert classify(reading("0.7"), CONFIG, MarginLevel.CRITICAL) is MarginLevel.OK


def test_one_warning_per_episode_critical_reduce_only_and_recovery() -> None:
    clock = FakeClock()
    autonomy = AutonomyController(clock=clock, cooldown_s=60, boot_grace_s=0)
    mon, events, _ = monitor(clock, autonomy)
    assert mon.observe(reading("0.5")) is MarginLevel.OK
    for ratio in ("0.82", "0.79", "0.85", "0.81"):  # one episode: one warning however it wobbles
        assert mon.observe(reading(ratio)) is MarginLevel.WARNING
    assert mon.counters["warnings"] == 1 and mon.counters["episodes"] == 1
    assert autonomy.mode is Mode.NORMAL

    assert mon.observe(reading("0.93")) is MarginLevel.CRITICAL
    assert autonomy.mode is Mode.PLATFORM_REDUCE_ONLY
    entry = autonomy.active(Reason.MARGIN_CRITICAL)
    assert entry is not None and entry.values["ratio"] == "0.9300" and entry.thresholds["critical_ratio"] == "0.9"
    mon.observe(reading("0.95"))
    assert mon.counters["criticals"] == 1  # one critical alert per critical stretch
    assert mon.observe(reading("0.85")) is MarginLevel.WARNING
    assert mon.counters["warnings"] == 1  # still the same episode: no second warning
    assert mon.observe(reading("0.5")) is MarginLevel.OK
    assert mon.counters["recoveries"] == 1
    clock.advance(59)
    autonomy.poll()
    assert autonomy.mode is Mode.PLATFORM_REDUCE_ONLY  # auto-recoverable, after its cooldown only
    clock.advance(1)
    autonomy.poll()
    assert autonomy.mode is Mode.NORMAL

    assert mon.observe(reading("0.8")) is MarginLevel.WARNING  # a new episode warns again
    assert mon.counters["warnings"] == 2 and mon.counters["episodes"] == 2
    assert [e.level for e in events] == ["ok", "warning", "critical", "warning", "ok", "warning"]


async def test_a_failed_poll_changes_nothing_and_is_counted() -> None:
    clock = FakeClock()
    autonomy = AutonomyController(clock=clock, cooldown_s=60, boot_grace_s=0)
    mon, events, broker = monitor(clock, autonomy)
    broker.answer = Account(D(95), D(100))
    assert await mon.poll() is MarginLevel.CRITICAL
    broker.answer = ConnectionError("venue unreachable")
    for _ in range(3):
        assert await mon.poll() is MarginLevel.CRITICAL
    assert mon.counters["errors"] == 3 and mon.error_streak == 3 and "unreachable" in mon.last_error
    assert autonomy.mode is Mode.PLATFORM_REDUCE_ONLY and autonomy.active(Reason.MARGIN_CRITICAL) is not None
    assert [e.level for e in events] == ["critical", "error"]  # the first failure of a streak is published
    broker.answer = Account(D(10), D(100))
    assert await mon.poll() is MarginLevel.OK and mon.error_streak == 0


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="recovery_ratio <= warning_ratio < critical_ratio"):
        MarginConfig.model_validate({"warning_ratio": "0.9", "critical_ratio": "0.9"})
    with pytest.raises(ValidationError, match="recovery_ratio"):
        MarginConfig.model_validate({"recovery_ratio": "0.85"})
