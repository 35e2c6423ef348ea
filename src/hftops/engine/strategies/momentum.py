"""A momentum taker: fast/slow moving averages of trade prices; market orders on a crossover, capped position."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from hftops.engine.strategy import Strategy, StrategyContext
from hftops.model.orders import Intent, Side, Tick


class _Window:
    """A moving average over the last `size` prices, kept as a running sum."""

    __slots__ = ("prices", "total")

    def __init__(self, size: int) -> None:
        self.prices: deque[Decimal] = deque(maxlen=size)
        self.total = Decimal(0)

    def push(self, price: Decimal) -> None:
        if len(self.prices) == self.prices.maxlen:
            self.total -= self.prices[0]
        self.prices.append(price)
        self.total += price

    @property
    def full(self) -> bool:
        return len(self.prices) == self.prices.maxlen

    @property
    def mean(self) -> Decimal:
        return self.total / len(self.prices)


class _Averages:
    __slots__ = ("fast", "last_signal", "slow")

    def __init__(self, fast: int, slow: int) -> None:
        self.fast = _Window(fast)
        self.slow = _Window(slow)
        self.last_signal = 0  # +1 fast above slow, -1 below, 0 not yet known

    def push(self, price: Decimal) -> int:
        """The signal after this price: +1 / -1, or 0 until the slow window is full."""
        self.fast.push(price)
        self.slow.push(price)
        if not self.slow.full:
            return 0
        fast, slow = self.fast.mean, self.slow.mean
        return 1 if fast > slow else -1 if fast < slow else self.last_signal


class MomentumTaker(Strategy):
    """Params: `fast` and `slow` window lengths (trades), `qty` per order, `max_position` (absolute cap).
    On a crossover up it buys towards +max_position, on a crossover down it sells towards -max_position."""

    def __init__(self, strategy_id: str, symbols: Sequence[str], params: Mapping[str, Any], ctx: StrategyContext):
        super().__init__(strategy_id, symbols, params, ctx)
        self.fast = int(params.get("fast", 20))
        self.slow = int(params.get("slow", 100))
        self.qty = Decimal(str(params.get("qty", "0.01")))
        self.max_position = Decimal(str(params.get("max_position", "0.03")))
        if not 0 < self.fast < self.slow:
            raise ValueError(f"strategy {strategy_id}: need 0 < fast < slow, got fast={self.fast} slow={self.slow}")
        if self.qty <= 0 or self.max_position <= 0:
            raise ValueError(f"strategy {strategy_id}: qty and max_position must be > 0")
        self._averages = {symbol: _Averages(self.fast, self.slow) for symbol in self.symbols}

    def on_tick(self, tick: Tick) -> list[Intent]:
        averages = self._averages.get(tick.symbol)
        if averages is None:
            return []
        signal = averages.push(tick.price)
        previous, averages.last_signal = averages.last_signal, signal
        if signal == 0 or previous == 0 or signal == previous:
            return []
        position = self.ctx.position(tick.symbol)
        target = self.max_position * signal
        room = target - position
        if room == 0:
            return []
        side = Side.BUY if room > 0 else Side.SELL
        qty = min(self.qty, abs(room))
        return [self.market(tick.symbol, side, qty, tag="momentum")]
