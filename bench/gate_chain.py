"""Gate chain per intent: p50/p99 of `GateChain.evaluate` for the limit gates, beside a naive baseline.

The measured chain is the real one (`build_gate_chain`: shape, the session gates (session phase, flatten),
flatten-active, autonomy mode, strategy governor, max order qty, max position, max notional, price band,
order rate) over a realistic state: 5 strategies x 5
symbols with positions (one strategy at its position limit), resting orders and mids; 4 symbols are in an
OPEN track and XRPUSDT in a CLOSE_ONLY one (only reducing orders pass, clamped). Intents are a deterministic
mix (limit and market NEWs, some clamped, some rejected, cancels).

  ceiling - an empty chain (the cost of the call, the counters and the timer itself)
  naive   - the same checks written the obvious way: a pydantic model per intent, limits looked up in
            nested dicts by string keys, a result dict from every gate, floats converted from strings

The run repeats chain, ceiling and naive back to back in --rounds rounds and reports the median round by
chain p99 (and every round's p99): this host's speed drifts by up to 1.7x over seconds, and a single round
measures the drift as much as the code.

Usage: .venv/bin/python bench/gate_chain.py [--intents 100000] [--rounds 5] [--seed 7]
"""

from __future__ import annotations

import argparse
import functools
import gc
import operator
import random
import statistics
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from hftops.config.tracks import TrackConfig
from hftops.engine.gates import GateChain, LimitSpec, build_gate_chain
from hftops.engine.gates.chain import Gate
from hftops.engine.state import EngineState
from hftops.model.orders import (
    Bbo,
    Fill,
    Intent,
    IntentKind,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
)
from hftops.model.phases import Phase
from hftops.ops.autonomy_gate import AutonomyGate, StrategyGovernorGate
from hftops.ops.autonomy_state import AutonomyController
from hftops.ops.flatten_gate import FlattenActiveGate
from hftops.ops.session_gates import FlattenGate, SessionGate
from hftops.ops.track_gate import TrackGate

STRATEGIES = [f"s{i}" for i in range(5)]
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"]
MIDS = {"BTCUSDT": "65000.5", "ETHUSDT": "3400.25", "SOLUSDT": "150.125", "BNBUSDT": "590.5", "XRPUSDT": "0.5234"}


class FakeClock:
    """Virtual nanoseconds. Reading it is a C-level call, like the engine's `time.time_ns`, so the figures do
    not include a Python-level clock call the engine never makes."""

    def __init__(self) -> None:
        self.ns = 0
        self.read: Callable[[], int] = functools.partial(operator.attrgetter("ns"), self)


def make_state(clock: FakeClock) -> EngineState:
    state = EngineState(clock.read)
    for i, symbol in enumerate(SYMBOLS):
        mid = Decimal(MIDS[symbol])
        spread = mid / 10_000
        state.on_bbo(
            Bbo(
                symbol=symbol,
                update_id=1,
                bid_price=mid - spread,
                bid_qty=Decimal(1),
                ask_price=mid + spread,
                ask_qty=Decimal(1),
                time_ms=0,
            )
        )
        for j, sid in enumerate(STRATEGIES):
            side = Side.BUY if (i + j) % 2 else Side.SELL
            state.positions.apply_fill(
                Fill(
                    strategy_id=sid,
                    symbol=symbol,
                    side=side,
                    qty=Decimal("1" if sid == "s4" else "0.3"),
                    price=mid,
                    fee=Decimal("0.01"),
                )
            )
            state.orders.apply(
                OrderUpdate(
                    strategy_id=sid,
                    symbol=symbol,
                    client_order_id=f"{sid}-{symbol}-1",
                    status=OrderStatus.ACK,
                    side=side,
                    order_type=OrderType.LIMIT,
                    qty=Decimal("0.2"),
                    price=mid,
                )
            )
    return state


def session_gates() -> tuple[Gate, ...]:
    """The engine's safety gates in its order: session phase and FORCE_FLAT over a TrackGate (4 symbols OPEN,
    XRPUSDT CLOSE_ONLY), a running flatten's scope, the autonomy mode and the strategy governor."""
    tracks = TrackGate(
        [
            TrackConfig.model_validate({"name": "crypto", "symbols": SYMBOLS[:4]}),
            TrackConfig.model_validate({"name": "closing", "symbols": SYMBOLS[4:]}),
        ],
        symbols=SYMBOLS,
    )
    tracks.set_track_phase("crypto", Phase.OPEN)
    tracks.set_track_phase("closing", Phase.CLOSE_ONLY)
    controller = AutonomyController(clock=lambda: 0, strategy_ids=STRATEGIES)  # NORMAL: every gate runs to its end
    return (
        SessionGate(tracks),
        FlattenGate(tracks),
        FlattenActiveGate({}),
        AutonomyGate(controller),
        StrategyGovernorGate(controller),
    )


