"""Events of the safety layer on the `ops:events:{kind}` streams (see `model.streams.OpsKind`); the
recorder stores each kind in its own table. Nested, free-form figures (trigger values, health,
positions) are kept as str -> str maps / lists so one schema serves every reason code."""

from __future__ import annotations

import msgspec


class SessionTransition(msgspec.Struct, frozen=True, kw_only=True):
    time_ns: int
    track: str
    from_phase: str  # model/phase names: INIT, PRE_OPEN, OPEN, CLOSE_ONLY, FORCE_FLAT, CLOSED
    to_phase: str
    trading_day: str  # ISO date of the session this phase belongs to (overnight sessions: the day they open)
    cause: str  # schedule | calendar | override | boot
    next_phase: str = ""
    next_at_ns: int = 0


class AutonomyTransition(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # also the id of the EvidenceRecord written with it
    time_ns: int
    scope: str  # platform | strategy
    strategy_id: str = ""
    from_mode: str  # NORMAL | STRATEGY_QUARANTINED | PLATFORM_REDUCE_ONLY | HALT
    to_mode: str
    reasons: list[str]  # reason codes (ops.reasons); the ones active after the transition
    trigger: str  # the reason code (or "rearm" / "recovered") that caused this transition
    operator: str = ""  # set for manual halt / rearm
    detail: str = ""


class EvidenceRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    time_ns: int
    scope: str
    strategy_id: str = ""
    from_mode: str
    to_mode: str
    trigger: str
    reasons: list[str]
    trigger_values: dict[str, str]  # what was measured, e.g. {"db_write_age_s": "61.2"}
    thresholds: dict[str, str]  # what it was compared with, e.g. {"db_write_age_s": "60"}
    health: dict[str, str]  # recent health figures (stream lag, RSS, WAL, broker, feed)
    positions: list[dict[str, str]]  # open positions at the transition
    stream_lag: dict[str, str]
    process: dict[str, str]  # pid, rss, cpu, open files of the engine
    log_tail: list[str]  # last log lines of the engine


class FlattenSymbol(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    strategy_id: str = ""  # empty for a platform-wide (net) flatten
    start_qty: str
    submitted: str  # quantities as decimal strings
    filled: str
    remaining: str
    failed: bool
    detail: str = ""


class FlattenReport(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    time_ns: int  # when it finished
    started_ns: int
    scope: str  # all | strategy | track
    scope_id: str = ""
    trigger: str  # manual | halt | force_flat | api
    operator: str = ""
    deadline_s: float
    ok: bool  # every position in scope confirmed flat by the broker before the deadline
    symbols: list[FlattenSymbol]
    detail: str = ""


class MarginEvent(msgspec.Struct, frozen=True, kw_only=True):
    time_ns: int
    level: str  # ok | warning | critical | error
    ratio: str  # margin used / available, decimal string
    used: str
    available: str
    detail: str = ""
