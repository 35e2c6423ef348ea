from __future__ import annotations

import pytest

from hftops.engine.core import TradingCore
from hftops.engine.gates import LimitSpec, build_gate_chain
from hftops.engine.orders import InvalidTransition
from hftops.engine.state import EngineState
from hftops.engine.strategy import Strategy, StrategyContext
from hftops.model.orders import (
    Bbo,
    GateResult,
    Intent,
    IntentKind,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
    Tick,
    TimeInForce,
)
from tests.unit.engine.fakes import D, FakeClock, bbo, fill, order

SYM = "BTCUSDT"
SPEC = LimitSpec(max_position_qty=D(1), max_order_qty=D(1), price_band_bps=D(50), max_orders_per_s=100, order_burst=100)


class Scripted(Strategy):
    """Answers each bbo with `self.script`; records rejections; raises on ticks when told to."""

    script: list[Intent]

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.script = []
        self.rejections: list[tuple[Intent, GateResult]] = []
        self.fills = 0
        self.explode = False

    def on_bbo(self, bbo: Bbo) -> list[Intent]:
        return self.script

    def on_tick(self, tick: Tick) -> list[Intent]:
        if self.explode:
            raise RuntimeError("strategy bug")
        return []

    def on_fill(self, fill: object) -> list[Intent]:
        self.fills += 1
        return []

    def on_reject(self, intent: Intent, result: GateResult) -> list[Intent]:
        self.rejections.append((intent, result))
        return [self.limit(SYM, Side.BUY, D("0.1"), D(100), tag="retry")]


def make(ids: tuple[str, ...] = ("a",)) -> tuple[TradingCore, dict[str, Scripted], list[tuple[str, str]]]:
    clock = FakeClock()
    state = EngineState(clock)
    strategies = {sid: Scripted(sid, [SYM], {}, StrategyContext(sid, state)) for sid in ids}
    errors: list[tuple[str, str]] = []
    core = TradingCore(
        state,
        list(strategies.values()),
        build_gate_chain({}, SPEC, clock),
        on_strategy_error=lambda sid, hook, exc: errors.append((sid, hook)),
    )
    return core, strategies, errors


def test_bbo_updates_state_then_gates_intents() -> None:
    core, s, _ = make()
    s["a"].script = [s["a"].limit(SYM, Side.BUY, D(2), D(100))]
    (sent,) = core.on_bbo(bbo(SYM, "99.9", "100.1"))
    assert sent.qty == D(1)  # clamped by max_order_qty
    assert core.state.mids[SYM] == D(100)


def test_rejection_goes_back_to_the_strategy_and_its_answer_is_gated() -> None:
    core, s, _ = make()
    s["a"].script = [s["a"].limit(SYM, Side.BUY, D(1), D(200))]
    (retry,) = core.on_bbo(bbo(SYM, "99.9", "100.1"))
    ((intent, result),) = s["a"].rejections
    assert result.reason is RejectReason.PRICE_BAND and intent.price == D(200)
    assert retry.tag == "retry"
    assert core.chain.counters.rejected == {("a", SYM, "price_band"): 1}


def test_broker_reject_reaches_the_strategy() -> None:
    core, s, _ = make()
    core.on_bbo(bbo(SYM, "99.9", "100.1"))
    intent = s["a"].limit(SYM, Side.BUY, D(1), D(100))
    core.on_broker_reject(intent, RejectReason.INVALID_INTENT, "-1013 filter failure")
    assert s["a"].rejections[0][1].gate == "broker"


def test_strategy_exception_is_counted_and_isolated() -> None:
    core, s, errors = make(("a", "b"))
    s["a"].explode = True
    tick = Tick(symbol=SYM, trade_id=1, price=D(100), qty=D(1), taker_side=Side.BUY, time_ms=0)
    assert core.on_tick(tick) == []
    assert core.strategy_errors == {"a": 1} and errors == [("a", "on_tick")]


def test_strategy_cannot_speak_for_another() -> None:
    core, s, _ = make(("a", "b"))
    s["a"].script = [Intent(kind=IntentKind.NEW, strategy_id="b", symbol=SYM, side=Side.BUY, qty=D(1), price=D(100))]
    (sent,) = core.on_bbo(bbo(SYM, "99.9", "100.1"))
    assert sent.strategy_id == "a"


def test_fills_book_positions_and_reach_the_owner() -> None:
    core, s, _ = make()
    core.on_fill(fill("a", SYM, Side.BUY, "0.5", "100"))
    core.on_fill(fill("MANUAL", SYM, Side.SELL, "0.2", "100"))  # owned by nobody: booked anyway
    assert s["a"].fills == 1
    assert core.state.positions.net_qty(SYM) == D("0.3")


def test_force_flat_becomes_a_reduce_only_market_order() -> None:
    core, s, _ = make()
    core.on_fill(fill("a", SYM, Side.BUY, "0.7", "100"))
    s["a"].script = [s["a"].flatten(SYM)]
    (sent,) = core.on_bbo(bbo(SYM, "99.9", "100.1"))
    assert (sent.kind, sent.side, sent.qty, sent.order_type, sent.tif, sent.reduce_only) == (
        IntentKind.FORCE_FLAT,
        Side.SELL,
        D("0.7"),
        OrderType.MARKET,
        TimeInForce.IOC,
        True,
    )
    core.on_fill(fill("a", SYM, Side.SELL, "0.7", "100"))
    assert core.on_bbo(bbo(SYM, "99.9", "100.1")) == []  # flat: nothing to send


def test_invalid_order_update_is_counted_and_raised() -> None:
    core, _, _ = make()
    core.on_order_update(order("a", SYM, "c1", Side.BUY, "1", status=OrderStatus.FILLED, filled="1"))
    core.on_order_update(order("a", SYM, "c2", Side.BUY, "1"))
    with pytest.raises(InvalidTransition):
        core.on_order_update(order("a", SYM, "c2", Side.BUY, "1", status=OrderStatus.NEW))
    assert core.invalid_order_updates == 1
