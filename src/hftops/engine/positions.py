"""Positions per (strategy, symbol) and net per symbol: signed quantity, average price, realized PnL, fees.

Exactness: quantities and prices are Decimal. Quantity is only ever added and subtracted, so the
position is exact. The average price needs one division when a position is added to; it is computed
in a 40-digit context, so realized PnL is exact to ~1e-30 of the notional (linear USDⓈ-M contracts:
PnL = closed qty x (exit - entry)). Fees are kept apart from realized PnL (net = realized - fees).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Context, Decimal, localcontext

import msgspec

from hftops.model.orders import MANUAL_STRATEGY, ZERO, Fill, Side

_CTX = Context(prec=40)


class PositionSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A position as it is checkpointed, published and shown (`trading positions --json`)."""

    strategy_id: str
    symbol: str
    qty: Decimal
    avg_price: Decimal
    realized_pnl: Decimal
    fees: Decimal
    cost_known: bool = True  # False for positions adopted from the broker (MANUAL) with no fills of ours


class PositionMark(msgspec.Struct, frozen=True, kw_only=True):
    """A position with its mark: what `trading positions`/`trading pnl` show and the `positions` table stores."""

    strategy_id: str
    symbol: str
    qty: Decimal
    avg_price: Decimal
    realized_pnl: Decimal
    fees: Decimal
    mark_price: Decimal | None  # the book mid; None before the first quote
    unrealized_pnl: Decimal
    cost_known: bool = True


class Position:
    """One strategy's position in one symbol. Mutated only by `apply_fill` and `adopt`."""

    __slots__ = ("avg_price", "cost_known", "fees", "qty", "realized_pnl", "strategy_id", "symbol")

    def __init__(self, strategy_id: str, symbol: str) -> None:
        self.strategy_id = strategy_id
        self.symbol = symbol
        self.qty = ZERO  # signed: > 0 long, < 0 short
        self.avg_price = ZERO  # of the open quantity; 0 when flat
        self.realized_pnl = ZERO
        self.fees = ZERO
        self.cost_known = True

    def apply_fill(self, side: Side, qty: Decimal, price: Decimal, fee: Decimal = ZERO) -> Decimal:
        """Book one fill; returns the PnL it realized. Open/add average in; reduce/close realize; flip does both."""
        if qty <= 0:
            raise ValueError(f"fill qty must be > 0, got {qty} for {self.strategy_id}/{self.symbol}")
        signed = qty if side is Side.BUY else -qty
        with localcontext(_CTX):
            self.fees += fee
            old = self.qty
            if old == 0 or (old > 0) == (signed > 0):  # open or add
                new = old + signed
                self.avg_price = (old * self.avg_price + signed * price) / new
                self.qty = new
                return ZERO
            closed = min(qty, abs(old))
            direction = 1 if old > 0 else -1
            realized = closed * (price - self.avg_price) * direction
            self.realized_pnl += realized
            new = old + signed
            self.qty = new
            if new == 0:
                self.avg_price = ZERO
            elif (new > 0) != (old > 0):  # flipped: the remainder opened at this fill's price
                self.avg_price = price
                self.cost_known = True
            return realized

    def unrealized(self, mark: Decimal) -> Decimal:
        with localcontext(_CTX):
            return self.qty * (mark - self.avg_price) if self.qty else ZERO

    def adopt(self, qty: Decimal, avg_price: Decimal, cost_known: bool) -> None:
        """Overwrite the open quantity from an outside source (broker reconciliation, checkpoint)."""
        self.qty = qty
        self.avg_price = avg_price if qty else ZERO
        self.cost_known = cost_known

    def snapshot(self) -> PositionSnapshot:
        return PositionSnapshot(
            strategy_id=self.strategy_id,
            symbol=self.symbol,
            qty=self.qty,
            avg_price=self.avg_price,
            realized_pnl=self.realized_pnl,
            fees=self.fees,
            cost_known=self.cost_known,
        )

    @classmethod
    def from_snapshot(cls, snap: PositionSnapshot) -> Position:
        pos = cls(snap.strategy_id, snap.symbol)
        pos.qty, pos.avg_price = snap.qty, snap.avg_price
        pos.realized_pnl, pos.fees, pos.cost_known = snap.realized_pnl, snap.fees, snap.cost_known
        return pos


