"""Engine events on the `exec:{venue}:*` streams that are not orders or fills: position and PnL snapshots,
reconciliation events. Orders and fills travel as `model.orders.OrderUpdate` / `Fill`."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from hftops.model.orders import ZERO


class PositionRow(msgspec.Struct, frozen=True, kw_only=True):
    strategy_id: str
    symbol: str
    qty: Decimal
    avg_price: Decimal
    realized_pnl: Decimal
    fees: Decimal
    unrealized_pnl: Decimal
    mark_price: Decimal | None = None  # the book mid; None before the first quote
    cost_known: bool = True


class PositionsSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    time_ns: int
    positions: list[PositionRow]
    net: dict[str, Decimal]  # symbol -> net signed quantity over every strategy


class PnlSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    time_ns: int
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    equity: Decimal
    peak_equity: Decimal


class ReconEvent(msgspec.Struct, frozen=True, kw_only=True):
    """kind: `drift` (persisted past the debounce), `resolved`, or `startup_<action>` (one per symbol)."""

    time_ns: int
    kind: str
    symbol: str
    local_qty: Decimal
    broker_qty: Decimal
    checks: int = 0
    since_ns: int = 0
    detail: str = ""
    diff: Decimal = ZERO
