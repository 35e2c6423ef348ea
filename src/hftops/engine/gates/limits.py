"""The limit gates: intent shape, max order qty, max position, max notional, price band, order rate.

Limits are per strategy (`LimitSpec`, from config) and apply per (strategy, symbol). CANCEL and
FORCE_FLAT always pass the limit gates: a limit must never stop the platform from reducing risk.
Pending (resting) quantity on the order's side counts towards position and notional, so stacking
resting orders cannot exceed a limit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_DOWN, Decimal

import msgspec

from hftops.engine.gates.chain import Gate, GateChain
from hftops.engine.ratelimit import TokenBucket
from hftops.engine.state import EngineState
from hftops.model.orders import (
    ACCEPTED,
    GateDecision,
    GateResult,
    Intent,
    IntentKind,
    OrderType,
    RejectReason,
    Side,
)

_NEW = IntentKind.NEW
_AMEND = IntentKind.AMEND
_BUY = Side.BUY
_LIMIT = OrderType.LIMIT
_BPS = Decimal(10_000)
_ZERO = Decimal(0)  # Decimal-to-Decimal comparisons are ~40% cheaper than Decimal-to-int


class LimitSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One strategy's limits, applied per symbol."""

    max_position_qty: Decimal = Decimal(10)
    max_notional: Decimal = Decimal(1_000_000)  # |projected position| x reference price, quote currency
    max_order_qty: Decimal = Decimal(5)
    price_band_bps: Decimal = Decimal(100)  # LIMIT price at most this far from the mid
    max_orders_per_s: float = 20.0  # NEW and AMEND; cancels are never rate-limited here
    order_burst: int = 40


def _reject(gate: str, reason: RejectReason, template: str, *args: object) -> GateResult:
    """A refusal; its sentence is `template.format(*args)`, built only when someone reads it."""
    return GateResult(GateDecision.REJECT, reason, None, gate, template, args)


def _clamp(gate: str, reason: RejectReason, qty: Decimal, template: str, *args: object) -> GateResult:
    return GateResult(GateDecision.CLAMP, reason, qty, gate, template, args)


def _base_exposure(intent: Intent, state: EngineState, side: Side) -> Decimal:
    """Signed position plus resting quantity on the order's side (minus the amended order's own rest)."""
    sid, sym = intent.strategy_id, intent.symbol
    pending = state.orders.pending_qty(sid, sym, side)
    if intent.kind is _AMEND and intent.client_order_id is not None:
        amended = state.orders.get(intent.client_order_id)
        if amended is not None and amended.side is side:
            pending -= amended.remaining_qty
    pos = state.positions.qty(sid, sym)
    return pos + pending if side is _BUY else pos - pending


class ExposureMemo:
    """The exposure MaxPositionGate just computed for an intent, reused by MaxNotionalGate right after it.

    Keyed by the intent object itself: the two gates run back to back with nothing changing the state in
    between, and a clamp in between hands on a new object (a miss, so it is computed again).
    """

    __slots__ = ("base", "intent")

    def __init__(self) -> None:
        self.intent: Intent | None = None
        self.base = Decimal(0)

    def exposure(self, intent: Intent, state: EngineState, side: Side) -> Decimal:
        if intent is self.intent:
            return self.base
        base = self.base = _base_exposure(intent, state, side)
        self.intent = intent
        return base

    def remember(self, intent: Intent, base: Decimal) -> None:
        self.intent, self.base = intent, base


def _per_strategy(limits: Mapping[str, LimitSpec], field: str) -> dict[str, Decimal]:
    """One field of every strategy's LimitSpec, precomputed so a check is one dict .get()."""
    return {sid: getattr(spec, field) for sid, spec in limits.items()}


