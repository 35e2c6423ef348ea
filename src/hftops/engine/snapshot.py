"""What the engine publishes about itself: position/PnL snapshots and the `ops:stats` JSON."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hftops.engine.state import EngineState
from hftops.model.exec_events import PnlSnapshot, PositionRow, PositionsSnapshot
from hftops.model.orders import RejectReason

if TYPE_CHECKING:
    from hftops.engine.service import Engine

# Broker error codes -> the reason a strategy hears (the detail keeps the broker's own code and text).
_BROKER_REASONS = {
    "-2019": RejectReason.MAX_NOTIONAL,  # margin is insufficient
    "-2022": RejectReason.REDUCE_ONLY,  # ReduceOnly order is rejected
    "-1003": RejectReason.MAX_ORDER_RATE,  # too many requests
}


def broker_reject_reason(reason: str) -> RejectReason:
    code = reason.partition(":")[0].strip()
    return _BROKER_REASONS.get(code, RejectReason.INVALID_INTENT)


def positions_snapshot(state: EngineState, now_ns: int) -> PositionsSnapshot:
    rows = [
        PositionRow(
            strategy_id=m.strategy_id,
            symbol=m.symbol,
            qty=m.qty,
            avg_price=m.avg_price,
            realized_pnl=m.realized_pnl,
            fees=m.fees,
            unrealized_pnl=m.unrealized_pnl,
            mark_price=m.mark_price,
            cost_known=m.cost_known,
        )
        for m in state.positions.marks(state.mids)
    ]
    return PositionsSnapshot(time_ns=now_ns, positions=rows, net=state.positions.net())


def pnl_snapshot(state: EngineState, now_ns: int) -> PnlSnapshot:
    book = state.positions
    equity = book.mark(state.mids)
    return PnlSnapshot(
        time_ns=now_ns,
        realized_pnl=book.realized_pnl(),
        unrealized_pnl=book.unrealized_pnl(state.mids),
        fees=book.fees(),
        equity=equity,
        peak_equity=book.peak_equity,
    )


def _iso(ns: int | None) -> str | None:
    return None if ns is None else datetime.fromtimestamp(ns / 1e9, UTC).isoformat()


def _strategy_state(engine: Engine, strategy_id: str, trading: bool, halted: bool) -> str:
    if halted:
        return "halted"
    if not trading:
        return engine.phase
    if engine.autonomy.strategy_quarantined(strategy_id):
        return "quarantined"
    return "reduce_only" if engine.autonomy.mode.value == "PLATFORM_REDUCE_ONLY" else "running"


def engine_stats(engine: Engine) -> dict[str, Any]:
    state = engine.state
    book = state.positions
    rejects: dict[str, dict[str, int]] = {}
    for (strategy, _symbol, reason), n in engine.chain.counters.rejected.items():
        by_reason = rejects.setdefault(strategy, {})
        by_reason[reason] = by_reason.get(reason, 0) + n
    for (strategy, reason), n in engine.broker_rejects.items():
        by_reason = rejects.setdefault(strategy, {})
        key = f"broker_{reason}"
        by_reason[key] = by_reason.get(key, 0) + n
    autonomy = engine.autonomy
    halted = autonomy.mode.value == "HALT"
    trading = engine.phase == "running" and engine.refusing_reason is None and not halted
    strategies = [
        {
            "id": s.strategy_id,
            "state": _strategy_state(engine, s.strategy_id, trading, halted),
            "symbols": list(s.symbols),
            "rejects": rejects.get(s.strategy_id, {}),
            "errors": engine.core.strategy_errors.get(s.strategy_id, 0),
            # what `trading strategies` shows beside the counters: which code runs, with which parameters
            "class": f"{type(s).__module__}:{type(s).__qualname__}",
            "params": {k: v if isinstance(v, (int, float, bool)) else str(v) for k, v in s.params.items()},
            "open_orders": sum(1 for o in state.orders if o.strategy_id == s.strategy_id),
        }
        for s in engine.strategies
    ]
    orders = [
        {
            "client_order_id": o.client_order_id,
            "strategy": o.strategy_id,
            "symbol": o.symbol,
            "side": o.side.value,
            "type": o.order_type.value,
            "qty": str(o.qty),
            "price": None if o.price is None else str(o.price),
            "filled_qty": str(o.filled_qty),
            "status": o.status.value,
        }
        for o in state.orders
    ]
    positions = [
        {
            "strategy": m.strategy_id,
            "symbol": m.symbol,
            "qty": str(m.qty),
            "avg_price": str(m.avg_price),
            "realized_pnl": str(m.realized_pnl),
            "unrealized_pnl": str(m.unrealized_pnl),
            "fees": str(m.fees),
            "mark_price": None if m.mark_price is None else str(m.mark_price),
            "cost_known": m.cost_known,
        }
        for m in book.marks(state.mids)
    ]
    equity = book.mark(state.mids)
    return {
        "time_ns": engine.clock(),
        "pid": os.getpid(),  # who answers: `trading positions` names it when no PID file does (systemd)
        "state": engine.phase,
        "ready_to_trade": trading,
        "refusing_reason": engine.refusing_reason,
        "halt_latch": autonomy.store.emergency_latch() if autonomy.store is not None else None,
        "autonomy": engine.autonomy_wiring.snapshot(),
        "strategies": strategies,
        "open_orders": len(orders),
        "orders": orders,
        "positions": positions,
        "net": {symbol: str(qty) for symbol, qty in sorted(book.net().items())},
        "realized_pnl": str(book.realized_pnl()),
        "unrealized_pnl": str(book.unrealized_pnl(state.mids)),
        "fees": str(book.fees()),
        "equity": str(equity),
        "peak_equity": str(book.peak_equity),
        "last_checkpoint_ns": engine.last_checkpoint_ns,
        "last_checkpoint_at": _iso(engine.last_checkpoint_ns),
        "checkpoint_path": str(engine.checkpoint_file),
        "recon": {
            "checks": engine.drift.checks,
            "query_failures": engine.drift.query_failures,
            "drifting": sorted(engine.drift.drifting),
        },
        "counters": dict(engine.counters),
        "gates": {"evaluated": engine.chain.counters.evaluated, "accepted": engine.chain.counters.accepted},
        "sessions": engine.sessions.snapshot(),  # track -> phase, next_phase, next_at (status `sessions`)
        "session_gate": {**engine.sessions.stats(), "drops": engine.session_gate.drops_as_list()},
        "feed": engine.feed.stats(),
        "events": engine.publisher.stats(),
        "execution": engine.execution.stats(),
        "flatten": engine.flattener.stats(),  # running jobs, counters, the last reports (control.flatten_client)
        "margin": engine.margin.stats(),
        "notify": engine.notifier.stats(),
        "commands": dict(engine.commands.counters),
    }
