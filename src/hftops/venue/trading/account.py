"""The one simulated trading account: USDT wallet, one-way (BOTH) positions, leverage, cross margin, fees.

Margin model (cross, one-way mode): a position needs initial margin |qty| * mark / leverage and maintenance
margin |qty| * mark * maint_rate; every open, non-reduce-only order reserves remaining * price / leverage.
margin balance = wallet + unrealized PnL (marked to the book mid); available = margin balance - position
initial margin - open-order initial margin. An order is refused (-2019) when the margin of the part that
increases |position| exceeds available. Fees are paid in USDT from the wallet on every fill; realized PnL
goes to the wallet. No liquidation engine: a wallet that goes negative stays negative (and is visible).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from hftops.venue.symbols import SymbolSpec
from hftops.venue.trading.model import Order, OrderType, Side

ZERO = Decimal(0)
# Fees are charged in whole 1e-8 of the quote asset, as a fill reports them (and the journal keeps them): replaying
# the journal's fills after a restart then rebuilds the same wallet, not one off by the rounding of each fee.
FEE_QUANTUM = Decimal("1e-8")


@dataclass(slots=True)
class Position:
    symbol: str
    qty: int = 0  # signed, in quantity units
    entry: Decimal = ZERO  # average entry price
    realized: Decimal = ZERO  # accumulated realized PnL, before fees (`cr` of ACCOUNT_UPDATE)
    update_ms: int = 0


@dataclass(frozen=True, slots=True)
class FillEffect:
    commission: Decimal
    realized_pnl: Decimal


class Account:
    def __init__(
        self,
        specs: dict[str, SymbolSpec],
        wallet: Decimal,
        default_leverage: int,
        maker_rate: Decimal,
        taker_rate: Decimal,
        maint_rate: Decimal,
        mark: Callable[[str], Decimal],
    ) -> None:
        self.specs = specs
        self.wallet = wallet
        self.start_wallet = wallet
        self.default_leverage = default_leverage
        self.maker_rate, self.taker_rate, self.maint_rate = maker_rate, taker_rate, maint_rate
        self.mark = mark
        self.positions = {s: Position(s) for s in specs}
        self.leverage: dict[str, int] = {}
        self.fees_paid = ZERO
        self.update_ms = 0

    # ------------------------------------------------------------------ units

    def qty(self, symbol: str, units: int) -> Decimal:
        return Decimal(units).scaleb(-self.specs[symbol].qty_decimals)

    def price(self, symbol: str, units: int) -> Decimal:
        return Decimal(units).scaleb(-self.specs[symbol].price_decimals)

    def leverage_of(self, symbol: str) -> int:
        return self.leverage.get(symbol, self.default_leverage)

    # ------------------------------------------------------------------ fills

    def apply_fill(
        self,
        symbol: str,
        side: Side,
        qty: int,
        price: int,
        maker: bool,
        now_ms: int,
        commission: Decimal | None = None,  # given when replaying the journal (rates may have changed since)
    ) -> FillEffect:
        p, q = self.price(symbol, price), self.qty(symbol, qty)
        if commission is None:
            commission = (p * q * (self.maker_rate if maker else self.taker_rate)).quantize(FEE_QUANTUM)
        pos = self.positions[symbol]
        signed = side.sign * qty
        realized = ZERO
        if pos.qty == 0 or (pos.qty > 0) == (signed > 0):
            held = abs(pos.qty)
            pos.entry = (pos.entry * held + p * qty) / (held + qty)
            pos.qty += signed
        else:
            closing = min(abs(pos.qty), qty)
            realized = (p - pos.entry) * self.qty(symbol, closing) * (1 if pos.qty > 0 else -1)
            was_long = pos.qty > 0
            pos.qty += signed
            if pos.qty == 0:
                pos.entry = ZERO
            elif (pos.qty > 0) != was_long:  # flipped: the new side opened at this fill's price
                pos.entry = p
        pos.realized += realized
        pos.update_ms = self.update_ms = now_ms
        self.wallet += realized - commission
        self.fees_paid += commission
        return FillEffect(commission, realized)

    # ------------------------------------------------------------------ margin

    def notional(self, symbol: str) -> Decimal:
        return self.qty(symbol, self.positions[symbol].qty) * self.mark(symbol)

    def unrealized(self, symbol: str) -> Decimal:
        pos = self.positions[symbol]
        if pos.qty == 0:
            return ZERO
        return self.qty(symbol, pos.qty) * (self.mark(symbol) - pos.entry)

    def position_margin(self, symbol: str) -> Decimal:
        return abs(self.notional(symbol)) / self.leverage_of(symbol)

    def maint_margin(self, symbol: str) -> Decimal:
        return abs(self.notional(symbol)) * self.maint_rate

    def order_margin(self, order: Order) -> Decimal:
        if order.reduce_only or order.remaining <= 0:
            return ZERO
        price = self.price(order.symbol, order.price) if order.type is OrderType.LIMIT else self.mark(order.symbol)
        return self.qty(order.symbol, order.remaining) * price / self.leverage_of(order.symbol)

    def totals(self, open_orders: Iterable[Order]) -> dict[str, Decimal]:
        upnl = sum((self.unrealized(s) for s in self.specs), ZERO)
        position_im = sum((self.position_margin(s) for s in self.specs), ZERO)
        order_im = sum((self.order_margin(o) for o in open_orders), ZERO)
        maint = sum((self.maint_margin(s) for s in self.specs), ZERO)
        margin_balance = self.wallet + upnl
        return {
            "wallet": self.wallet,
            "unrealized": upnl,
            "margin_balance": margin_balance,
            "position_im": position_im,
            "order_im": order_im,
            "initial_margin": position_im + order_im,
            "maint_margin": maint,
            "available": margin_balance - position_im - order_im,
        }

    def increase_of(self, symbol: str, side: Side, qty: int) -> int:
        """The part of an order of `qty` that would increase |position| (the flip part when it reverses)."""
        pos = self.positions[symbol].qty
        if pos == 0 or (pos > 0) == (side is Side.BUY):
            return qty
        return max(0, qty - abs(pos))

    def required_margin(self, symbol: str, side: Side, qty: int, price: Decimal) -> Decimal:
        return self.qty(symbol, self.increase_of(symbol, side, qty)) * price / self.leverage_of(symbol)
