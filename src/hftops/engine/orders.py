"""The engine's view of its open orders, kept from order updates through the order state machine."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from hftops.model.orders import ORDER_TRANSITIONS, ZERO, OrderUpdate, Side


class InvalidTransition(ValueError):
    """An order update that the state machine does not allow (e.g. FILLED -> PARTIALLY_FILLED)."""


class OpenOrders:
    """Non-terminal orders by client order id, indexed by (strategy, symbol) for strategies and gates.

    `pending_qty` (remaining quantity resting per side) lets the position gates count orders that may
    still fill, so a strategy cannot exceed a limit by stacking resting orders.
    """

    def __init__(self) -> None:
        self._orders: dict[str, OrderUpdate] = {}
        self._pending: dict[str, dict[str, list[Decimal]]] = {}  # strategy -> symbol -> [buy, sell]
        self.terminal_count = 0

    def __len__(self) -> int:
        return len(self._orders)

    def __iter__(self) -> Iterator[OrderUpdate]:
        return iter(list(self._orders.values()))

    def get(self, client_order_id: str) -> OrderUpdate | None:
        return self._orders.get(client_order_id)

    def for_symbol(self, strategy_id: str, symbol: str) -> list[OrderUpdate]:
        return [o for o in self._orders.values() if o.strategy_id == strategy_id and o.symbol == symbol]

    def pending_qty(self, strategy_id: str, symbol: str, side: Side) -> Decimal:
        by_symbol = self._pending.get(strategy_id)
        if by_symbol is None:
            return ZERO
        sides = by_symbol.get(symbol)
        if sides is None:
            return ZERO
        return sides[0] if side is Side.BUY else sides[1]

    def apply(self, update: OrderUpdate) -> OrderUpdate | None:
        """Take an update; returns the previous state. Raises InvalidTransition for an impossible one."""
        previous = self._orders.get(update.client_order_id)
        if previous is not None:
            if update.status not in ORDER_TRANSITIONS[previous.status]:
                raise InvalidTransition(
                    f"order {update.client_order_id}: {previous.status} -> {update.status} is not a valid transition"
                )
            if update.filled_qty < previous.filled_qty:
                raise InvalidTransition(
                    f"order {update.client_order_id}: filled qty went back from {previous.filled_qty} "
                    f"to {update.filled_qty}"
                )
            self._add_pending(previous, -1)
        if update.status.terminal:
            self._orders.pop(update.client_order_id, None)
            self.terminal_count += 1
        else:
            self._orders[update.client_order_id] = update
            self._add_pending(update, 1)
        return previous

    def _add_pending(self, order: OrderUpdate, sign: int) -> None:
        sides = self._pending.setdefault(order.strategy_id, {}).setdefault(order.symbol, [ZERO, ZERO])
        i = 0 if order.side is Side.BUY else 1
        sides[i] += order.remaining_qty * sign
