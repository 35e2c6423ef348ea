"""A position holder for drills and benchmarks of flattening: it opens a fixed position per symbol with one
MARKET order once the symbol has a quote, then holds it. With `reopen_after_s` it opens the position again
after it has been flat that long (so a bench can flatten, measure, and flatten again)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from hftops.engine.strategy import Strategy, StrategyContext
from hftops.model.orders import Bbo, GateResult, Intent, OrderUpdate, Side

RETRY_AFTER_NS = 1_000_000_000  # after a refusal: a gate says no (HALT, flatten running); ask again later


class PositionHolder(Strategy):
    """Params: `positions` {SYMBOL: signed qty} (symbols among the strategy's), `reopen_after_s` (0: never)."""

    def __init__(self, strategy_id: str, symbols: Sequence[str], params: Mapping[str, Any], ctx: StrategyContext):
        super().__init__(strategy_id, symbols, params, ctx)
        raw = params.get("positions")
        if not isinstance(raw, Mapping) or not raw:
            raise ValueError("positions must map SYMBOL to a signed quantity, e.g. {BTCUSDT: '0.01'}")
        self.targets = {str(s): Decimal(str(q)) for s, q in raw.items()}
        unknown = sorted(set(self.targets) - set(self.symbols))
        if unknown or any(q == 0 for q in self.targets.values()):
            raise ValueError(
                f"positions: symbols {unknown} are not the strategy's {list(self.symbols)}, or a quantity is 0"
            )
        self.reopen_after_ns = int(float(params.get("reopen_after_s", 0)) * 1e9)
        self._pending: set[str] = set()  # an opening order is on its way
        self._opened: set[str] = set()
        self._flat_since: dict[str, int] = {}
        self._not_before: dict[str, int] = {}

    def on_bbo(self, bbo: Bbo) -> list[Intent]:
        return self._maybe_open(bbo.symbol)

    def _maybe_open(self, symbol: str) -> list[Intent]:
        target = self.targets.get(symbol)
        now = self.ctx.now_ns()
        if target is None or symbol in self._pending or now < self._not_before.get(symbol, 0):
            return []
        held = self.ctx.position(symbol)
        if symbol in self._opened:
            if held != 0 or self.reopen_after_ns <= 0:
                self._flat_since.pop(symbol, None)
                return []
            if now - self._flat_since.setdefault(symbol, now) < self.reopen_after_ns:
                return []
        if self.ctx.mid(symbol) is None or held == target:
            return []
        self._pending.add(symbol)
        self._opened.add(symbol)
        self._flat_since.pop(symbol, None)
        qty = target - held
        return [self.market(symbol, Side.BUY if qty > 0 else Side.SELL, abs(qty), tag="hold-open")]

    def on_order_update(self, update: OrderUpdate) -> list[Intent]:
        if update.status.terminal:
            self._pending.discard(update.symbol)
        return []

    def on_reject(self, intent: Intent, result: GateResult) -> list[Intent]:
        self._pending.discard(intent.symbol)
        self._opened.discard(intent.symbol)  # never opened: try again once the gate may allow it
        self._not_before[intent.symbol] = self.ctx.now_ns() + RETRY_AFTER_NS
        return []
