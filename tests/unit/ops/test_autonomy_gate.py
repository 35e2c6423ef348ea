"""The autonomy and strategy-governor gates, alone and in the real chain with the session gates; a property
test: no risk-increasing order passes the chain outside OPEN + NORMAL (+ not quarantined)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from hftops.config.tracks import TrackConfig
from hftops.engine.core import TradingCore
from hftops.engine.gates import GateChain, LimitSpec, build_gate_chain
from hftops.engine.state import EngineState
from hftops.model.orders import (
    GateDecision,
    Intent,
    IntentKind,
    OrderStatus,
    OrderType,
    OrderUpdate,
    RejectReason,
    Side,
)
from hftops.model.phases import Phase
from hftops.ops.autonomy_gate import AutonomyGate, StrategyGovernorGate, risk_increasing_orders
from hftops.ops.autonomy_state import AutonomyController
from hftops.ops.modes import Mode
from hftops.ops.reasons import Reason
from hftops.ops.session_gates import FlattenGate, SessionGate
from hftops.ops.track_gate import TrackGate
from tests.unit.engine.fakes import D, FakeClock, bbo, fill, order

SYMBOLS = ("BTCUSDT", "ETHUSDT")
STRATEGIES = ("s1", "s2")
BIG = LimitSpec(
    max_position_qty=D(1000),
    max_notional=D(10**9),
    max_order_qty=D(1000),
    price_band_bps=D(10_000),
    max_orders_per_s=1e9,
    order_burst=10**9,
)


def new(
    side: Side,
    qty: str,
    strategy: str = "s1",
    symbol: str = "BTCUSDT",
    kind: IntentKind = IntentKind.NEW,
    cid: str | None = None,
) -> Intent:
    return Intent(
        kind=kind,
        strategy_id=strategy,
        symbol=symbol,
        side=side,
        qty=D(qty),
        price=D(100),
        order_type=OrderType.LIMIT,
        client_order_id=cid,
    )


def world() -> tuple[FakeClock, EngineState, AutonomyController, AutonomyGate, StrategyGovernorGate]:
    clock = FakeClock()
    state = EngineState(clock)
    for symbol in SYMBOLS:
        state.on_bbo(bbo(symbol, "99.9", "100.1"))
    c = AutonomyController(clock=clock, boot_grace_s=0)
    return clock, state, c, AutonomyGate(c), StrategyGovernorGate(c)


def test_normal_passes_the_shared_accepted() -> None:
    _, state, _, gate, governor = world()
    intent = new(Side.BUY, "1")
    assert gate.check(intent, state).decision is GateDecision.ACCEPT
    assert governor.check(intent, state).decision is GateDecision.ACCEPT


def test_reduce_only_no_order_when_flat_clamped_to_the_position_never_a_flip() -> None:
    _, state, c, gate, _ = world()
    c.set_condition(Reason.CLICKHOUSE_UNHEALTHY, True)
    assert gate.check(new(Side.BUY, "1"), state).reason is RejectReason.REDUCE_ONLY  # flat
    state.positions.apply_fill(fill("s1", "BTCUSDT", Side.BUY, "2", "100"))
    assert gate.check(new(Side.BUY, "1"), state).reason is RejectReason.REDUCE_ONLY  # would grow the long
    result = gate.check(new(Side.SELL, "5"), state)
    assert result.decision is GateDecision.CLAMP and result.qty == D(2)  # not a flip to short 3
    assert gate.check(new(Side.SELL, "1"), state).decision is GateDecision.ACCEPT
    state.orders.apply(order("s1", "BTCUSDT", "c1", Side.SELL, "1.5"))  # resting reducing order
    assert gate.check(new(Side.SELL, "5"), state).qty == D("0.5")
    amend = new(Side.SELL, "5", kind=IntentKind.AMEND, cid="c1")  # an amend of it replaces its rest
    assert gate.check(amend, state).qty == D(2)
    state.orders.apply(order("s1", "BTCUSDT", "c2", Side.SELL, "0.5"))
    assert gate.check(new(Side.SELL, "0.1"), state).decision is GateDecision.REJECT


def test_reduce_only_refuses_what_grows_the_net_position_at_the_venue() -> None:
    _, state, c, gate, _ = world()
    state.positions.apply_fill(fill("s1", "BTCUSDT", Side.BUY, "1", "100"))
    state.positions.apply_fill(fill("s2", "BTCUSDT", Side.SELL, "3", "100"))  # net short 2
    c.set_condition(Reason.REDIS_UNHEALTHY, True)
    result = gate.check(new(Side.SELL, "1", strategy="s1"), state)  # reduces s1 but shorts the venue more
    assert result.reason is RejectReason.REDUCE_ONLY and "net position" in result.detail
    assert gate.check(new(Side.BUY, "2", strategy="s2"), state).decision is GateDecision.ACCEPT


def test_halt_passes_only_cancels_and_force_flat() -> None:
    _, state, c, gate, _ = world()
    state.positions.apply_fill(fill("s1", "BTCUSDT", Side.BUY, "2", "100"))
    c.halt("alice", "drill")
    result = gate.check(new(Side.SELL, "1"), state)  # even a reducing order waits for the flattener
    assert result.reason is RejectReason.AUTONOMY_MODE and "manual_operator" in result.detail
    cancel = Intent(kind=IntentKind.CANCEL, strategy_id="s1", symbol="BTCUSDT", client_order_id="x")
    flat = Intent(kind=IntentKind.FORCE_FLAT, strategy_id="s1", symbol="BTCUSDT")
    assert gate.check(cancel, state).decision is GateDecision.ACCEPT
    assert gate.check(flat, state).decision is GateDecision.ACCEPT


def test_a_quarantined_strategy_may_only_cancel_and_reduce() -> None:
    _, state, c, gate, governor = world()
    state.positions.apply_fill(fill("s1", "BTCUSDT", Side.BUY, "2", "100"))
    c.trip(Reason.STRATEGY_EXCEPTION, strategy_id="s1")
    assert gate.check(new(Side.BUY, "1"), state).decision is GateDecision.ACCEPT  # platform still NORMAL
    assert governor.check(new(Side.BUY, "1"), state).reason is RejectReason.STRATEGY_QUARANTINED
    assert governor.check(new(Side.SELL, "3"), state).qty == D(2)
    assert governor.check(new(Side.BUY, "1", strategy="s2"), state).decision is GateDecision.ACCEPT
    c.rearm("alice", "fixed", strategy_id="s1")
    assert governor.check(new(Side.BUY, "1"), state).decision is GateDecision.ACCEPT


def test_risk_increasing_orders_are_the_ones_reduce_only_cancels() -> None:
    _, state, _, _, _ = world()
    state.positions.apply_fill(fill("s1", "BTCUSDT", Side.BUY, "2", "100"))
    for cid, side, qty, strategy in (
        ("a", Side.BUY, "1", "s1"),
        ("b", Side.SELL, "1.5", "s1"),
        ("c", Side.SELL, "1", "s1"),
        ("d", Side.SELL, "1", "s2"),
    ):
        state.orders.apply(order(strategy, "BTCUSDT", cid, side, qty))
    # a grows the long; b + c would flip it (the larger is dropped); s2 is flat
    assert sorted(o.client_order_id for o in risk_increasing_orders(state)) == ["a", "b", "d"]
    assert [o.client_order_id for o in risk_increasing_orders(state, "s2")] == ["d"]


# --- the property, through the real chain: shape -> session -> flatten -> autonomy -> governor -> limits ---


def chain_world() -> tuple[FakeClock, EngineState, AutonomyController, TrackGate, GateChain, TradingCore]:
    clock, state, c, gate, governor = world()
    tracks = TrackGate([TrackConfig(name=f"t{i}", symbols=(s,)) for i, s in enumerate(SYMBOLS)], symbols=SYMBOLS)
    for i in range(len(SYMBOLS)):
        tracks.set_track_phase(f"t{i}", Phase.OPEN)
    chain = build_gate_chain({}, BIG, clock, safety_gates=(SessionGate(tracks), FlattenGate(tracks), gate, governor))
    return clock, state, c, tracks, chain, TradingCore(state, [], chain)


intents = st.tuples(
    st.sampled_from([IntentKind.NEW, IntentKind.AMEND, IntentKind.CANCEL, IntentKind.FORCE_FLAT]),
    st.sampled_from(STRATEGIES),
    st.sampled_from(SYMBOLS),
    st.sampled_from([Side.BUY, Side.SELL]),
    st.integers(1, 6),
)
actions = st.one_of(
    st.tuples(st.just("intent"), intents),
    st.tuples(st.just("fill"), st.integers(0, 50)),
    st.tuples(st.just("phase"), st.tuples(st.integers(0, len(SYMBOLS) - 1), st.sampled_from(list(Phase)))),
    st.tuples(st.just("mode"), st.sampled_from(["reduce", "halt", "quarantine_s1", "quarantine_s2", "rearm"])),
)


def _change_mode(c: AutonomyController, what: str) -> None:
    if what == "reduce":
        c.set_condition(Reason.WAL_BACKLOG_UNHEALTHY, True)
    elif what == "halt":
        c.halt("prop", "random halt")
    elif what.startswith("quarantine_"):
        c.trip(Reason.STRATEGY_REJECT_SPIKE, strategy_id=what.split("_")[1])
    elif c.entries():
        c.set_condition(Reason.WAL_BACKLOG_UNHEALTHY, False)
        c.rearm("prop", "random rearm", force=True)


def _risk_increasing(intent: Intent, state: EngineState) -> bool:
    """Would this order, filled together with the strategy's resting orders on its side, grow |position|?"""
    pos = state.positions.qty(intent.strategy_id, intent.symbol)
    if intent.side is None:
        return False
    amended = intent.client_order_id if intent.kind is IntentKind.AMEND else None
    resting = sum(
        (
            o.remaining_qty
            for o in state.orders
            if o.strategy_id == intent.strategy_id
            and o.symbol == intent.symbol
            and o.side is intent.side
            and o.client_order_id != amended
        ),
        D(0),
    )
    if pos == 0 or (pos > 0) == (intent.side is Side.BUY):
        return True
    return intent.qty + resting > abs(pos)