def make_intents(n: int, seed: int) -> list[Intent]:
    rng = random.Random(seed)
    intents = []
    for _ in range(n):
        sid, symbol = rng.choice(STRATEGIES), rng.choice(SYMBOLS)
        mid = Decimal(MIDS[symbol])
        roll = rng.random()
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        qty = Decimal(rng.choice(["0.01", "0.05", "0.1", "0.4", "0.8"]))
        if roll < 0.05:
            intents.append(
                Intent(kind=IntentKind.CANCEL, strategy_id=sid, symbol=symbol, client_order_id=f"{sid}-{symbol}-1")
            )
        elif roll < 0.25:
            intents.append(
                Intent(
                    kind=IntentKind.NEW,
                    strategy_id=sid,
                    symbol=symbol,
                    side=side,
                    qty=qty,
                    order_type=OrderType.MARKET,
                    tif=TimeInForce.IOC,
                )
            )
        else:
            offset_bps = rng.choice([1, 5, 20, 60, 150])  # 150 bps falls outside the 100 bps band
            price = (mid * (1 + side.sign * Decimal(-offset_bps) / 10_000)).quantize(Decimal("0.0001"))
            intents.append(Intent(kind=IntentKind.NEW, strategy_id=sid, symbol=symbol, side=side, qty=qty, price=price))
    return intents


def measure(evaluate: Callable[[Any], object], items: Sequence[Any], clock: FakeClock) -> list[int]:
    timer = time.perf_counter_ns
    samples = [0] * len(items)
    gc.disable()
    try:
        for i, item in enumerate(items):
            clock.ns += 20_000_000  # 50 intents/s of virtual time: the rate gate mostly passes
            t0 = timer()
            evaluate(item)
            samples[i] = timer() - t0
    finally:
        gc.enable()
    return samples


