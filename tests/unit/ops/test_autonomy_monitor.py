"""The AutonomyMonitor over synthetic health samples and a controlled clock: every probe of issue 5."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hftops.config.autonomy import AutonomyConfig
from hftops.ops.autonomy_monitor import AutonomyMonitor
from hftops.ops.autonomy_probes import HealthSample
from hftops.ops.autonomy_state import AutonomyController
from hftops.ops.modes import Mode
from hftops.ops.reasons import Reason
from tests.unit.engine.fakes import FakeClock

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "2330")


class World:
    def __init__(self, **settings: Any) -> None:
        self.clock = FakeClock()
        self.cfg = AutonomyConfig(boot_grace_s=0, **settings)
        self.autonomy = AutonomyController(clock=self.clock, cooldown_s=self.cfg.cooldown_s, boot_grace_s=0)
        self.open = {s: True for s in SYMBOLS}
        self.monitor = AutonomyMonitor(self.autonomy, self.cfg, self.clock, SYMBOLS, is_open=self.open.__getitem__)
        self.trade_ids: dict[str, int] = {}  # no symbol has traded yet

    def sample(self, **fields: Any) -> HealthSample:
        base: dict[str, Any] = {
            "last_trade_ids": dict(self.trade_ids),
            "equity": Decimal(100_000),
            "peak_equity": Decimal(100_000),
            "memory_available_bytes": 8 * 1024**3,
        }
        base.update(fields)
        return HealthSample(**base)

    def tick(self, *symbols: str) -> None:
        for s in symbols:
            self.trade_ids[s] = self.trade_ids.get(s, 0) + 1

    def step(self, seconds: float = 0.25, **fields: Any) -> None:
        self.clock.advance(seconds)
        self.monitor.evaluate(self.sample(**fields))

    def reasons(self) -> set[str]:
        return {e.reason.value + (f"@{e.strategy_id}" if e.strategy_id else "") for e in self.autonomy.entries()}


def recorder(time: float, healthy: bool = True, wal: int = 0, guard: bool = False) -> dict[str, Any]:
    return {
        "time": time,
        "db": {"healthy": healthy, "error": None if healthy else "refused"},
        "wal": {"bytes": wal},
        "disk_guard": {"active": guard},
    }


def test_healthy_samples_change_nothing() -> None:
    w = World()
    for i in range(40):
        w.tick(*SYMBOLS)
        w.step(recorder=recorder(i), collector={"flapping": False, "totals": {"reconnects": 0}})
    assert w.autonomy.mode is Mode.NORMAL and not w.reasons()
    assert w.monitor.evaluations == 40 and w.monitor.figures["feed_active"] == "4"


def test_database_writes_stale_beyond_the_threshold_reduce_only() -> None:
    w = World(db_stale_s=60)
    w.step(recorder=recorder(1))
    for _ in range(59):
        w.step(1.0, recorder=recorder(1, healthy=False))  # the recorder reports a failing database
    assert w.autonomy.mode is Mode.NORMAL
    w.step(1.01, recorder=recorder(1, healthy=False))
    assert w.reasons() == {"clickhouse_unhealthy"}
    entry = w.autonomy.active(Reason.CLICKHOUSE_UNHEALTHY)
    assert entry is not None and entry.thresholds == {"db_write_age_s": "60.0"}


def test_a_recorder_that_stopped_reporting_counts_as_stale() -> None:
    w = World(db_stale_s=60)
    w.step(recorder=recorder(7))
    w.step(61, recorder=recorder(7))  # the same document for 61 s: nobody is writing
    assert w.reasons() == {"clickhouse_unhealthy"}


def test_no_recorder_ever_seen_is_not_judged() -> None:
    w = World(db_stale_s=60)
    w.step(600)
    assert Reason.CLICKHOUSE_UNHEALTHY.value not in w.reasons()


def test_wal_backlog_disk_guard_flapping_and_queue_depth() -> None:
    w = World(wal_backlog_max_bytes=1000, stream_backlog_fraction=0.9)
    w.step(recorder=recorder(1, wal=1001))
    assert w.reasons() == {"wal_backlog_unhealthy"}
    w = World()
    w.step(recorder=recorder(1, guard=True))
    assert w.reasons() == {"wal_backlog_unhealthy"}
    w = World()
    w.step(collector={"flapping": True, "totals": {"reconnects": 5}})
    assert w.reasons() == {"feed_reconnect_flapping"}
    w = World()
    w.step(stream_lengths={"md:sim:trade:BTCUSDT": 900}, stream_cap=1000)
    assert not w.reasons()
    w.step(stream_lengths={"md:sim:trade:BTCUSDT": 901}, stream_cap=1000)
    assert w.reasons() == {"queue_depth_exceeded"}


def test_memory_redis_and_broker() -> None:
    w = World(rss_max_bytes=100 * 1024**2, memory_available_min_bytes=10**9)
    w.step(rss_bytes=101 * 1024**2, memory_available_bytes=10**9 - 1)
    assert w.reasons() == {"rss_unhealthy", "memory_pressure"}
    w = World(redis_unhealthy_s=5)
    w.step()
    w.step(5, redis_ok=False, redis_error="ConnectionError")
    assert not w.reasons()
    w.step(0.01, redis_ok=False)
    assert w.reasons() == {"redis_unhealthy"}
    w = World(broker_unavailable_s=15)
    w.step(recon_checks=1)
    w.step(10, broker_connected=False, recon_checks=1)
    w.step(5.01, broker_connected=False, recon_checks=1)
    assert "broker_unavailable" in w.reasons()


def test_failing_position_queries_count_as_broker_unavailable() -> None:
    w = World(broker_unavailable_s=15)
    w.step(recon_checks=3, recon_failures=0)
    for i in range(1, 17):
        w.step(1.0, recon_checks=3, recon_failures=i)  # the stream is up but every REST query fails
    assert "broker_unavailable" in w.reasons()


def test_persisting_reconciliation_drift_latches() -> None:
    w = World()
    w.step(drifting=frozenset({"BTCUSDT"}))
    assert w.reasons() == {"reconciliation_drift"}
    w.step(120, drifting=frozenset())
    assert w.reasons() == {"reconciliation_drift"}  # latched: a human looks at the book


def test_drawdown_halts_only_after_consecutive_breaches() -> None:
    w = World(drawdown_max_fraction=Decimal("0.05"), drawdown_consecutive=3)
    peak = Decimal(100_000)
    low = Decimal(94_000)  # 6 % below the peak
    w.step(equity=low, peak_equity=peak)
    w.step(equity=low, peak_equity=peak)
    w.step(equity=Decimal(96_000), peak_equity=peak)  # recovers for one evaluation: the count restarts
    w.step(equity=low, peak_equity=peak)
    w.step(equity=low, peak_equity=peak)
    assert w.autonomy.mode is Mode.NORMAL
    w.step(equity=low, peak_equity=peak)
    assert w.autonomy.mode is Mode.HALT and w.reasons() == {"pnl_peak_drawdown"}
    entry = w.autonomy.active(Reason.PNL_PEAK_DRAWDOWN)
    assert entry is not None and entry.values["consecutive"] == "3" and entry.values["drawdown"] == "0.06"


def test_drawdown_is_not_judged_before_peak_equity_is_meaningful() -> None:
    w = World(drawdown_min_peak=Decimal(1000), drawdown_consecutive=1)
    w.step(equity=Decimal(1), peak_equity=Decimal(999))  # 99.9 % down, but the peak is not meaningful yet
    w.step(equity=Decimal(50_000), peak_equity=Decimal(100_000), marks_complete=False)  # no mark: unknown PnL
    assert w.autonomy.mode is Mode.NORMAL


def test_feed_gap_on_the_majority_of_active_open_symbols() -> None:
    w = World(feed_gap_s=10, feed_gap_halt_s=30)
    w.open["2330"] = False  # a closed market never counts
    w.tick(*SYMBOLS)
    w.step()
    for _ in range(11):
        w.tick("BTCUSDT")
        w.step(1.0)
    assert w.reasons() == {"feed_gap_majority"}  # ETH and SOL gapped: 2 of 3 active symbols
    entry = w.autonomy.active(Reason.FEED_GAP_MAJORITY)
    assert entry is not None and entry.values["gapped"] == "ETHUSDT,SOLUSDT" and entry.values["active"] == "3"
    for _ in range(20):
        w.tick("BTCUSDT")
        w.step(1.0)
    assert w.autonomy.mode is Mode.HALT and "feed_gap_halt" in w.reasons()


def test_one_quiet_symbol_of_three_is_no_majority() -> None:
    w = World(feed_gap_s=10)
    w.tick("BTCUSDT", "ETHUSDT", "SOLUSDT")
    w.step()
    for _ in range(40):
        w.tick("BTCUSDT", "ETHUSDT")
        w.step(1.0)
    assert not w.reasons()


def test_symbols_become_active_only_once_they_trade_in_their_session() -> None:
    w = World(feed_gap_s=10)
    w.open.update({"ETHUSDT": False, "SOLUSDT": False, "2330": False})
    w.tick("BTCUSDT", "ETHUSDT")
    w.step()
    w.open["ETHUSDT"] = True  # opens; traded only before it opened: not active yet
    w.step(30)
    assert w.monitor.figures["feed_active"] == "1" and w.reasons() == {"feed_gap_majority"}


def test_strategy_exceptions_and_reject_bursts_quarantine_that_strategy() -> None:
    w = World(strategy_error_burst=5, strategy_reject_burst=100, strategy_burst_window_s=10)
    w.step(strategy_errors={"mm1": 0, "mom1": 0}, strategy_rejects={"mm1": 0, "mom1": 0})
    w.step(4, strategy_errors={"mm1": 3, "mom1": 1}, strategy_rejects={"mm1": 50, "mom1": 0})
    w.step(11, strategy_errors={"mm1": 5, "mom1": 1}, strategy_rejects={"mm1": 99, "mom1": 0})
    assert not w.reasons()  # 3 errors fell out of the window before the next 2 came
    w.step(1, strategy_errors={"mm1": 8, "mom1": 1}, strategy_rejects={"mm1": 99, "mom1": 100})
    assert w.reasons() == {"strategy_exception@mm1", "strategy_reject_spike@mom1"}
    assert w.autonomy.mode is Mode.NORMAL and w.autonomy.quarantined == {"mm1", "mom1"}


def test_the_emergency_stop_latch_halts_with_manual_operator() -> None:
    w = World()
    w.step(emergency_latch={"mode": "HALT", "reason": "manual_operator", "by": "carol"})
    entry = w.autonomy.active(Reason.MANUAL_OPERATOR)
    assert w.autonomy.mode is Mode.HALT and entry is not None and entry.operator == "carol"


def test_dropped_engine_events_latch_recorder_data_loss() -> None:
    w = World()
    w.step(events_dropped=0)
    w.step(events_dropped=0)
    assert not w.reasons()
    w.step(events_dropped=12)
    assert w.reasons() == {"recorder_data_loss"}


def test_recovers_after_the_cooldown_through_the_monitor() -> None:
    w = World(cooldown_s=60, wal_backlog_max_bytes=1000)
    w.step(recorder=recorder(1, wal=5000))
    assert w.autonomy.mode is Mode.PLATFORM_REDUCE_ONLY
    w.step(0.25, recorder=recorder(2, wal=0))  # clear from here
    for _ in range(239):
        w.step(0.25, recorder=recorder(3, wal=0))
    assert w.autonomy.mode is Mode.PLATFORM_REDUCE_ONLY  # 59.75 s clear
    w.step(0.25, recorder=recorder(4, wal=0))
    assert w.autonomy.mode is Mode.NORMAL
