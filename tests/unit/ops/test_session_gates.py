"""Phase filtering through the real TradingCore and gate chain: every phase x intent kind, the CLOSE_ONLY
clamp that never flips a position, the FlattenGate, counters, and a property: whatever the sequence of
phases and intents, no fill increases |position| outside OPEN."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hftops.engine.core import TradingCore
from hftops.engine.gates import LimitSpec, build_gate_chain
from hftops.engine.state import EngineState
from hftops.engine.strategy import Strategy, StrategyContext
from hftops.model.orders import (
    ACCEPTED,
    Fill,
    GateDecision,
    GateResult,
    Intent,
    IntentKind,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
)
from hftops.model.phases import Phase
from hftops.ops.session_gates import FlattenGate, SessionGate
from hftops.ops.track_gate import TrackGate
from tests.unit.engine.fakes import D, FakeClock, bbo, order
from tests.unit.ops.session_support import RecordingLog, stock_track

SYM = "2330"
SPEC = LimitSpec(
    max_position_qty=D(100),
    max_notional=D(10**9),
    max_order_qty=D(50),
    price_band_bps=D(500),
    max_orders_per_s=10_000,
    order_burst=10_000,
)


class Scripted(Strategy):
    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.script: list[Intent] = []
        self.rejections: list[tuple[Intent, GateResult]] = []

    def on_bbo(self, _: object) -> list[Intent]:
        script, self.script = self.script, []
        return script

    def on_reject(self, intent: Intent, result: GateResult) -> list[Intent]:
        self.rejections.append((intent, result))
        return []


class World:
    def __init__(self, position: str = "2") -> None:
        clock = FakeClock()
        self.state = EngineState(clock)
        self.tracks = TrackGate([stock_track()], symbols=[SYM], log=RecordingLog())
        self.session = SessionGate(self.tracks)
        self.flatten = FlattenGate(self.tracks)
        chain = build_gate_chain({}, SPEC, clock, safety_gates=(self.session, self.flatten))
        self.strategy = Scripted("s", [SYM], {}, StrategyContext("s", self.state))
        self.core = TradingCore(self.state, [self.strategy], chain)
        self.state.on_bbo(bbo(SYM, "99", "101"))
        if D(position):
            side = Side.BUY if D(position) > 0 else Side.SELL
            self.state.positions.apply_fill(
                Fill(strategy_id="s", symbol=SYM, side=side, qty=abs(D(position)), price=D(100))
            )

    def phase(self, phase: Phase) -> None:
        self.tracks.set_track_phase("stock", phase)

    def send(self, *intents: Intent) -> list[Intent]:
        self.strategy.script = list(intents)
        return self.core.on_bbo(bbo(SYM, "99", "101"))


def new(side: Side, qty: str, kind: IntentKind = IntentKind.NEW, cid: str | None = None) -> Intent:
    return Intent(kind=kind, strategy_id="s", symbol=SYM, side=side, qty=D(qty), price=D(100), client_order_id=cid)


CANCEL = Intent(kind=IntentKind.CANCEL, strategy_id="s", symbol=SYM, client_order_id="c1")
FLAT = Intent(kind=IntentKind.FORCE_FLAT, strategy_id="s", symbol=SYM)
ALL_PHASES = list(Phase)

# phase -> does it pass: (increasing NEW, reducing NEW, increasing AMEND, reducing AMEND, CANCEL, FORCE_FLAT)
MATRIX = {
    Phase.OPEN: (True, True, True, True, True, True),
    Phase.CLOSE_ONLY: (False, True, False, True, True, True),
    Phase.FORCE_FLAT: (False, False, False, False, True, True),
    Phase.PRE_OPEN: (False, False, False, False, True, False),
    Phase.CLOSED: (False, False, False, False, True, False),
    Phase.INIT: (False, False, False, False, True, False),
}


@pytest.mark.parametrize("phase", ALL_PHASES)
def test_every_phase_and_intent_kind(phase: Phase) -> None:
    intents = [
        new(Side.BUY, "1"),
        new(Side.SELL, "1"),
        new(Side.BUY, "1", IntentKind.AMEND, "c9"),
        new(Side.SELL, "1", IntentKind.AMEND, "c9"),
        CANCEL,
        FLAT,
    ]
    for intent, passes in zip(intents, MATRIX[phase], strict=True):
        world = World(position="2")
        world.phase(phase)
        sent = world.send(intent)
        assert bool(sent) is passes, (phase, intent.kind, intent.side)
        if passes:
            assert sent[0].kind is intent.kind
            continue
        ((_, result),) = world.strategy.rejections
        assert result.decision is GateDecision.REJECT and result.gate == "session"
        assert result.reason is RejectReason.SESSION_PHASE and phase.name in result.detail
        assert world.session.drops == {("s", SYM, phase.name): 1}


def test_force_flat_becomes_a_reduce_only_market_order_for_the_whole_position() -> None:
    world = World(position="-3")
    world.phase(Phase.FORCE_FLAT)
    (sent,) = world.send(FLAT)
    assert (sent.kind, sent.side, sent.qty, sent.order_type, sent.reduce_only) == (
        IntentKind.FORCE_FLAT,
        Side.BUY,
        D(3),
        OrderType.MARKET,
        True,
    )
    assert sent.tif is TimeInForce.IOC


def test_close_only_clamps_a_reducing_order_to_the_position_never_flipping() -> None:
    world = World(position="2")
    world.phase(Phase.CLOSE_ONLY)
    (sent,) = world.send(new(Side.SELL, "5"))
    assert sent.qty == D(2)
    assert world.core.chain.counters.clamped == {("s", SYM, "session_phase"): 1}


def test_close_only_counts_resting_reducing_orders() -> None:
    world = World(position="2")
    world.state.orders.apply(order("s", SYM, "rest1", Side.SELL, "1.5"))
    world.phase(Phase.CLOSE_ONLY)
    (sent,) = world.send(new(Side.SELL, "1"))
    assert sent.qty == D("0.5")  # 2 long, 1.5 already resting to sell
    # an amend of the resting order itself may use its own quantity again
    (amended,) = world.send(new(Side.SELL, "2", IntentKind.AMEND, "rest1"))
    assert amended.qty == D(2)
    world.state.orders.apply(order("s", SYM, "rest2", Side.SELL, "0.5"))
    assert world.send(new(Side.SELL, "1")) == []
    assert "resting" in world.strategy.rejections[-1][1].detail


def test_close_only_refuses_orders_of_a_flat_strategy_and_other_strategies_positions_do_not_count() -> None:
    world = World(position="0")
    world.state.positions.apply_fill(Fill(strategy_id="other", symbol=SYM, side=Side.BUY, qty=D(5), price=D(100)))
    world.phase(Phase.CLOSE_ONLY)
    assert world.send(new(Side.SELL, "1")) == []
    assert "is flat" in world.strategy.rejections[-1][1].detail


def test_a_symbol_in_no_track_is_closed_for_new_orders_but_cancels_pass() -> None:
    world = World(position="0")
    world.phase(Phase.OPEN)
    foreign = Intent(kind=IntentKind.NEW, strategy_id="s", symbol="2454", side=Side.BUY, qty=D(1), price=D(100))
    assert world.session.check(foreign, world.state).reason is RejectReason.SESSION_PHASE
    cancel = Intent(kind=IntentKind.CANCEL, strategy_id="s", symbol="2454", client_order_id="x")
    assert world.session.check(cancel, world.state) is ACCEPTED


def test_flatten_gate_alone_lets_only_closing_orders_through_in_force_flat() -> None:
    world = World(position="2")
    world.phase(Phase.FORCE_FLAT)
    state = world.state
    result = world.flatten.check(new(Side.SELL, "1"), state)
    assert result.reason is RejectReason.FLATTEN_ONLY and "FORCE_FLAT" in result.detail
    assert world.flatten.check(CANCEL, state) is ACCEPTED
    assert world.flatten.check(FLAT, state) is ACCEPTED
    world.phase(Phase.OPEN)
    assert world.flatten.check(new(Side.BUY, "1"), state) is ACCEPTED


# --- property: no risk-increasing fill outside OPEN --------------------------------------------------------

steps = st.lists(
    st.one_of(
        st.tuples(st.just("phase"), st.sampled_from(ALL_PHASES)),
        st.tuples(
            st.just("intent"),
            st.sampled_from([IntentKind.NEW, IntentKind.AMEND, IntentKind.FORCE_FLAT, IntentKind.CANCEL]),
            st.sampled_from([Side.BUY, Side.SELL]),
            st.sampled_from(["0.5", "1", "2", "3", "7"]),
        ),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(steps=steps, start=st.sampled_from(["-3", "0", "2"]))
def test_no_fill_increases_exposure_outside_open(steps: list[tuple], start: str) -> None:  # type: ignore[type-arg]
    world = World(position=start)
    phase = Phase.INIT
    world.phase(phase)
    for step in steps:
        if step[0] == "phase":
            phase = step[1]
            world.phase(phase)
            continue
        _, kind, side, qty = step
        intent = (
            FLAT
            if kind is IntentKind.FORCE_FLAT
            else (
                CANCEL
                if kind is IntentKind.CANCEL
                else new(side, qty, kind, "c9" if kind is IntentKind.AMEND else None)
            )
        )
        for sent in world.send(intent):
            if sent.kind is IntentKind.CANCEL:
                continue
            before = world.state.positions.qty("s", SYM)
            assert sent.side is not None
            world.state.positions.apply_fill(
                Fill(strategy_id="s", symbol=SYM, side=sent.side, qty=sent.qty, price=Decimal(100))
            )  # the venue fills it all at once
            after = world.state.positions.qty("s", SYM)
            if phase is not Phase.OPEN:
                assert abs(after) <= abs(before), (phase, sent, before, after)
                assert after == 0 or (after > 0) == (before > 0), (phase, sent, before, after)  # never a flip
