"""A quoting market maker: one bid and one ask around the mid, skewed against inventory, capped by it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

from hftops.engine.strategy import Strategy, StrategyContext
from hftops.model.orders import Bbo, Intent, OrderUpdate, Side


class QuotingMarketMaker(Strategy):
    """Params: `qty` per quote, `half_spread_bps`, `skew_bps_per_unit` (quotes move against inventory),
    `max_inventory` (stop quoting the side that would add beyond it), `requote_bps` (cancel/replace when
    the wanted price moved at least this much), `tick` (price step quotes are rounded to).

    A quote fills when the market walks into it before it is re-quoted: with `requote_bps` below
    `half_spread_bps` the quotes chase the mid and only a jump of the whole gap in one step fills them."""

    def __init__(self, strategy_id: str, symbols: Sequence[str], params: Mapping[str, Any], ctx: StrategyContext):
        super().__init__(strategy_id, symbols, params, ctx)
        self.qty = Decimal(str(params.get("qty", "0.01")))
        self.half_spread_bps = Decimal(str(params.get("half_spread_bps", "3")))
        self.skew_bps_per_unit = Decimal(str(params.get("skew_bps_per_unit", "0.5")))
        self.max_inventory = Decimal(str(params.get("max_inventory", "0.05")))
        self.requote_bps = Decimal(str(params.get("requote_bps", "6")))
        self.tick = Decimal(str(params.get("tick", "0.01")))
        if self.qty <= 0 or self.max_inventory <= 0 or self.tick <= 0:
            raise ValueError(f"strategy {strategy_id}: qty, max_inventory and tick must be > 0")

    def wanted_quotes(self, symbol: str, mid: Decimal) -> dict[Side, Decimal | None]:
        """The bid and ask prices wanted now (None: do not quote that side)."""
        inventory = self.ctx.position(symbol)
        units = inventory / self.qty
        skew = mid * self.skew_bps_per_unit * units / 10_000  # long: both quotes move down, to sell sooner
        half = mid * self.half_spread_bps / 10_000
        bid = ((mid - half - skew) / self.tick).to_integral_value(ROUND_DOWN) * self.tick
        ask = ((mid + half - skew) / self.tick).to_integral_value(ROUND_UP) * self.tick
        return {
            Side.BUY: bid if inventory + self.qty <= self.max_inventory else None,
            Side.SELL: ask if inventory - self.qty >= -self.max_inventory else None,
        }

    def on_bbo(self, bbo: Bbo) -> list[Intent]:
        if bbo.symbol not in self.symbols or bbo.bid_price <= 0 or bbo.ask_price < bbo.bid_price:
            return []
        return self._requote(bbo.symbol, bbo.mid)

    def on_order_update(self, update: OrderUpdate) -> list[Intent]:
        mid = self.ctx.mid(update.symbol)
        if update.status.terminal and mid is not None:
            return self._requote(update.symbol, mid)  # a quote filled or died: put it back at today's price
        return []

    def _requote(self, symbol: str, mid: Decimal) -> list[Intent]:
        wanted = self.wanted_quotes(symbol, mid)
        resting: dict[Side, list[OrderUpdate]] = {Side.BUY: [], Side.SELL: []}
        for order in sorted(self.ctx.open_orders(symbol), key=lambda o: o.client_order_id):
            resting[order.side].append(order)
        intents: list[Intent] = []
        threshold = mid * self.requote_bps / 10_000
        for side in (Side.BUY, Side.SELL):
            price = wanted[side]
            keep = None
            for order in resting[side]:
                if (
                    keep is None
                    and price is not None
                    and order.price is not None
                    and abs(order.price - price) < threshold
                ):
                    keep = order
                else:
                    intents.append(self.cancel(order))
            if price is not None and keep is None:
                intents.append(self.limit(symbol, side, self.qty, price, tag=f"quote-{side.value.lower()}"))
        return intents

    def on_stop(self) -> list[Intent]:
        return [self.cancel(o) for symbol in self.symbols for o in self.ctx.open_orders(symbol)]
