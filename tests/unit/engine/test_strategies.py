from __future__ import annotations

import random
from decimal import Decimal

import pytest

from hftops.config.schema import Config
from hftops.engine.gates import build_gate_chain
from hftops.engine.loader import (
    StrategyLoadError,
    active_strategy_configs,
    limit_specs,
    load_strategies,
    resolve_strategy_class,
)
from hftops.engine.state import EngineState
from hftops.engine.strategies.market_maker import QuotingMarketMaker
from hftops.engine.strategies.momentum import MomentumTaker
from hftops.engine.strategy import StrategyContext
from hftops.model.orders import (
    Bbo,
    Fill,
    Intent,
    IntentKind,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    Tick,
)
from tests.unit.engine.fakes import D, FakeClock, bbo

SYM = "BTCUSDT"


def synthetic_market(seed: int, n: int) -> list[Bbo | Tick]:
    """A random walk of mids with a trade after every quote update; trending phases give crossovers."""
    rng = random.Random(seed)
    mid = Decimal(100)
    events: list[Bbo | Tick] = []
    for i in range(n):
        drift = Decimal("0.05") if (i // 150) % 2 == 0 else Decimal("-0.05")
        mid += drift + Decimal(rng.randint(-10, 10)) / 100
        events.append(bbo(SYM, str(mid - Decimal("0.05")), str(mid + Decimal("0.05")), update_id=i))
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        events.append(Tick(symbol=SYM, trade_id=i, price=mid, qty=D("0.1"), taker_side=side, time_ms=i))
    return events


class Harness:
    """Drives one strategy like the engine will: state first, then the hook; gates accepted intents, and a
    toy broker acknowledges LIMITs and fills MARKETs at once so positions and open orders move."""

    def __init__(self, cls: type, params: dict[str, object]) -> None:
        self.clock = FakeClock()
        self.state = EngineState(self.clock)
        self.strategy = cls("t1", [SYM], params, StrategyContext("t1", self.state))
        self.sent: list[Intent] = []
        self._next = 0

    def run(self, events: list[Bbo | Tick]) -> list[Intent]:
        self.sent.extend(self.strategy.on_start())
        for event in events:
            self.clock.advance(0.01)
            if isinstance(event, Bbo):
                self.state.on_bbo(event)
                self._handle(self.strategy.on_bbo(event))
            else:
                self.state.on_tick(event)
                self._handle(self.strategy.on_tick(event))
        return self.sent

    def _handle(self, intents: list[Intent]) -> None:
        for intent in intents:
            self.sent.append(intent)
            if intent.kind is IntentKind.CANCEL:
                old = self.state.orders.get(intent.client_order_id or "")
                assert old is not None, "strategy cancelled an order it does not have"
                self.state.orders.apply(self._update(old, OrderStatus.CANCELED))
            elif intent.order_type is OrderType.MARKET:
                mid = self.state.mids[intent.symbol]
                assert intent.side is not None
                self.state.positions.apply_fill(
                    Fill(strategy_id="t1", symbol=intent.symbol, side=intent.side, qty=intent.qty, price=mid)
                )
            else:
                self._next += 1
                assert intent.side is not None
                self.state.orders.apply(
                    OrderUpdate(
                        strategy_id="t1",
                        symbol=intent.symbol,
                        client_order_id=f"c{self._next}",
                        status=OrderStatus.ACK,
                        side=intent.side,
                        order_type=OrderType.LIMIT,
                        qty=intent.qty,
                        price=intent.price,
                    )
                )

    @staticmethod
    def _update(old: OrderUpdate, status: OrderStatus) -> OrderUpdate:
        return OrderUpdate(**{**{f: getattr(old, f) for f in old.__struct_fields__}, "status": status})


MM_PARAMS = {
    "qty": "0.01",
    "half_spread_bps": "5",
    "max_inventory": "0.02",
    "requote_bps": "2",
    "tick": "0.01",
    "skew_bps_per_unit": "2",
}
MOM_PARAMS = {"fast": 5, "slow": 20, "qty": "0.1", "max_position": "0.2"}


@pytest.mark.parametrize(("cls", "params"), [(QuotingMarketMaker, MM_PARAMS), (MomentumTaker, MOM_PARAMS)])
def test_deterministic(cls: type, params: dict[str, object]) -> None:
    events = synthetic_market(seed=3, n=600)
    first = Harness(cls, params).run(events)
    second = Harness(cls, params).run(events)
    assert first and first == second


def test_market_maker_quotes_both_sides_and_requotes_on_moves() -> None:
    h = Harness(QuotingMarketMaker, MM_PARAMS)
    h.run([bbo(SYM, "99.95", "100.05")])
    bid, ask = h.sent
    assert (bid.side, bid.price, ask.side, ask.price) == (Side.BUY, D("99.95"), Side.SELL, D("100.05"))
    assert bid.kind is IntentKind.NEW and bid.qty == D("0.01") and bid.tif.value == "GTC"
    h.sent.clear()
    h.run([bbo(SYM, "99.96", "100.06")])  # 1 bp move: below requote_bps, keep the quotes
    assert h.sent == []
    h.run([bbo(SYM, "100.45", "100.55")])  # 50 bps: cancel both and replace
    kinds = [(i.kind, i.side) for i in h.sent]
    assert kinds == [
        (IntentKind.CANCEL, Side.BUY),
        (IntentKind.NEW, Side.BUY),
        (IntentKind.CANCEL, Side.SELL),
        (IntentKind.NEW, Side.SELL),
    ]
    assert len(h.state.orders) == 2


def test_market_maker_skews_and_respects_inventory_limit() -> None:
    h = Harness(QuotingMarketMaker, MM_PARAMS)
    mid = D(100)
    flat = h.strategy.wanted_quotes(SYM, mid)
    h.state.positions.apply_fill(Fill(strategy_id="t1", symbol=SYM, side=Side.BUY, qty=D("0.01"), price=mid))
    long_one = h.strategy.wanted_quotes(SYM, mid)
    assert long_one[Side.BUY] < flat[Side.BUY] and long_one[Side.SELL] < flat[Side.SELL]  # skewed down
    h.state.positions.apply_fill(Fill(strategy_id="t1", symbol=SYM, side=Side.BUY, qty=D("0.01"), price=mid))
    at_limit = h.strategy.wanted_quotes(SYM, mid)
    assert at_limit[Side.BUY] is None and at_limit[Side.SELL] is not None  # no bid beyond max_inventory
    h.run([bbo(SYM, "99.95", "100.05")])
    assert [i.side for i in h.sent] == [Side.SELL]


def test_momentum_trades_crossovers_within_its_cap() -> None:
    h = Harness(MomentumTaker, MOM_PARAMS)
    sent = h.run(synthetic_market(seed=3, n=600))
    assert {i.order_type for i in sent} == {OrderType.MARKET}
    assert {Side.BUY, Side.SELL} <= {i.side for i in sent}
    position = D(0)
    for intent in sent:
        position += intent.qty if intent.side is Side.BUY else -intent.qty
        assert abs(position) <= D("0.2")


def test_strategies_rejects_bad_params() -> None:
    state = EngineState(FakeClock())
    with pytest.raises(ValueError, match="fast < slow"):
        MomentumTaker("m", [SYM], {"fast": 10, "slow": 5}, StrategyContext("m", state))
    with pytest.raises(ValueError, match="> 0"):
        QuotingMarketMaker("q", [SYM], {"qty": "0"}, StrategyContext("q", state))


def test_load_from_config_and_gate_the_demo_intents() -> None:
    config = Config(venue={"symbols": ["BTCUSDT", "SOLUSDT"]})
    # the demo defaults keep only captured symbols: mom1 trades ETHUSDT, which is not captured here
    assert [s.id for s in active_strategy_configs(config)] == ["mm1"]
    clock = FakeClock()
    state = EngineState(clock)
    (mm,) = load_strategies(config, state)
    assert isinstance(mm, QuotingMarketMaker) and mm.strategy_id == "mm1"
    overrides, default = limit_specs(config)
    chain = build_gate_chain(overrides, default, clock)
    quote = bbo(SYM, "65000.0", "65000.2")
    state.on_bbo(quote)
    intents = mm.on_bbo(quote)
    assert len(intents) == 2
    assert all(chain.evaluate(i, state)[0] == i for i in intents)


def test_explicit_strategies_config() -> None:
    config = Config(
        engine={
            "strategies": [
                {
                    "id": "m2",
                    "path": "hftops.engine.strategies.momentum.MomentumTaker",
                    "symbols": ["BTCUSDT"],
                    "params": {"fast": 3, "slow": 9},
                    "limits": {"max_position_qty": "2"},
                }
            ]
        }
    )
    (strategy,) = load_strategies(config, EngineState(FakeClock()))
    assert isinstance(strategy, MomentumTaker) and strategy.slow == 9
    overrides, _ = limit_specs(config)
    assert overrides["m2"].max_position_qty == D(2)
    with pytest.raises(ValueError, match=r"not in venue\.symbols"):
        Config(engine={"strategies": [{"id": "x", "path": "a:B", "symbols": ["DOGEUSDT"]}]})
    with pytest.raises(ValueError, match="MANUAL is reserved"):
        Config(engine={"strategies": [{"id": "MANUAL", "path": "a:B", "symbols": ["BTCUSDT"]}]})


@pytest.mark.parametrize(
    ("path", "match"),
    [
        ("nonexistent.module:Thing", "cannot import"),
        ("hftops.engine.strategy:StrategyContext", "not a subclass"),
        ("Thing", "must look like"),
    ],
)
def test_bad_strategy_paths(path: str, match: str) -> None:
    with pytest.raises(StrategyLoadError, match=match):
        resolve_strategy_class(path)


def test_bad_params_name_the_strategy() -> None:
    config = Config(
        engine={
            "strategies": [
                {
                    "id": "q",
                    "path": "hftops.engine.strategies.market_maker:QuotingMarketMaker",
                    "symbols": [SYM],
                    "params": {"qty": "-1"},
                }
            ]
        }
    )
    with pytest.raises(StrategyLoadError, match=r"strategy q .*fix engine.strategies\[q\]"):
        load_strategies(config, EngineState(FakeClock()))
