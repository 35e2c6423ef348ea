"""The simulated book a trading order meets: the venue's current touch plus modelled depth behind it.

The market process publishes only the touch (bookTicker). Behind it the venue models `levels` price levels
per side, one tick apart, level 0 being the touch with the published size and level i holding
`depth_qty * (1 + i)`. An order takes liquidity level by level, so a large MARKET order walks the book and
pays slippage. Liquidity taken stays taken until the touch changes (the next bookTicker refreshes the book),
so two orders in the same millisecond do not both get the touch size.
"""

from __future__ import annotations

from dataclasses import dataclass

from hftops.venue.trading.model import Side


@dataclass(frozen=True, slots=True)
class Touch:
    bid: int
    bid_qty: int
    ask: int
    ask_qty: int

    @property
    def mid2(self) -> int:
        """Twice the mid price, in price units (an integer, no rounding)."""
        return self.bid + self.ask


class DepthBook:
    def __init__(self, touch: Touch, tick: int, depth_qty: int, levels: int) -> None:
        self.tick = tick
        self.depth_qty = max(1, depth_qty)
        self.levels = max(1, levels)
        self.touch = touch
        self._taken: dict[Side, list[int]] = {}

    def set_touch(self, touch: Touch) -> None:
        if touch != self.touch:
            self.touch = touch
            self._taken.clear()

    def _level(self, book_side: Side, i: int) -> tuple[int, int]:
        """(price, size) of level i of the asks (book_side SELL) or bids (book_side BUY)."""
        t = self.touch
        if book_side is Side.SELL:
            price, size = t.ask + i * self.tick, t.ask_qty
        else:
            price, size = t.bid - i * self.tick, t.bid_qty
        return price, (size if i == 0 else self.depth_qty * (1 + i))

    def _levels(self, taker: Side, limit: int | None) -> list[tuple[int, int, int]]:
        """(level, price, size left) an order of side `taker` may take, best first, within `limit`."""
        book_side = Side.SELL if taker is Side.BUY else Side.BUY
        taken = self._taken.get(book_side, [])
        out = []
        for i in range(self.levels):
            price, size = self._level(book_side, i)
            if price <= 0:
                break
            if limit is not None and (price > limit if taker is Side.BUY else price < limit):
                break
            left = size - (taken[i] if i < len(taken) else 0)
            if left > 0:
                out.append((i, price, left))
        return out

    def available(self, taker: Side, limit: int | None) -> int:
        return sum(left for _, _, left in self._levels(taker, limit))

    def take(self, taker: Side, qty: int, limit: int | None) -> list[tuple[int, int]]:
        """Consume up to `qty`; returns the (price, qty) slices taken, best price first."""
        book_side = Side.SELL if taker is Side.BUY else Side.BUY
        taken = self._taken.setdefault(book_side, [0] * self.levels)
        slices = []
        for i, price, left in self._levels(taker, limit):
            if qty <= 0:
                break
            q = min(left, qty)
            taken[i] += q
            qty -= q
            slices.append((price, q))
        return slices
