from __future__ import annotations

import pytest

from hftops.engine.gates import (
    GateChain,
    IntentShapeGate,
    LimitSpec,
    MaxNotionalGate,
    MaxOrderQtyGate,
    MaxPositionGate,
    OrderRateGate,
    PriceBandGate,
    build_gate_chain,
)
from hftops.engine.state import EngineState
from hftops.model.orders import (
    ACCEPTED,
    REJECT_REASONS,
    GateDecision,
    GateResult,
    Intent,
    IntentKind,
    OrderType,
    RejectReason,
    Side,
)
from tests.unit.engine.fakes import D, FakeClock, bbo, fill, order, state_with_mid

SPEC = LimitSpec(
    max_position_qty=D(10),
    max_notional=D(1500),
    max_order_qty=D(5),
    price_band_bps=D(50),
    max_orders_per_s=2.0,
    order_burst=3,
)
SYM = "BTCUSDT"  # mid 100


def new(side: Side = Side.BUY, qty: str = "1", price: str | None = "100", strategy: str = "s", **kw: object) -> Intent:
    return Intent(
        kind=IntentKind.NEW,
        strategy_id=strategy,
        symbol=SYM,
        side=side,
        qty=D(qty),
        price=D(price) if price is not None else None,
        order_type=OrderType.LIMIT if price is not None else OrderType.MARKET,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(clock: FakeClock) -> EngineState:
    return state_with_mid(clock, SYM, "99.9", "100.1")


def assert_reject(result: GateResult, reason: RejectReason) -> None:
    assert result.decision is GateDecision.REJECT
    assert result.reason is reason
    assert result.detail


def assert_clamp(result: GateResult, qty: str) -> None:
    assert result.decision is GateDecision.CLAMP
    assert result.qty == D(qty)


@pytest.mark.parametrize(
    "intent",
    [
        new(qty="0"),
        new(qty="-1"),
        new(qty="NaN"),
        new(price="0"),
        new(price="Infinity"),
        Intent(kind=IntentKind.NEW, strategy_id="s", symbol=SYM, qty=D(1), price=D(100)),  # no side
        Intent(kind=IntentKind.NEW, strategy_id="s", symbol=SYM, side=Side.BUY, qty=D(1)),  # LIMIT, no price
        Intent(kind=IntentKind.CANCEL, strategy_id="s", symbol=SYM),
        Intent(kind=IntentKind.AMEND, strategy_id="s", symbol=SYM, side=Side.BUY, qty=D(1), price=D(100)),
    ],
)
def test_shape_gate_rejects_malformed(intent: Intent, state: EngineState) -> None:
    assert_reject(IntentShapeGate().check(intent, state), RejectReason.INVALID_INTENT)


def test_shape_gate_accepts_well_formed(state: EngineState) -> None:
    gate = IntentShapeGate()
    assert gate.check(new(), state) is ACCEPTED
    assert gate.check(new(price=None), state) is ACCEPTED
    cancel = Intent(kind=IntentKind.CANCEL, strategy_id="s", symbol=SYM, client_order_id="c1")
    assert gate.check(cancel, state) is ACCEPTED


def test_max_order_qty_clamps(state: EngineState) -> None:
    gate = MaxOrderQtyGate({"big": LimitSpec(max_order_qty=D(50))}, SPEC)
    assert gate.check(new(qty="5"), state) is ACCEPTED
    assert_clamp(gate.check(new(qty="7"), state), "5")
    assert gate.check(new(qty="7", strategy="big"), state) is ACCEPTED  # per-strategy override


def test_max_position_accepts_clamps_rejects(state: EngineState) -> None:
    gate = MaxPositionGate({}, SPEC)
    state.positions.apply_fill(fill("s", SYM, Side.BUY, "6", "100"))
    assert gate.check(new(qty="4"), state) is ACCEPTED
    assert_clamp(gate.check(new(qty="5"), state), "4")
    state.orders.apply(order("s", SYM, "c1", Side.BUY, "3"))  # resting buys count
    assert_clamp(gate.check(new(qty="5"), state), "1")
    state.orders.apply(order("s", SYM, "c2", Side.BUY, "1"))
    assert_reject(gate.check(new(qty="1"), state), RejectReason.MAX_POSITION)
    # selling reduces: long 6 may sell up to 16 before reaching -10
    assert gate.check(new(Side.SELL, qty="16"), state) is ACCEPTED
    assert_clamp(gate.check(new(Side.SELL, qty="17"), state), "16")
    # another strategy has its own position
    assert gate.check(new(qty="10", strategy="other"), state) is ACCEPTED


def test_max_position_short_side(state: EngineState) -> None:
    gate = MaxPositionGate({}, SPEC)
    state.positions.apply_fill(fill("s", SYM, Side.SELL, "10", "100"))
    assert_reject(gate.check(new(Side.SELL, qty="0.001"), state), RejectReason.MAX_POSITION)
    assert gate.check(new(Side.BUY, qty="20"), state) is ACCEPTED


def test_max_position_amend_excludes_the_amended_order(state: EngineState) -> None:
    gate = MaxPositionGate({}, SPEC)
    state.orders.apply(order("s", SYM, "c1", Side.BUY, "8"))
    amend = Intent(
        kind=IntentKind.AMEND, strategy_id="s", symbol=SYM, side=Side.BUY, qty=D(10), price=D(100), client_order_id="c1"
    )
    assert gate.check(amend, state) is ACCEPTED
    assert_clamp(gate.check(new(qty="5"), state), "2")


def test_max_notional(state: EngineState) -> None:
    gate = MaxNotionalGate({}, SPEC)  # 1500 quote at price 100 = 15 units
    assert gate.check(new(qty="15"), state) is ACCEPTED
    assert_clamp(gate.check(new(qty="16.5"), state), "15.0")
    assert_clamp(gate.check(new(qty="20", price="120"), state), "12")
    state.positions.apply_fill(fill("s", SYM, Side.BUY, "15", "100"))
    assert_reject(gate.check(new(qty="1"), state), RejectReason.MAX_NOTIONAL)
    assert gate.check(new(Side.SELL, qty="5"), state) is ACCEPTED  # reducing always fits
    # a MARKET order is valued at the mid; with no mid it cannot be judged
    assert_reject(gate.check(new(qty="1", price=None), state), RejectReason.MAX_NOTIONAL)
    fresh = EngineState(FakeClock())
    assert_reject(gate.check(new(qty="1", price=None), fresh), RejectReason.NO_MARKET_DATA)


def test_max_notional_clamp_stays_on_the_orders_own_step(state: EngineState) -> None:
    """1500 of notional at 130 is 11.538...: the clamp rounds down to the order's own decimals, never up."""
    gate = MaxNotionalGate({}, SPEC)
    assert str(gate.check(new(qty="16.55", price="130"), state).qty) == "11.53"
    assert str(gate.check(new(qty="20", price="130"), state).qty) == "11"
    assert str(gate.check(new(qty="2E+1", price="130"), state).qty) == "1E+1"  # an order written in tens
    # at 200 only 7.5 fits: less than one of the order's steps (tens), so it is refused, not rounded up
    refused = gate.check(new(qty="2E+1", price="200"), state)
    assert_reject(refused, RejectReason.MAX_NOTIONAL)
    assert "less than one qty step" in refused.detail


def test_price_band(state: EngineState) -> None:
    gate = PriceBandGate({}, SPEC)  # 50 bps around mid 100: [99.5, 100.5]
    assert gate.check(new(price="100.5"), state) is ACCEPTED
    assert gate.check(new(Side.SELL, price="99.5"), state) is ACCEPTED
    assert_reject(gate.check(new(price="100.51"), state), RejectReason.PRICE_BAND)
    assert_reject(gate.check(new(price="99.49"), state), RejectReason.PRICE_BAND)
    assert gate.check(new(price=None), state) is ACCEPTED  # market orders have no price to judge
    state.on_bbo(bbo(SYM, "109.9", "110.1"))  # the band follows the mid
    assert_reject(gate.check(new(price="100.5"), state), RejectReason.PRICE_BAND)
    assert gate.check(new(price="110.5"), state) is ACCEPTED
    assert_reject(gate.check(new(), EngineState(FakeClock())), RejectReason.NO_MARKET_DATA)


def test_order_rate_token_bucket(state: EngineState, clock: FakeClock) -> None:
    gate = OrderRateGate({}, SPEC, clock)  # 2/s, burst 3
    assert all(gate.check(new(), state) is ACCEPTED for _ in range(3))
    assert_reject(gate.check(new(), state), RejectReason.MAX_ORDER_RATE)
    assert gate.check(new(strategy="other"), state) is ACCEPTED  # per strategy
    clock.advance(0.49)
    assert_reject(gate.check(new(), state), RejectReason.MAX_ORDER_RATE)
    clock.advance(0.01)
    assert gate.check(new(), state) is ACCEPTED
    cancel = Intent(kind=IntentKind.CANCEL, strategy_id="s", symbol=SYM, client_order_id="c")
    assert all(gate.check(cancel, state) is ACCEPTED for _ in range(10))  # cancels never limited


@pytest.mark.parametrize("kind", [IntentKind.CANCEL, IntentKind.FORCE_FLAT])
def test_risk_reducing_kinds_pass_every_limit_gate(kind: IntentKind, state: EngineState, clock: FakeClock) -> None:
    state.positions.apply_fill(fill("s", SYM, Side.BUY, "100", "100"))
    chain = build_gate_chain({}, SPEC, clock)
    intent = Intent(kind=kind, strategy_id="s", symbol=SYM, client_order_id="c1", qty=D(100))
    for _ in range(10):
        assert chain.evaluate(intent, state) == (intent, ACCEPTED)


def test_chain_clamps_then_rejects_and_counts(state: EngineState, clock: FakeClock) -> None:
    chain = build_gate_chain({}, SPEC, clock)
    sent, result = chain.evaluate(new(qty="7"), state)
    assert sent is not None and sent.qty == D(5)
    assert result.decision is GateDecision.CLAMP and result.reason is RejectReason.MAX_ORDER_QTY
    sent, result = chain.evaluate(new(price="200"), state)
    assert sent is None and result.reason is RejectReason.PRICE_BAND
    chain.evaluate(new(price="200"), state)
    counters = chain.counters
    assert counters.evaluated == 3 and counters.accepted == 1
    assert counters.rejected == {("s", SYM, "price_band"): 2}
    assert counters.clamped == {("s", SYM, "max_order_qty"): 1}
    assert counters.as_dict()["rejected"] == [{"strategy": "s", "symbol": SYM, "reason": "price_band", "count": 2}]


def test_refusal_sentences_name_the_values(state: EngineState, clock: FakeClock) -> None:
    """The text is built on read (the hot path keeps a template and its values); it names what was refused."""
    chain = build_gate_chain({}, SPEC, clock)
    _, band = chain.evaluate(new(price="200"), state)
    assert band.detail == "price 200 more than 50 bps from mid 100.0"
    _, clamp = chain.evaluate(new(qty="7"), state)
    assert clamp.detail == "qty 7 above max_order_qty 5"
    state.positions.apply_fill(fill("s", SYM, Side.BUY, "10", "100"))
    _, full = chain.evaluate(new(qty="1"), state)
    assert full.detail == "BUY 1 BTCUSDT: exposure 10 already at max_position_qty 10"
    for _ in range(5):
        chain.evaluate(new(Side.SELL, qty="1"), state)
    _, rate = chain.evaluate(new(Side.SELL, qty="1"), state)
    assert rate.reason is RejectReason.MAX_ORDER_RATE and rate.detail == "above 2/s (burst 3) for this strategy"


def test_max_notional_reuses_exposure_only_for_the_same_intent(state: EngineState, clock: FakeClock) -> None:
    """In the chain max_notional reuses the exposure max_position computed; a fill in between is seen."""
    chain = build_gate_chain({"s": LimitSpec(max_position_qty=D(100), max_notional=D(1500))}, SPEC, clock)
    intent = new(qty="5", price="100")
    assert chain.evaluate(intent, state)[0] == intent
    state.positions.apply_fill(fill("s", SYM, Side.BUY, "14", "100"))  # 1400 of the 1500 notional used
    sent, result = chain.evaluate(intent, state)  # the same object, judged again after the fill
    assert sent is not None and sent.qty == D(1) and result.reason is RejectReason.MAX_NOTIONAL


def test_rejected_intents_spend_no_rate_tokens(state: EngineState, clock: FakeClock) -> None:
    chain = build_gate_chain({}, SPEC, clock)
    for _ in range(10):
        assert chain.evaluate(new(price="200"), state)[0] is None
    assert all(chain.evaluate(new(), state)[0] is not None for _ in range(3))


class HaltGate:
    """Stands in for issue 5's safety gates: plugs in through the same protocol."""

    name = "autonomy_mode"

    def __init__(self) -> None:
        self.halted = False

    def check(self, intent: Intent, state: EngineState) -> GateResult:
        if self.halted and intent.kind is IntentKind.NEW:
            return GateResult(GateDecision.REJECT, RejectReason.AUTONOMY_MODE, gate=self.name, text="HALT")
        return ACCEPTED


def test_safety_gates_plug_in_before_limits(state: EngineState, clock: FakeClock) -> None:
    halt = HaltGate()
    chain = build_gate_chain({}, SPEC, clock, safety_gates=[halt])
    assert chain.names[:2] == ("intent_shape", "autonomy_mode")
    assert chain.evaluate(new(), state)[0] is not None
    halt.halted = True
    sent, result = chain.evaluate(new(), state)
    assert sent is None and result.reason is RejectReason.AUTONOMY_MODE


def test_chain_refuses_duplicate_gate_names() -> None:
    with pytest.raises(ValueError, match="unique"):
        GateChain([IntentShapeGate(), IntentShapeGate()])


def test_reason_codes_are_the_frozen_set() -> None:
    assert {"max_position", "max_notional", "max_order_rate", "price_band", "max_order_qty"} <= REJECT_REASONS
    assert {"session_phase", "autonomy_mode", "strategy_quarantined", "flatten_only"} <= REJECT_REASONS
    assert isinstance(REJECT_REASONS, frozenset)
