"""What the flattener sends in one round and how it judges a symbol done: pure functions over the engine's
per-strategy book and the broker's net positions (no I/O).

Binance USDⓈ-M one-way mode keeps ONE net position per symbol at the broker; the engine keeps one per
(strategy, symbol). Two rules follow, and both keep every flatten order reduce-only at the broker:

- Scopes `all` and `track` close the broker's net position. The quantity is split over the strategies whose
  engine position has the net's sign (largest first), so each fill is booked to a strategy that held it;
  what no strategy explains (drift, a position opened outside the engine) is booked to MANUAL. Strategies
  whose positions offset each other are already flat at the broker: nothing is traded for them, and their
  opposite engine positions (which sum to zero) stay in the book, named in the report's detail.
- Scope `strategy` closes that strategy's share only: at most the part of its position that has the same sign
  as the broker's net, capped by the net. The rest is "netted": another strategy holds the opposite position
  in the same symbol, so the broker has nothing to close, and closing it anyway would open a new position at
  the broker (more risk, never allowed while degraded). It stays in the book, is reported as `remaining`
  with the reason, and is not a failure as long as the broker agrees with the engine about the symbol.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from hftops.model.ops_events import FlattenSymbol
from hftops.model.orders import MANUAL_STRATEGY, ZERO, Side


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    """One reduce-only MARKET order: `side` `qty` of `symbol`, booked to `strategy_id`."""

    strategy_id: str
    symbol: str
    side: Side
    qty: Decimal


def closing_side(qty: Decimal) -> Side:
    return Side.SELL if qty > 0 else Side.BUY


def plan_net(symbol: str, broker_qty: Decimal, book: Mapping[str, Decimal]) -> list[PlannedOrder]:
    """Orders that close the broker's net `broker_qty`; `book` is strategy -> engine qty in `symbol`."""
    if broker_qty == 0:
        return []
    side = closing_side(broker_qty)
    left = abs(broker_qty)
    holders = sorted(
        ((sid, q) for sid, q in book.items() if q != 0 and (q > 0) == (broker_qty > 0)),
        key=lambda item: (-abs(item[1]), item[0]),
    )
    orders = []
    for sid, qty in holders:
        take = min(abs(qty), left)
        orders.append(PlannedOrder(sid, symbol, side, take))
        left -= take
        if left == 0:
            return orders
    return [*orders, PlannedOrder(MANUAL_STRATEGY, symbol, side, left)]


def closable(strategy_qty: Decimal, broker_qty: Decimal) -> Decimal:
    """How much of a strategy's position a reduce-only order can close at the broker (>= 0)."""
    if strategy_qty == 0 or broker_qty == 0 or (strategy_qty > 0) != (broker_qty > 0):
        return ZERO
    return min(abs(strategy_qty), abs(broker_qty))


def plan_strategy(strategy_id: str, symbol: str, strategy_qty: Decimal, broker_qty: Decimal) -> PlannedOrder | None:
    qty = closable(strategy_qty, broker_qty)
    return PlannedOrder(strategy_id, symbol, closing_side(strategy_qty), qty) if qty > 0 else None


def offsetting(book: Mapping[str, Decimal]) -> str:
    """`mm1 +0.4 / mm2 -0.4` when strategies hold opposite positions in one symbol, else ''."""
    longs = any(q > 0 for q in book.values())
    shorts = any(q < 0 for q in book.values())
    if not (longs and shorts):
        return ""
    return " / ".join(f"{sid} {q:+}" for sid, q in sorted(book.items()) if q != 0)


