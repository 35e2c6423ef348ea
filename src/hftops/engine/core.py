"""The engine's pure core: events in (book, trades, fills, order updates), gated intents out. No I/O.

The engine process feeds it from Redis and the broker and sends what it returns; tests drive it
directly. A strategy hook that raises is caught, counted per strategy and reported through
`on_strategy_error` (issue 5 quarantines a strategy on a burst); it never stops the other strategies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import msgspec

from hftops.engine.gates.chain import GateChain
from hftops.engine.orders import InvalidTransition
from hftops.engine.state import EngineState
from hftops.engine.strategy import Strategy
from hftops.model.orders import (
    Bbo,
    Fill,
    GateDecision,
    GateResult,
    Intent,
    IntentKind,
    OrderType,
    OrderUpdate,
    RejectReason,
    Side,
    Tick,
    TimeInForce,
)

StrategyErrorHook = Callable[[str, str, BaseException], None]  # (strategy id, hook name, exception)


class TradingCore:
    def __init__(
        self,
        state: EngineState,
        strategies: Sequence[Strategy],
        chain: GateChain,
        on_strategy_error: StrategyErrorHook | None = None,
        on_rejected: Callable[[Intent, GateResult], None] | None = None,
    ) -> None:
        self.state = state
        self.chain = chain
        self.strategies = {s.strategy_id: s for s in strategies}
        if len(self.strategies) != len(strategies):
            raise ValueError(f"strategy ids must be unique, got {[s.strategy_id for s in strategies]}")
        self._by_symbol: dict[str, list[Strategy]] = {}
        for strategy in strategies:
            for symbol in strategy.symbols:
                self._by_symbol.setdefault(symbol, []).append(strategy)
        self._on_strategy_error = on_strategy_error
        self._on_rejected = on_rejected
        self.strategy_errors: dict[str, int] = {}
        self.invalid_order_updates = 0

    # --- lifecycle ---
    def start(self) -> list[Intent]:
        return self._gate_all((s, self._call(s, "on_start")) for s in self.strategies.values())

    def stop(self) -> list[Intent]:
        return self._gate_all((s, self._call(s, "on_stop")) for s in self.strategies.values())

    # --- market data ---
    def on_bbo(self, bbo: Bbo) -> list[Intent]:
        self.state.on_bbo(bbo)
        return self._gate_all((s, self._call(s, "on_bbo", bbo)) for s in self._by_symbol.get(bbo.symbol, ()))

    def on_tick(self, tick: Tick) -> list[Intent]:
        self.state.on_tick(tick)
        return self._gate_all((s, self._call(s, "on_tick", tick)) for s in self._by_symbol.get(tick.symbol, ()))

    # --- execution events ---
    def on_fill(self, fill: Fill) -> list[Intent]:
        self.state.positions.apply_fill(fill)  # booked even when no strategy owns it (MANUAL, a removed one)
        strategy = self.strategies.get(fill.strategy_id)
        return [] if strategy is None else self._gate(strategy, self._call(strategy, "on_fill", fill))

    def on_order_update(self, update: OrderUpdate) -> list[Intent]:
        try:
            self.state.orders.apply(update)
        except InvalidTransition:
            self.invalid_order_updates += 1
            raise
        strategy = self.strategies.get(update.strategy_id)
        return [] if strategy is None else self._gate(strategy, self._call(strategy, "on_order_update", update))

    def on_broker_reject(self, intent: Intent, reason: RejectReason, detail: str) -> list[Intent]:
        """The broker refused an order that passed the gates; the strategy hears it like a gate rejection."""
        return self._reject(intent, GateResult(GateDecision.REJECT, reason, None, "broker", detail), follow_up=True)

    # --- internals ---
    def _call(self, strategy: Strategy, hook: str, *args: object) -> list[Intent]:
        try:
            intents = getattr(strategy, hook)(*args)
            return list(intents) if intents else []
        except Exception as exc:  # a strategy bug must not take the engine down
            self.strategy_errors[strategy.strategy_id] = self.strategy_errors.get(strategy.strategy_id, 0) + 1
            if self._on_strategy_error is not None:
                self._on_strategy_error(strategy.strategy_id, hook, exc)
            return []

    def _gate_all(self, batches: Iterable[tuple[Strategy, list[Intent]]]) -> list[Intent]:
        out: list[Intent] = []
        for strategy, intents in batches:
            out.extend(self._gate(strategy, intents))
        return out

    def _gate(self, strategy: Strategy, intents: list[Intent], follow_up: bool = True) -> list[Intent]:
        out: list[Intent] = []
        for intent in intents:
            if intent.strategy_id != strategy.strategy_id:
                # a strategy may only speak for itself
                intent = msgspec.structs.replace(intent, strategy_id=strategy.strategy_id)
            if intent.kind is IntentKind.FORCE_FLAT:
                flat = self.force_flat_order(intent)
                if flat is None:
                    continue
                intent = flat
            sent, result = self.chain.evaluate(intent, self.state)
            if sent is not None:
                out.append(sent)
            else:
                out.extend(self._reject(intent, result, follow_up))
        return out

    def _reject(self, intent: Intent, result: GateResult, follow_up: bool) -> list[Intent]:
        if self._on_rejected is not None:
            self._on_rejected(intent, result)
        strategy = self.strategies.get(intent.strategy_id)
        if strategy is None:
            return []
        replies = self._call(strategy, "on_reject", intent, result)
        # what a strategy sends in answer to a rejection is gated, but its rejections are not answered again
        return self._gate(strategy, replies, follow_up=False) if follow_up and replies else []

    def force_flat_order(self, intent: Intent) -> Intent | None:
        """FORCE_FLAT -> a reduce-only MARKET order for the strategy's whole position; None when flat."""
        qty = self.state.positions.qty(intent.strategy_id, intent.symbol)
        if qty == 0:
            return None
        return msgspec.structs.replace(
            intent,
            side=Side.SELL if qty > 0 else Side.BUY,
            qty=abs(qty),
            price=None,
            order_type=OrderType.MARKET,
            tif=TimeInForce.IOC,
            reduce_only=True,
        )