def pct(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


# --- naive baseline: the obvious way ---
class NaiveIntent(BaseModel):
    kind: str
    strategy_id: str
    symbol: str
    side: str | None = None
    qty: float = 0.0
    price: float | None = None
    order_type: str = "LIMIT"
    client_order_id: str | None = None


def naive_chain(limits: dict[str, dict[str, str]], state: EngineState) -> Callable[[dict[str, object]], object]:
    buckets: dict[str, list[float]] = {}
    tracks = [{"symbols": SYMBOLS[:4], "phase": "OPEN"}, {"symbols": SYMBOLS[4:], "phase": "CLOSE_ONLY"}]

    def session(i: NaiveIntent) -> dict[str, object]:
        phase = next((t["phase"] for t in tracks if i.symbol in t["symbols"]), "CLOSED")
        if phase == "OPEN" or i.kind == "CANCEL":
            return {"decision": "ACCEPT"}
        pos = float(state.positions.qty(i.strategy_id, i.symbol))
        reducing = (i.side == "SELL" and pos > 0) or (i.side == "BUY" and pos < 0)
        if phase != "CLOSE_ONLY" or not reducing:
            return {"decision": "REJECT", "reason": "session_phase"}
        return {"decision": "CLAMP", "qty": abs(pos)} if i.qty > abs(pos) else {"decision": "ACCEPT"}

    def shape(i: NaiveIntent) -> dict[str, object]:
        if i.kind in ("NEW", "AMEND") and (i.side is None or i.qty <= 0):
            return {"decision": "REJECT", "reason": "invalid_intent"}
        return {"decision": "ACCEPT"}

    def order_qty(i: NaiveIntent) -> dict[str, object]:
        lim = float(limits[i.strategy_id]["max_order_qty"])
        if i.kind == "NEW" and i.qty > lim:
            return {"decision": "CLAMP", "qty": lim}
        return {"decision": "ACCEPT"}

    def position(i: NaiveIntent) -> dict[str, object]:
        if i.kind != "NEW":
            return {"decision": "ACCEPT"}
        pos = float(state.positions.qty(i.strategy_id, i.symbol))
        pending = float(state.orders.pending_qty(i.strategy_id, i.symbol, Side(i.side or "BUY")))
        sign = 1 if i.side == "BUY" else -1
        base = pos + sign * pending
        allowed = float(limits[i.strategy_id]["max_position_qty"]) - sign * base
        if i.qty <= allowed:
            return {"decision": "ACCEPT"}
        return (
            {"decision": "REJECT", "reason": "max_position"} if allowed <= 0 else {"decision": "CLAMP", "qty": allowed}
        )

    def notional(i: NaiveIntent) -> dict[str, object]:
        if i.kind != "NEW":
            return {"decision": "ACCEPT"}
        ref = i.price or float(state.mids[i.symbol])
        pos = float(state.positions.qty(i.strategy_id, i.symbol))
        if abs(pos + i.qty) * ref > float(limits[i.strategy_id]["max_notional"]):
            return {"decision": "REJECT", "reason": "max_notional"}
        return {"decision": "ACCEPT"}

    def band(i: NaiveIntent) -> dict[str, object]:
        if i.kind != "NEW" or i.price is None:
            return {"decision": "ACCEPT"}
        mid = float(state.mids[i.symbol])
        if abs(i.price - mid) / mid * 10_000 > float(limits[i.strategy_id]["price_band_bps"]):
            return {"decision": "REJECT", "reason": "price_band"}
        return {"decision": "ACCEPT"}

    def rate(i: NaiveIntent) -> dict[str, object]:
        now = state.clock() / 1e9
        tokens, last = buckets.get(i.strategy_id, [40.0, now])
        tokens = min(40.0, tokens + (now - last) * float(limits[i.strategy_id]["max_orders_per_s"]))
        ok = tokens >= 1
        buckets[i.strategy_id] = [tokens - 1 if ok else tokens, now]
        return {"decision": "ACCEPT"} if ok else {"decision": "REJECT", "reason": "max_order_rate"}

    gates = [shape, session, order_qty, position, notional, band, rate]
    counters: dict[str, int] = {}

    def evaluate(raw: dict[str, object]) -> dict[str, object]:
        intent = NaiveIntent.model_validate(raw)
        for gate in gates:
            result = gate(intent)
            if result["decision"] == "REJECT":
                key = f"{intent.strategy_id}|{intent.symbol}|{result['reason']}"
                counters[key] = counters.get(key, 0) + 1
                return result
            if result["decision"] == "CLAMP":
                intent = intent.model_copy(update={"qty": result["qty"]})
        return {"decision": "ACCEPT", "intent": intent}

    return evaluate


def one_round(
    intents: list[Intent], raw: list[dict[str, object]], spec: LimitSpec, limits: dict[str, dict[str, str]]
) -> dict[str, Any]:
    """Chain, ceiling and naive back to back over the same intents, each on a fresh state."""
    clock = FakeClock()
    state = make_state(clock)
    chain = build_gate_chain({}, spec, clock.read, safety_gates=session_gates())
    samples = measure(lambda i: chain.evaluate(i, state), intents, clock)
    empty = GateChain([])
    ceiling = measure(lambda i: empty.evaluate(i, state), intents, clock)
    naive_state = make_state(clock)
    naive = naive_chain(limits, naive_state)
    naive_samples = measure(naive, raw, clock)
    return {
        "chain": samples,
        "ceiling": ceiling,
        "naive": naive_samples,
        "counters": chain.counters,
        "names": chain.names,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--intents", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5, help="the median round is reported (this host's speed drifts)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    intents = make_intents(args.intents, args.seed)
    spec = LimitSpec(
        max_position_qty=Decimal(1),
        max_notional=Decimal(50_000),
        max_order_qty=Decimal("0.5"),
        price_band_bps=Decimal(100),
        max_orders_per_s=40.0,
        order_burst=80,
    )
    limits = {sid: {f: str(getattr(spec, f)) for f in spec.__struct_fields__} for sid in STRATEGIES}
    raw = [
        {
            "kind": i.kind.value,
            "strategy_id": i.strategy_id,
            "symbol": i.symbol,
            "side": i.side.value if i.side else None,
            "qty": str(i.qty),
            "price": str(i.price) if i.price is not None else None,
            "order_type": i.order_type.value,
            "client_order_id": i.client_order_id,
        }
        for i in intents
    ]
    one_round(intents[:20_000], raw[:20_000], spec, limits)  # warm-up
    rounds = [one_round(intents, raw, spec, limits) for _ in range(args.rounds)]
    p99s = [pct(r["chain"], 0.99) for r in rounds]
    median = rounds[p99s.index(statistics.median_low(p99s))]
    c = median["counters"]

    print(f"gate chain per intent ({len(intents):,} intents x {args.rounds} rounds; {', '.join(median['names'])})")
    print(f"  outcome: accepted {c.accepted:,} (clamped {sum(c.clamped.values()):,}), rejected {c.rejected_total():,}")
    by_reason: dict[str, int] = {}
    for (_, _, reason), n in c.rejected.items():
        by_reason[reason] = by_reason.get(reason, 0) + n
    print(f"  rejections by reason: {dict(sorted(by_reason.items()))}")
    print(f"  median round by chain p99 (p99 over the rounds: {', '.join(f'{p:.2f}' for p in p99s)} µs)")
    print(f"  {'':10s} {'p50 µs':>8s} {'p99 µs':>8s} {'p99.9 µs':>9s}")
    for name in ("chain", "ceiling", "naive"):
        s = median[name]
        print(f"  {name:10s} {pct(s, 0.5):8.2f} {pct(s, 0.99):8.2f} {pct(s, 0.999):9.2f}")
    p99 = pct(median["chain"], 0.99)
    print(
        f"  budget p99 <= 10 µs: {'PASS' if p99 <= 10 else 'FAIL'} ({p99:.2f} µs); naive/chain p50 ratio "
        f"{pct(median['naive'], 0.5) / pct(median['chain'], 0.5):.1f}x"
    )


if __name__ == "__main__":
    main()