@given(st.lists(actions, min_size=1, max_size=60))
def test_no_risk_increasing_order_passes_outside_open_and_normal(steps: list[tuple[str, object]]) -> None:
    _, state, c, tracks, chain, core = chain_world()
    next_id = 0
    for action, arg in steps:
        if action == "phase":
            index, phase = arg  # type: ignore[misc]
            tracks.set_track_phase(f"t{index}", phase)
        elif action == "mode":
            _change_mode(c, arg)  # type: ignore[arg-type]
        elif action == "fill":
            resting = list(state.orders)
            if resting:
                o = resting[int(arg) % len(resting)]  # type: ignore[call-overload]
                state.positions.apply_fill(fill(o.strategy_id, o.symbol, o.side, str(o.remaining_qty), "100"))
                state.orders.apply(
                    o.__class__(
                        **{
                            **{f: getattr(o, f) for f in o.__struct_fields__},
                            "status": OrderStatus.FILLED,
                            "filled_qty": o.qty,
                        }
                    )
                )
        else:
            kind, sid, symbol, side, qty = arg  # type: ignore[misc]
            cids = [o.client_order_id for o in state.orders if o.strategy_id == sid and o.symbol == symbol]
            cid = cids[0] if cids and kind in (IntentKind.AMEND, IntentKind.CANCEL) else None
            if kind in (IntentKind.AMEND, IntentKind.CANCEL) and cid is None:
                continue
            intent = new(side, str(qty), sid, symbol, kind, cid)
            if kind is IntentKind.FORCE_FLAT:
                flat = core.force_flat_order(intent)
                if flat is None:
                    continue
                intent = flat
            guarded = not (tracks.phase_of(symbol) is Phase.OPEN and c.mode is Mode.NORMAL and sid not in c.quarantined)
            sent, _ = chain.evaluate(intent, state)
            if sent is None or sent.kind is IntentKind.CANCEL:
                if sent is not None and cid is not None:
                    _cancel(state, cid)
                continue
            if guarded:
                assert not _risk_increasing(sent, state), (
                    sent,
                    state.positions.qty(sid, symbol),
                    c.mode,
                    tracks.phase_of(symbol),
                )
            if sent.kind is IntentKind.AMEND and cid is not None:
                _cancel(state, cid)
            if sent.kind is not IntentKind.FORCE_FLAT:
                next_id += 1
                state.orders.apply(
                    OrderUpdate(
                        strategy_id=sid,
                        symbol=symbol,
                        client_order_id=f"o{next_id}",
                        status=OrderStatus.ACK,
                        side=sent.side or Side.BUY,
                        order_type=OrderType.LIMIT,
                        qty=sent.qty,
                        price=Decimal(100),
                    )
                )
            else:
                state.positions.apply_fill(fill(sid, symbol, sent.side or Side.BUY, str(sent.qty), "100"))


def _cancel(state: EngineState, cid: str) -> None:
    o = state.orders.get(cid)
    if o is not None:
        state.orders.apply(
            OrderUpdate(
                strategy_id=o.strategy_id,
                symbol=o.symbol,
                client_order_id=cid,
                status=OrderStatus.CANCELED,
                side=o.side,
                order_type=o.order_type,
                qty=o.qty,
                price=o.price,
                filled_qty=o.filled_qty,
            )
        )