class IntentShapeGate:
    """Refuses malformed intents before any limit is judged."""

    name = "intent_shape"

    def check(self, intent: Intent, state: EngineState) -> GateResult:
        kind = intent.kind
        if kind is _NEW or kind is _AMEND:
            if intent.side is None:
                return _reject(self.name, RejectReason.INVALID_INTENT, "{} needs a side", kind)
            if not intent.qty.is_finite() or intent.qty <= _ZERO:
                return _reject(self.name, RejectReason.INVALID_INTENT, "qty must be > 0, got {}", intent.qty)
            price = intent.price
            if price is not None and (not price.is_finite() or price <= _ZERO):
                return _reject(self.name, RejectReason.INVALID_INTENT, "price must be > 0, got {}", price)
            if intent.order_type is _LIMIT and price is None:
                return _reject(self.name, RejectReason.INVALID_INTENT, "LIMIT needs a price > 0, got {}", price)
            if kind is _AMEND and not intent.client_order_id:
                return _reject(self.name, RejectReason.INVALID_INTENT, "AMEND needs the client_order_id")
        elif kind is IntentKind.CANCEL and not intent.client_order_id:
            return _reject(self.name, RejectReason.INVALID_INTENT, "CANCEL needs the client_order_id")
        return ACCEPTED


class MaxOrderQtyGate:
    name = "max_order_qty"

    def __init__(self, limits: Mapping[str, LimitSpec], default: LimitSpec) -> None:
        self._limits = _per_strategy(limits, "max_order_qty")
        self._default = default.max_order_qty

    def check(self, intent: Intent, state: EngineState) -> GateResult:
        kind = intent.kind
        if kind is not _NEW and kind is not _AMEND:
            return ACCEPTED
        limit = self._limits.get(intent.strategy_id, self._default)
        if intent.qty <= limit:
            return ACCEPTED
        return _clamp(self.name, RejectReason.MAX_ORDER_QTY, limit, "qty {} above max_order_qty {}", intent.qty, limit)


class MaxPositionGate:
    """|position + resting same side + order| <= max_position_qty, unless the order reduces exposure."""

    name = "max_position"

    def __init__(self, limits: Mapping[str, LimitSpec], default: LimitSpec, memo: ExposureMemo | None = None) -> None:
        self._limits = _per_strategy(limits, "max_position_qty")
        self._default = default.max_position_qty
        self._memo = memo

    def check(self, intent: Intent, state: EngineState) -> GateResult:
        kind = intent.kind
        if kind is not _NEW and kind is not _AMEND:
            return ACCEPTED
        side = intent.side
        assert side is not None  # IntentShapeGate runs first
        base = _base_exposure(intent, state, side)
        if self._memo is not None:
            self._memo.remember(intent, base)
        limit = self._limits.get(intent.strategy_id, self._default)
        # how much more the order may add in its own direction before |exposure| passes the limit
        allowed = limit - base if side is _BUY else limit + base
        if intent.qty <= allowed:
            return ACCEPTED
        if allowed <= _ZERO:
            return _reject(
                self.name,
                RejectReason.MAX_POSITION,
                "{} {} {}: exposure {} already at max_position_qty {}",
                side,
                intent.qty,
                intent.symbol,
                base,
                limit,
            )
        return _clamp(
            self.name, RejectReason.MAX_POSITION, allowed, "clamped to {} by max_position_qty {}", allowed, limit
        )


class MaxNotionalGate:
    """|projected exposure| x reference price <= max_notional; reference = LIMIT price, else the mid."""

    name = "max_notional"

    def __init__(self, limits: Mapping[str, LimitSpec], default: LimitSpec, memo: ExposureMemo | None = None) -> None:
        self._limits = _per_strategy(limits, "max_notional")
        self._default = default.max_notional
        self._memo = memo or ExposureMemo()

    def check(self, intent: Intent, state: EngineState) -> GateResult:
        kind = intent.kind
        if kind is not _NEW and kind is not _AMEND:
            return ACCEPTED
        side = intent.side
        assert side is not None
        ref = intent.price if intent.order_type is _LIMIT else state.mids.get(intent.symbol)
        if ref is None:
            return _reject(
                self.name, RejectReason.NO_MARKET_DATA, "no mid for {} to value a MARKET order", intent.symbol
            )
        base = self._memo.exposure(intent, state, side)
        projected = base + intent.qty if side is _BUY else base - intent.qty
        limit = self._limits.get(intent.strategy_id, self._default)
        if abs(projected) * ref <= limit or abs(projected) < abs(base):
            return ACCEPTED
        allowed = (limit / ref - base) if side is _BUY else (limit / ref + base)
        if allowed <= _ZERO:
            return _reject(
                self.name, RejectReason.MAX_NOTIONAL, "exposure {} x {} already at max_notional {}", base, ref, limit
            )
        # keep the clamped qty on the order's own step: quantize takes the exponent of its operand, so an order
        # of 0.003 clamps to 0.001s (not 0.00123...) and one of 20 to whole units, without building the step
        allowed = allowed.quantize(intent.qty, rounding=ROUND_DOWN)
        if allowed <= _ZERO:
            return _reject(self.name, RejectReason.MAX_NOTIONAL, "less than one qty step fits under {}", limit)
        return _clamp(self.name, RejectReason.MAX_NOTIONAL, allowed, "clamped to {} by max_notional {}", allowed, limit)


