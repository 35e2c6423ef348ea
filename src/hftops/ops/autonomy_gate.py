"""The gates that enforce the autonomy mode (after the session and flatten gates, before the limits).

- AutonomyGate: PLATFORM_REDUCE_ONLY lets through only orders that strictly reduce both the strategy's
  position and the symbol's net position at the venue (no order when flat, quantity clamped to what is
  left after resting reducing orders, never a flip); HALT lets through only cancels and force-flat.
- StrategyGovernorGate: a quarantined strategy may only cancel and reduce (same rule).

Hot path: NORMAL (and no quarantine) is one attribute read and returns the shared ACCEPTED.
"""

from __future__ import annotations

from decimal import Decimal

from hftops.engine.state import EngineState
from hftops.model.orders import (
    ACCEPTED,
    ZERO,
    GateDecision,
    GateResult,
    Intent,
    IntentKind,
    OrderUpdate,
    RejectReason,
    Side,
)
from hftops.ops.autonomy_state import AutonomyController
from hftops.ops.modes import Mode

_NORMAL = Mode.NORMAL
_HALT = Mode.HALT
_CANCEL = IntentKind.CANCEL
_FORCE_FLAT = IntentKind.FORCE_FLAT
_AMEND = IntentKind.AMEND


def _reject(gate: str, reason: RejectReason, detail: str) -> GateResult:
    return GateResult(GateDecision.REJECT, reason, None, gate, detail)


def _resting(state: EngineState, symbol: str, side: Side, strategy_id: str | None, amended: str | None) -> Decimal:
    """Quantity resting on `side` for the symbol (one strategy's, or everyone's), minus an amended order's."""
    total = ZERO
    for order in state.orders:
        if (
            order.symbol == symbol
            and order.side is side
            and order.client_order_id != amended
            and (strategy_id is None or order.strategy_id == strategy_id)
        ):
            total += order.remaining_qty
    return total


def reducing_only(intent: Intent, state: EngineState, gate: str, reason: RejectReason, why: str) -> GateResult:
    """ACCEPTED / CLAMP when the order strictly reduces both the strategy's and the net position; else REJECT."""
    side, symbol, sid = intent.side, intent.symbol, intent.strategy_id
    if side is None:
        return _reject(gate, RejectReason.INVALID_INTENT, f"{why}: an order without a side cannot be judged")
    pos = state.positions.qty(sid, symbol)
    if pos == 0:
        return _reject(gate, reason, f"{why}: {sid} is flat in {symbol}, no new order")
    if (pos > 0) == (side is Side.BUY):
        return _reject(gate, reason, f"{why}: {side.value} would increase {sid}'s {symbol} position {pos}")
    net = state.positions.net_qty(symbol)
    if net == 0 or (net > 0) != (pos > 0):
        return _reject(gate, reason, f"{why}: {side.value} {symbol} would increase the net position {net} at the venue")
    amended = intent.client_order_id if intent.kind is _AMEND else None
    room = min(
        abs(pos) - _resting(state, symbol, side, sid, amended), abs(net) - _resting(state, symbol, side, None, amended)
    )
    if room <= 0:
        return _reject(
            gate, reason, f"{why}: resting {side.value} orders already cover {sid}'s {symbol} position {pos}"
        )
    if intent.qty > room:
        return GateResult(GateDecision.CLAMP, reason, room, gate, f"{why}: clamped to the open position ({room})")
    return ACCEPTED


def risk_increasing_orders(state: EngineState, strategy_id: str | None = None) -> list[OrderUpdate]:
    """Resting orders that could add risk if they filled now: every order of a flat strategy or on the side
    that grows its position, and reducing orders beyond what would flatten it. Cancelled on REDUCE_ONLY."""
    groups: dict[tuple[str, str, Side], list[OrderUpdate]] = {}
    for order in state.orders:
        if strategy_id is None or order.strategy_id == strategy_id:
            groups.setdefault((order.strategy_id, order.symbol, order.side), []).append(order)
    out: list[OrderUpdate] = []
    for (sid, symbol, side), orders in groups.items():
        pos = state.positions.qty(sid, symbol)
        if pos == 0 or (pos > 0) == (side is Side.BUY):
            out.extend(orders)
            continue
        room = abs(pos)
        for order in sorted(orders, key=lambda o: o.remaining_qty):
            room -= order.remaining_qty
            if room < 0:
                out.append(order)
    return out


class AutonomyGate:
    name = "autonomy_mode"

    def __init__(self, controller: AutonomyController) -> None:
        self._autonomy = controller

    def check(self, intent: Intent, state: EngineState) -> GateResult:
        mode = self._autonomy.mode
        if mode is _NORMAL:
            return ACCEPTED
        kind = intent.kind
        if kind is _CANCEL or kind is _FORCE_FLAT:
            return ACCEPTED
        reasons = ", ".join(e.reason.value for e in self._autonomy.entries() if not e.strategy_id)
        if mode is _HALT:
            return _reject(
                self.name,
                RejectReason.AUTONOMY_MODE,
                f"HALT ({reasons}): only cancels and flatten orders until `trading rearm`",
            )
        return reducing_only(intent, state, self.name, RejectReason.REDUCE_ONLY, f"PLATFORM_REDUCE_ONLY ({reasons})")


class StrategyGovernorGate:
    name = "strategy_governor"

    def __init__(self, controller: AutonomyController) -> None:
        self._autonomy = controller

    def check(self, intent: Intent, state: EngineState) -> GateResult:
        quarantined = self._autonomy.quarantined
        if not quarantined or intent.strategy_id not in quarantined:
            return ACCEPTED
        kind = intent.kind
        if kind is _CANCEL or kind is _FORCE_FLAT:
            return ACCEPTED
        return reducing_only(
            intent,
            state,
            self.name,
            RejectReason.STRATEGY_QUARANTINED,
            f"strategy {intent.strategy_id} quarantined (`trading rearm --strategy {intent.strategy_id}` lifts it)",
        )
