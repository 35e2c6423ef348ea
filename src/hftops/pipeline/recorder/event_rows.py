"""Engine and safety-layer events -> table rows: the deduplication key, the event time and the column values.

Keys come from the event's own ids, never from the stream entry: the same fill published twice (a resync
after a reconnect, an engine restart) is one row. Values are checked here so a bad event becomes a dead
letter naming the field instead of an insert the database refuses: times must be nanoseconds between
2000 and 2100, decimals finite with at most 20 integer digits (they are cut to the column's 18 decimals).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, NamedTuple

import msgspec

from hftops.model.exec_events import PnlSnapshot, PositionsSnapshot, ReconEvent
from hftops.model.ops_events import AutonomyTransition, EvidenceRecord, FlattenReport, MarginEvent, SessionTransition
from hftops.model.orders import ZERO, Fill, OrderUpdate
from hftops.store.event_tables import EVENT_COLUMNS

_NS_MIN, _NS_MAX = 946_684_800_000_000_000, 4_102_444_800_000_000_000  # 2000-01-01 .. 2100-01-01
_INT64 = (-(2**63), 2**63 - 1)
_SCALE = Decimal(1).scaleb(-18)
_MAX_INT_DIGITS = 20
_JSON = msgspec.json.Encoder()


class EventRow(NamedTuple):
    key: str
    time_ns: int
    values: dict[str, Any]  # column -> JSON-ready value (decimals as text)


class BadEvent(ValueError):
    """The event cannot be stored; the message names the field and the value."""


def _time(name: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not _NS_MIN <= value < _NS_MAX:
        raise BadEvent(f"{name} {value!r} is not a nanosecond time between 2000 and 2100")
    return value


def _int(name: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not _INT64[0] <= value <= _INT64[1]:
        raise BadEvent(f"{name} {value!r} does not fit a signed 64-bit integer")
    return value


def dec(name: str, value: Decimal | None) -> str | None:
    """Plain decimal text for a Decimal(38, 18) column (None stays None for Nullable columns)."""
    if value is None:
        return None
    try:
        if not value.is_finite():
            raise BadEvent(f"{name} {value} is not a finite number")
        cut = value.quantize(_SCALE, rounding=ROUND_HALF_EVEN)
    except InvalidOperation as exc:
        raise BadEvent(f"{name} {value} has more than {_MAX_INT_DIGITS} integer digits") from exc
    if cut.adjusted() >= _MAX_INT_DIGITS:
        raise BadEvent(f"{name} {value} has more than {_MAX_INT_DIGITS} integer digits")
    text = format(cut.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _key(*parts: object) -> str:
    return "|".join(str(p) for p in parts)


def order_rows(event: OrderUpdate, venue: str) -> list[EventRow]:
    # A partial fill repeats its status: the filled quantity tells two updates of one millisecond apart.
    time_ns = _time("time_ns", event.time_ns)
    key = _key(venue, event.client_order_id, event.status.value, dec("filled_qty", event.filled_qty), time_ns)
    return [
        EventRow(
            key,
            time_ns,
            {
                "venue": venue,
                "strategy_id": event.strategy_id,
                "symbol": event.symbol,
                "client_order_id": event.client_order_id,
                "order_id": _int("order_id", event.order_id),
                "status": event.status.value,
                "side": event.side.value,
                "order_type": event.order_type.value,
                "tif": event.tif.value,
                "qty": dec("qty", event.qty),
                "price": dec("price", event.price),
                "filled_qty": dec("filled_qty", event.filled_qty),
                "avg_fill_price": dec("avg_fill_price", event.avg_fill_price),
                "reduce_only": event.reduce_only,
                "reason": event.reason,
            },
        )
    ]


def fill_rows(event: Fill, venue: str) -> list[EventRow]:
    time_ns = _time("time_ns", event.time_ns)
    trade_id = _int("trade_id", event.trade_id)
    key = (
        _key(venue, event.symbol, trade_id)
        if trade_id >= 0
        else _key(venue, event.symbol, "order", event.client_order_id, time_ns, dec("qty", event.qty))
    )
    return [
        EventRow(
            key,
            time_ns,
            {
                "venue": venue,
                "strategy_id": event.strategy_id,
                "symbol": event.symbol,
                "trade_id": trade_id,
                "side": event.side.value,
                "qty": dec("qty", event.qty),
                "price": dec("price", event.price),
                "fee": dec("fee", event.fee),
                "client_order_id": event.client_order_id,
                "order_id": _int("order_id", event.order_id),
                "is_maker": event.is_maker,
            },
        )
    ]


def position_rows(event: PositionsSnapshot, venue: str) -> list[EventRow]:
    time_ns = _time("time_ns", event.time_ns)
    rows = []
    for p in event.positions:
        rows.append(
            EventRow(
                _key(venue, time_ns, p.strategy_id, p.symbol),
                time_ns,
                {
                    "venue": venue,
                    "strategy_id": p.strategy_id,
                    "symbol": p.symbol,
                    "qty": dec("qty", p.qty),
                    "avg_price": dec("avg_price", p.avg_price),
                    "realized_pnl": dec("realized_pnl", p.realized_pnl),
                    "fees": dec("fees", p.fees),
                    "unrealized_pnl": dec("unrealized_pnl", p.unrealized_pnl),
                    "mark_price": dec("mark_price", p.mark_price),
                    "cost_known": p.cost_known,
                    "net_qty": dec("net_qty", event.net.get(p.symbol, ZERO)),
                },
            )
        )
    return rows


def pnl_rows(event: PnlSnapshot, venue: str) -> list[EventRow]:
    time_ns = _time("time_ns", event.time_ns)
    return [
        EventRow(
            _key(venue, time_ns),
            time_ns,
            {
                "venue": venue,
                "realized_pnl": dec("realized_pnl", event.realized_pnl),
                "unrealized_pnl": dec("unrealized_pnl", event.unrealized_pnl),
                "fees": dec("fees", event.fees),
                "equity": dec("equity", event.equity),
                "peak_equity": dec("peak_equity", event.peak_equity),
            },
        )
    ]


def recon_rows(event: ReconEvent, venue: str) -> list[EventRow]:
    time_ns = _time("time_ns", event.time_ns)
    return [
        EventRow(
            _key(venue, time_ns, event.kind, event.symbol),
            time_ns,
            {
                "venue": venue,
                "kind": event.kind,
                "symbol": event.symbol,
                "local_qty": dec("local_qty", event.local_qty),
                "broker_qty": dec("broker_qty", event.broker_qty),
                "diff": dec("diff", event.diff),
                "checks": _int("checks", event.checks),
                "since_ns": _int("since_ns", event.since_ns),
                "detail": event.detail,
            },
        )
    ]


def session_rows(event: SessionTransition, venue: str) -> list[EventRow]:
    time_ns = _time("time_ns", event.time_ns)
    return [
        EventRow(
            _key(time_ns, event.track, event.to_phase),
            time_ns,
            {
                "track": event.track,
                "from_phase": event.from_phase,
                "to_phase": event.to_phase,
                "trading_day": event.trading_day,
                "cause": event.cause,
                "next_phase": event.next_phase,
                "next_at_ns": _int("next_at_ns", event.next_at_ns),
            },
        )
    ]


def _id(event: AutonomyTransition | EvidenceRecord | FlattenReport) -> str:
    if not event.id:
        raise BadEvent("id is empty: the id is the event's deduplication key")
    return event.id


def autonomy_rows(event: AutonomyTransition, venue: str) -> list[EventRow]:
    return [
        EventRow(
            _id(event),
            _time("time_ns", event.time_ns),
            {
                "id": event.id,
                "scope": event.scope,
                "strategy_id": event.strategy_id,
                "from_mode": event.from_mode,
                "to_mode": event.to_mode,
                "reasons": event.reasons,
                "trigger": event.trigger,
                "operator": event.operator,
                "detail": event.detail,
            },
        )
    ]


def evidence_rows(event: EvidenceRecord, venue: str) -> list[EventRow]:
    return [
        EventRow(
            _id(event),
            _time("time_ns", event.time_ns),
            {
                "id": event.id,
                "scope": event.scope,
                "strategy_id": event.strategy_id,
                "from_mode": event.from_mode,
                "to_mode": event.to_mode,
                "trigger": event.trigger,
                "reasons": event.reasons,
                "trigger_values": event.trigger_values,
                "thresholds": event.thresholds,
                "health": event.health,
                "positions": event.positions,
                "stream_lag": event.stream_lag,
                "process": event.process,
                "log_tail": event.log_tail,
            },
        )
    ]


def flatten_rows(event: FlattenReport, venue: str) -> list[EventRow]:
    if not math.isfinite(event.deadline_s):
        raise BadEvent(f"deadline_s {event.deadline_s!r} is not a finite number of seconds")
    return [
        EventRow(
            _id(event),
            _time("time_ns", event.time_ns),
            {
                "id": event.id,
                "started_ns": _int("started_ns", event.started_ns),
                "scope": event.scope,
                "scope_id": event.scope_id,
                "trigger": event.trigger,
                "operator": event.operator,
                "deadline_s": event.deadline_s,
                "ok": event.ok,
                "symbols": _JSON.encode(event.symbols).decode(),
                "detail": event.detail,
            },
        )
    ]


def margin_rows(event: MarginEvent, venue: str) -> list[EventRow]:
    time_ns = _time("time_ns", event.time_ns)
    return [
        EventRow(
            _key(time_ns, event.level),
            time_ns,
            {
                "level": event.level,
                "ratio": event.ratio,
                "used": event.used,
                "available": event.available,
                "detail": event.detail,
            },
        )
    ]


def event_line(table: str, row: EventRow) -> bytes:
    """One JSONCompactEachRow line in the table's insert order (store.event_tables.EVENT_INSERT_COLUMNS)."""
    values = row.values
    return _JSON.encode([row.key, row.time_ns, *(values[name] for name, _ in EVENT_COLUMNS[table])])