class PositionBook:
    """Every position of the engine, with the net quantity per symbol kept current on each fill.

    Lookups are nested dicts (strategy -> symbol) so the gate chain's hot path builds no tuple keys.
    """

    def __init__(self, initial_equity: Decimal = ZERO) -> None:
        self._by_strategy: dict[str, dict[str, Position]] = {}
        self._net: dict[str, Decimal] = {}
        self.initial_equity = initial_equity
        self.peak_equity = initial_equity
        self.last_equity = initial_equity

    # --- reads (hot path) ---
    def qty(self, strategy_id: str, symbol: str) -> Decimal:
        by_symbol = self._by_strategy.get(strategy_id)
        if by_symbol is None:
            return ZERO
        pos = by_symbol.get(symbol)
        return ZERO if pos is None else pos.qty

    def net_qty(self, symbol: str) -> Decimal:
        return self._net.get(symbol, ZERO)

    def get(self, strategy_id: str, symbol: str) -> Position | None:
        by_symbol = self._by_strategy.get(strategy_id)
        return None if by_symbol is None else by_symbol.get(symbol)

    def __iter__(self) -> Iterator[Position]:
        for by_symbol in self._by_strategy.values():
            yield from by_symbol.values()

    def net(self) -> dict[str, Decimal]:
        return dict(self._net)

    # --- writes ---
    def position(self, strategy_id: str, symbol: str) -> Position:
        by_symbol = self._by_strategy.setdefault(strategy_id, {})
        pos = by_symbol.get(symbol)
        if pos is None:
            pos = by_symbol[symbol] = Position(strategy_id, symbol)
        return pos

    def apply_fill(self, fill: Fill) -> Decimal:
        pos = self.position(fill.strategy_id, fill.symbol)
        realized = pos.apply_fill(fill.side, fill.qty, fill.price, fill.fee)
        self._net[fill.symbol] = self._net.get(fill.symbol, ZERO) + (fill.qty if fill.side is Side.BUY else -fill.qty)
        return realized

    def adopt(self, strategy_id: str, symbol: str, qty: Decimal, avg_price: Decimal, cost_known: bool = False) -> None:
        pos = self.position(strategy_id, symbol)
        self._net[symbol] = self._net.get(symbol, ZERO) - pos.qty + qty
        pos.adopt(qty, avg_price, cost_known)

    def adjust_manual(self, symbol: str, delta: Decimal, price: Decimal) -> None:
        """Move the net by `delta` under the MANUAL strategy (reconciliation adopting the broker's quantity)."""
        pos = self.position(MANUAL_STRATEGY, symbol)
        self.adopt(MANUAL_STRATEGY, symbol, pos.qty + delta, price if pos.qty == 0 else pos.avg_price, False)

    # --- PnL ---
    def realized_pnl(self) -> Decimal:
        return sum((p.realized_pnl for p in self), ZERO)

    def fees(self) -> Decimal:
        return sum((p.fees for p in self), ZERO)

    def unrealized_pnl(self, mids: Mapping[str, Decimal]) -> Decimal:
        """Marked to the book mid; a symbol with no mid yet is marked at its average price (zero)."""
        total = ZERO
        for pos in self:
            mid = mids.get(pos.symbol)
            if mid is not None:
                total += pos.unrealized(mid)
        return total

    def mark(self, mids: Mapping[str, Decimal]) -> Decimal:
        """Equity = initial + realized - fees + unrealized; updates peak equity. Returns equity."""
        with localcontext(_CTX):
            equity = self.initial_equity + self.realized_pnl() - self.fees() + self.unrealized_pnl(mids)
        self.last_equity = equity
        if equity > self.peak_equity:
            self.peak_equity = equity
        return equity

    def marks(self, mids: Mapping[str, Decimal]) -> list[PositionMark]:
        """Every position marked to the mid, sorted by (strategy, symbol)."""
        rows = []
        for pos in sorted(self, key=lambda p: (p.strategy_id, p.symbol)):
            mid = mids.get(pos.symbol)
            rows.append(
                PositionMark(
                    strategy_id=pos.strategy_id,
                    symbol=pos.symbol,
                    qty=pos.qty,
                    avg_price=pos.avg_price,
                    realized_pnl=pos.realized_pnl,
                    fees=pos.fees,
                    mark_price=mid,
                    unrealized_pnl=pos.unrealized(mid) if mid is not None else ZERO,
                    cost_known=pos.cost_known,
                )
            )
        return rows

    # --- persistence ---
    def snapshots(self) -> list[PositionSnapshot]:
        return [p.snapshot() for p in self]

    @classmethod
    def restore(cls, snaps: list[PositionSnapshot], initial_equity: Decimal = ZERO) -> PositionBook:
        book = cls(initial_equity)
        for snap in snaps:
            pos = Position.from_snapshot(snap)
            book._by_strategy.setdefault(snap.strategy_id, {})[snap.symbol] = pos
            book._net[snap.symbol] = book._net.get(snap.symbol, ZERO) + snap.qty
        return book
