"""The frozen set of autonomy reason codes: why the platform (or one strategy) left NORMAL.

Operators search logs, evidence and notifications for these names; a new code is added here first, and
a test fails on any code used in the source that is not in this set. Which mode a reason imposes and
whether it recovers by itself is decided here too, so the whole ladder reads in one screen.
"""

from __future__ import annotations

from enum import StrEnum, unique


@unique
class Reason(StrEnum):
    BROKER_UNAVAILABLE = "broker_unavailable"
    CLICKHOUSE_UNHEALTHY = "clickhouse_unhealthy"
    FEED_GAP_MAJORITY = "feed_gap_majority"
    FEED_GAP_HALT = "feed_gap_halt"  # HFT_STORMGUARD_FEED_GAP_HALT_S: a feed gap this long while open
    FEED_RECONNECT_FLAPPING = "feed_reconnect_flapping"
    MEMORY_PRESSURE = "memory_pressure"
    PERSISTENCE_FAILURE = "persistence_failure"
    PNL_PEAK_DRAWDOWN = "pnl_peak_drawdown"
    QUEUE_DEPTH_EXCEEDED = "queue_depth_exceeded"
    RECONCILIATION_DRIFT = "reconciliation_drift"
    RSS_UNHEALTHY = "rss_unhealthy"
    WAL_BACKLOG_UNHEALTHY = "wal_backlog_unhealthy"
    MARGIN_CRITICAL = "margin_critical"
    RECORDER_DATA_LOSS = "recorder_data_loss"
    REDIS_UNHEALTHY = "redis_unhealthy"
    STRATEGY_EXCEPTION = "strategy_exception"
    STRATEGY_REJECT_SPIKE = "strategy_reject_spike"
    MANUAL_OPERATOR = "manual_operator"
    FLATTEN_FAILED = "flatten_failed"  # a flatten missed its deadline with positions still open


# The infrastructure reasons: they return to NORMAL once the condition has been clear for the cooldown.
AUTO_RECOVERABLE: frozenset[Reason] = frozenset(
    {
        Reason.BROKER_UNAVAILABLE,
        Reason.CLICKHOUSE_UNHEALTHY,
        Reason.FEED_GAP_MAJORITY,
        Reason.FEED_RECONNECT_FLAPPING,
        Reason.MEMORY_PRESSURE,
        Reason.PERSISTENCE_FAILURE,
        Reason.QUEUE_DEPTH_EXCEEDED,
        Reason.RSS_UNHEALTHY,
        Reason.WAL_BACKLOG_UNHEALTHY,
        Reason.MARGIN_CRITICAL,
        Reason.REDIS_UNHEALTHY,
    }
)

# Reasons that stop everything but cancels and flattening (HALT never recovers by itself).
HALTING: frozenset[Reason] = frozenset(
    {
        Reason.MANUAL_OPERATOR,
        Reason.PNL_PEAK_DRAWDOWN,
        Reason.FLATTEN_FAILED,
        Reason.FEED_GAP_HALT,
    }
)

# Reasons that concern one strategy: they quarantine it, the rest of the platform trades on.
STRATEGY_SCOPED: frozenset[Reason] = frozenset({Reason.STRATEGY_EXCEPTION, Reason.STRATEGY_REJECT_SPIKE})

REASON_CODES: frozenset[str] = frozenset(r.value for r in Reason)

assert not (AUTO_RECOVERABLE & HALTING), "HALT never recovers automatically"