class PriceBandGate:
    """A LIMIT price at most `price_band_bps` from the mid; every NEW/AMEND needs a mid to be judged."""

    name = "price_band"

    def __init__(self, limits: Mapping[str, LimitSpec], default: LimitSpec) -> None:
        self._limits = _per_strategy(limits, "price_band_bps")
        self._default = default.price_band_bps
        # (strategy, symbol) -> (mid it was computed for, low, high): the band moves only when the mid does
        self._bounds: dict[str, dict[str, tuple[Decimal, Decimal, Decimal]]] = {}

    def check(self, intent: Intent, state: EngineState) -> GateResult:
        kind = intent.kind
        if kind is not _NEW and kind is not _AMEND:
            return ACCEPTED
        symbol = intent.symbol
        mid = state.mids.get(symbol)
        if mid is None:
            return _reject(self.name, RejectReason.NO_MARKET_DATA, "no mid for {} yet", symbol)
        price = intent.price
        if intent.order_type is not _LIMIT or price is None:
            return ACCEPTED
        by_symbol = self._bounds.get(intent.strategy_id)
        if by_symbol is None:
            by_symbol = self._bounds[intent.strategy_id] = {}
        bounds = by_symbol.get(symbol)
        if bounds is None or bounds[0] is not mid:
            width = mid * self._limits.get(intent.strategy_id, self._default) / _BPS
            bounds = by_symbol[symbol] = (mid, mid - width, mid + width)
        if bounds[1] <= price <= bounds[2]:
            return ACCEPTED
        band = self._limits.get(intent.strategy_id, self._default)
        return _reject(self.name, RejectReason.PRICE_BAND, "price {} more than {} bps from mid {}", price, band, mid)


class OrderRateGate:
    """Token bucket per strategy over NEW and AMEND; last in the chain so refused intents spend no token."""

    name = "order_rate"

    def __init__(self, limits: Mapping[str, LimitSpec], default: LimitSpec, clock: Callable[[], int]) -> None:
        self._limits = dict(limits)
        self._default = default
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def _bucket(self, strategy_id: str) -> TokenBucket:
        spec = self._limits.get(strategy_id, self._default)
        bucket = self._buckets[strategy_id] = TokenBucket(spec.max_orders_per_s, spec.order_burst, self._clock)
        return bucket

    def check(self, intent: Intent, state: EngineState) -> GateResult:
        kind = intent.kind
        if kind is not _NEW and kind is not _AMEND:
            return ACCEPTED
        bucket = self._buckets.get(intent.strategy_id) or self._bucket(intent.strategy_id)
        if bucket.try_take():
            return ACCEPTED
        return _reject(
            self.name,
            RejectReason.MAX_ORDER_RATE,
            "above {:g}/s (burst {:g}) for this strategy",
            bucket.rate,
            bucket.burst,
        )


def build_gate_chain(
    limits: Mapping[str, LimitSpec],
    default: LimitSpec,
    clock: Callable[[], int],
    safety_gates: Sequence[Gate] = (),
) -> GateChain:
    """shape -> safety gates (session, flatten, autonomy, governor; issue 5) -> limits -> order rate."""
    memo = ExposureMemo()  # max_position computes the exposure, max_notional reuses it
    return GateChain(
        [
            IntentShapeGate(),
            *safety_gates,
            MaxOrderQtyGate(limits, default),
            MaxPositionGate(limits, default, memo),
            MaxNotionalGate(limits, default, memo),
            PriceBandGate(limits, default),
            OrderRateGate(limits, default, clock),
        ]
    )
