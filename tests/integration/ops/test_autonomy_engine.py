"""Autonomy through the real engine (in this process, with a controlled clock), the simulated venue, the
collector and valkey: cooldown recovery, boot grace, rearm refusal and --force, one HALT flatten per
episode, drawdown HALT after consecutive breaches, strategy quarantine and strategy rearm."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hftops.control.engine_link import EngineCommandError, engine_command
from hftops.model.streams import STATS_HASH
from hftops.ops.reasons import Reason
from tests.conftest import ValkeyHandle
from tests.integration.engine.helpers import ENGINE_OVERRIDES, World
from tests.integration.ops.harness import (
    QUIET_AUTONOMY,
    InProcessEngine,
    OffsetClock,
    evidence,
    set_recorder_stats,
    transitions,
)
from tests.support.platform import TestPlatform
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.timeout(180)
COOLDOWN_S = 60.0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root: Path = tmp_path_factory.mktemp("autonomy")
    valkey = ValkeyHandle(root / "valkey")
    overrides = {
        **ENGINE_OVERRIDES,
        "redis": {"url": valkey.url},
        "autonomy": {**QUIET_AUTONOMY, "cooldown_s": COOLDOWN_S},
    }
    built = World(TestPlatform(root, overrides))
    try:
        yield built
    finally:
        built.close()
        valkey.stop(kill=True)


@pytest.fixture
def fresh(world: World) -> World:
    """Each test starts from NORMAL with no recorder figures (a test's latches are not the next one's)."""
    state = Path(world.config.data_dir) / "state"
    for name in ("autonomy.json", "autonomy_latch.json"):
        (state / name).unlink(missing_ok=True)
    world.redis.hdel(STATS_HASH, "recorder")
    return world


def command(world: World, cmd: str, **args: Any) -> dict[str, Any]:
    operator = args.pop("operator", "pytest")
    reason = args.pop("reason", "integration test")
    return engine_command(world.config.redis_url, cmd, args, operator=operator, reason=reason, timeout_s=5)


async def test_reduce_only_recovers_after_exactly_the_cooldown(fresh: World) -> None:
    clock = OffsetClock()
    proc = InProcessEngine(fresh.config, clock)
    engine = await proc.started()
    try:
        before = len(transitions(fresh.redis))
        set_recorder_stats(fresh.redis, wal_bytes=5000)
        await proc.mode("PLATFORM_REDUCE_ONLY")
        entry = engine.autonomy.active(Reason.WAL_BACKLOG_UNHEALTHY)
        assert entry is not None and entry.values["wal_bytes"] == "5000" and not entry.latched

        set_recorder_stats(fresh.redis, wal_bytes=0)
        await async_wait_for(_cleared(engine), 5, what="the monitor sees the condition clear")
        clear_since = entry.clear_since_ns
        assert clear_since is not None
        clock.advance(COOLDOWN_S - 0.5 - (clock() - clear_since) / 1e9)  # just short of the cooldown
        await proc.evaluations(3)
        assert engine.autonomy.mode.value == "PLATFORM_REDUCE_ONLY"
        clock.advance(0.5)
        await proc.mode("NORMAL", timeout_s=2)
        await async_wait_for(_published(fresh, before, 2), 5, what="both transitions on ops:events:autonomy")
        recovered = [t for t in transitions(fresh.redis)[before:] if t.trigger == "recovered"]
        assert len(recovered) == 1
        cleared_for_s = (recovered[0].time_ns - clear_since) / 1e9
        assert COOLDOWN_S <= cleared_for_s < COOLDOWN_S + 0.5, cleared_for_s  # the cooldown, within one cycle
        kinds = [(t.from_mode, t.to_mode, t.trigger) for t in transitions(fresh.redis)[before:]]
        assert kinds == [
            ("NORMAL", "PLATFORM_REDUCE_ONLY", "wal_backlog_unhealthy"),
            ("PLATFORM_REDUCE_ONLY", "NORMAL", "recovered"),
        ]
        record = next(e for e in evidence(fresh.redis) if e.id == transitions(fresh.redis)[before].id)
        assert record.trigger_values["wal_bytes"] == "5000" and record.thresholds["wal_bytes"] == "1000"
        assert record.process["pid"] and "wal_bytes" in record.health and record.stream_lag
    finally:
        assert await proc.stop() == 0


def _cleared(engine: Any) -> Any:
    async def check() -> bool:
        entry = engine.autonomy.active(Reason.WAL_BACKLOG_UNHEALTHY)
        return entry is not None and entry.clear_since_ns is not None

    return check


def _published(world: World, before: int, n: int) -> Any:
    async def check() -> bool:
        return len(transitions(world.redis)) - before >= n

    return check


async def test_boot_grace_keeps_start_up_probes_from_degrading(fresh: World) -> None:
    set_recorder_stats(fresh.redis, wal_bytes=5000)  # a condition already there at boot
    clock = OffsetClock()
    config = fresh.config.model_copy(
        update={"autonomy": fresh.config.autonomy.model_copy(update={"boot_grace_s": 30.0})}
    )
    proc = InProcessEngine(config, clock)
    engine = await proc.started()
    try:
        await proc.evaluations(5)
        assert engine.autonomy.mode.value == "NORMAL"
        assert engine.autonomy.counters["suppressed_in_grace"] >= 5
        clock.advance(30)
        await proc.mode("PLATFORM_REDUCE_ONLY")  # still there after the grace: now it counts
    finally:
        assert await proc.stop() == 0


async def test_rearm_is_refused_while_the_condition_is_present_and_force_accepts_it(fresh: World) -> None:
    proc = InProcessEngine(fresh.config, OffsetClock())
    engine = await proc.started()
    try:
        set_recorder_stats(fresh.redis, wal_bytes=5000)
        await proc.mode("PLATFORM_REDUCE_ONLY")
        with pytest.raises(EngineCommandError, match="still present: wal_backlog_unhealthy") as refused:
            await asyncio.to_thread(command, fresh, "rearm")
        assert refused.value.refused
        result = await asyncio.to_thread(command, fresh, "rearm", force=True, operator="alice")
        assert result["forced_over"] == ["wal_backlog_unhealthy"] and result["mode"] == "NORMAL"
        await proc.evaluations(3)
        assert engine.autonomy.mode.value == "NORMAL"  # forced: the present condition is accepted ...
        set_recorder_stats(fresh.redis, wal_bytes=0)
        await proc.evaluations(2)
        set_recorder_stats(fresh.redis, wal_bytes=9000)
        await proc.mode("PLATFORM_REDUCE_ONLY")  # ... until it clears and comes back
    finally:
        assert await proc.stop() == 0


async def test_halt_flattens_once_per_episode_and_drawdown_needs_consecutive_breaches(fresh: World) -> None:
    proc = InProcessEngine(fresh.config, OffsetClock())
    engine = await proc.started()
    try:
        await async_wait_for(_holding(fresh), 60, what="the strategies hold a position at the venue")
        await asyncio.to_thread(command, fresh, "halt", operator="alice", reason="drill")
        await proc.mode("HALT", timeout_s=2)
        await async_wait_for(_flat(fresh), 20, what="every position flat and no order open at the venue")
        assert engine.flattener.counters["requested"] == 1
        episode = engine.autonomy.halt_episode

        # a second reason within the same episode: no second flatten
        book = engine.state.positions
        book.peak_equity = book.mark(engine.state.mids) * 2  # equity now 50 % below its peak
        await async_wait_for(_active(engine, Reason.PNL_PEAK_DRAWDOWN), 10, what="pnl_peak_drawdown")
        drawdown = engine.autonomy.active(Reason.PNL_PEAK_DRAWDOWN)
        assert drawdown is not None
        assert drawdown.values["consecutive"] == str(engine.autonomy_settings.drawdown_consecutive)
        assert engine.autonomy.halt_episode == episode and engine.flattener.counters["requested"] == 1

        book.peak_equity = book.mark(engine.state.mids)  # the breach is over
        await proc.evaluations(2)
        await asyncio.to_thread(command, fresh, "rearm", operator="alice", reason="drill over")
        await proc.mode("NORMAL")
        await asyncio.to_thread(command, fresh, "halt", operator="alice", reason="second drill")
        await proc.mode("HALT")
        await async_wait_for(_requested(engine, 2), 5, what="a new episode flattens again")
        assert engine.autonomy.halt_episode != episode
    finally:
        assert await proc.stop() == 0


def _holding(world: World) -> Any:
    async def check() -> bool:
        return any(q != 0 for q in world.venue_positions().values())

    return check


def _flat(world: World) -> Any:
    async def check() -> bool:
        return all(q == 0 for q in world.venue_positions().values()) and world.venue_orders()["open"] == 0

    return check


def _active(engine: Any, reason: Reason, strategy: str = "") -> Any:
    async def check() -> bool:
        return engine.autonomy.active(reason, strategy) is not None

    return check


def _requested(engine: Any, n: int) -> Any:
    async def check() -> bool:
        return engine.flattener.counters["requested"] >= n

    return check


async def test_a_raising_strategy_is_quarantined_and_a_strategy_rearm_lifts_it(fresh: World) -> None:
    proc = InProcessEngine(fresh.config, OffsetClock())
    engine = await proc.started()
    mm1 = engine.core.strategies["mm1"]
    try:
        await async_wait_for(_resting(engine, "mm1"), 30, what="mm1 quoting")

        def broken(*_args: Any) -> None:
            raise ZeroDivisionError("strategy bug")

        original = mm1.on_bbo
        mm1.on_bbo = broken  # type: ignore[method-assign]
        await async_wait_for(_active(engine, Reason.STRATEGY_EXCEPTION, "mm1"), 10, what="mm1 quarantined")
        assert engine.autonomy.ladder_mode.value == "STRATEGY_QUARANTINED" and engine.autonomy.mode.value == "NORMAL"
        await async_wait_for(_no_resting(engine, "mm1"), 10, what="mm1's open orders cancelled")
        assert engine.stats()["autonomy"]["strategies"]["mm1"]["state"] == "quarantined"
        assert engine.stats()["autonomy"]["strategies"]["mom1"]["state"] == "normal"

        mm1.on_bbo = original  # type: ignore[method-assign]
        with pytest.raises(EngineCommandError, match="not quarantined"):
            await asyncio.to_thread(command, fresh, "rearm", strategy="mom1")
        result = await asyncio.to_thread(command, fresh, "rearm", strategy="mm1", reason="bug fixed")
        assert result["quarantined"] == [] and result["mode"] == "NORMAL"
        await async_wait_for(_resting(engine, "mm1"), 30, what="mm1 quoting again")
    finally:
        assert await proc.stop() == 0


def _resting(engine: Any, strategy: str) -> Any:
    async def check() -> bool:
        return any(o.strategy_id == strategy for o in engine.state.orders)

    return check


def _no_resting(engine: Any, strategy: str) -> Any:
    async def check() -> bool:
        return not any(o.strategy_id == strategy for o in engine.state.orders)

    return check