@dataclass
class Leg:
    """One line of the report: a symbol (net scopes, strategy_id '') or one strategy's symbol."""

    symbol: str
    strategy_id: str
    start_qty: Decimal
    submitted: Decimal = ZERO
    filled: Decimal = ZERO
    remaining: Decimal = ZERO  # absolute; broker net (net legs) or the strategy's engine qty
    confirmed: bool = False  # the broker's own figures say this leg is done
    netted: Decimal = ZERO  # strategy legs: the part offset by other strategies (not closable)
    mismatch: str = ""  # strategy legs: broker and engine disagree about the symbol (this round)
    situation: str = ""  # why what stays in the book is not a failure (this round: offsetting, netted)
    rejects: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if text and text not in self.notes:
            self.notes.append(text)

    def reject(self, text: str) -> None:
        if len(self.rejects) < 5 and text not in self.rejects:
            self.rejects.append(text)

    def as_report(self) -> FlattenSymbol:
        parts = [*self.notes, self.situation] if self.situation else list(self.notes)
        if self.rejects:
            parts.append("refused: " + "; ".join(self.rejects))
        if not self.confirmed and self.mismatch:
            parts.append(self.mismatch)
        elif not self.confirmed and self.remaining:
            parts.append(f"still open: {self.remaining}")
        return FlattenSymbol(
            symbol=self.symbol,
            strategy_id=self.strategy_id,
            start_qty=str(self.start_qty),
            submitted=str(self.submitted),
            filled=str(self.filled),
            remaining=str(self.remaining),
            failed=not self.confirmed,
            detail="; ".join(parts),
        )


Book = Mapping[str, Mapping[str, Decimal]]  # symbol -> {strategy: engine qty}, non-zero entries


def plan_net_round(
    legs: dict[tuple[str, str], Leg], symbols: Iterable[str], broker: Mapping[str, Decimal], book: Book
) -> list[PlannedOrder]:
    """Scopes all/track: update each symbol's leg from the broker's net and plan the orders that close it."""
    orders: list[PlannedOrder] = []
    for symbol in sorted(symbols):
        net = broker.get(symbol, ZERO)
        holders = book.get(symbol, {})
        leg = legs.get((symbol, ""))
        if leg is None:
            if net == 0:
                continue  # nothing at the broker (an engine-only position is drift: reconciliation reports it)
            leg = legs[(symbol, "")] = Leg(symbol, "", start_qty=net)
        leg.remaining, leg.confirmed = abs(net), net == 0
        pairs = offsetting(holders) if net == 0 else ""
        leg.situation = f"flat at the broker; offsetting engine positions stay in the book: {pairs}" if pairs else ""
        orders.extend(plan_net(symbol, net, holders))
    return orders


def plan_strategy_round(
    legs: dict[tuple[str, str], Leg], strategy_id: str, broker: Mapping[str, Decimal], book: Book
) -> list[PlannedOrder]:
    """Scope strategy: update the strategy's legs; a leg is done when nothing closable is left and the
    broker agrees with the engine's book about the symbol (the strategy's fills really happened there)."""
    orders = []
    symbols = {s for s, holders in book.items() if holders.get(strategy_id)} | {s for s, _ in legs}
    for symbol in sorted(symbols):
        holders = book.get(symbol, {})
        qty, net = holders.get(strategy_id, ZERO), broker.get(symbol, ZERO)
        leg = legs.setdefault((symbol, strategy_id), Leg(symbol, strategy_id, start_qty=qty))
        leg.remaining = abs(qty)
        leg.netted = abs(qty) - closable(qty, net)
        order = plan_strategy(strategy_id, symbol, qty, net)
        engine_net = sum(holders.values(), ZERO)
        leg.mismatch = (
            ""
            if engine_net == net
            else f"the broker holds {net} {symbol}, the engine's book {engine_net}: not confirmed"
        )
        leg.confirmed = order is None and not leg.mismatch
        leg.situation = (
            f"{leg.netted} netted against other strategies at the broker ({offsetting(holders)}; broker net "
            f"{net}): closing it would open a new broker position, so it stays in the book"
            if order is None and leg.netted and not leg.mismatch
            else ""
        )
        if order is not None:
            orders.append(order)
    return orders
