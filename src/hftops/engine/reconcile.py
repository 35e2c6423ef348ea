"""Reconciliation of the engine's positions with the broker's: at startup (pure) and continuously (debounced).

Startup, per symbol, local net (from the checkpoint) vs the broker's quantity:
- equal -> MATCH;
- both non-zero with opposite signs -> REFUSE (sign_mismatch): someone traded against us, a human decides;
- |difference| <= threshold -> ADOPT the broker's quantity (the difference is booked under MANUAL);
- larger -> REFUSE (diff_above_threshold);
- broker-only -> ADOPT under MANUAL with unknown cost (the broker's entry price as the best guess).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from enum import StrEnum

import msgspec

from hftops.engine.positions import PositionBook
from hftops.model.orders import ZERO

ENV_RECON_ENABLED = "HFT_STARTUP_RECON_ENABLED"
ENV_RECON_THRESHOLD = "HFT_STARTUP_RECON_QTY_THRESHOLD"
DEFAULT_RECON_THRESHOLD = Decimal(10)


class ReconAction(StrEnum):
    MATCH = "match"
    ADOPT_BROKER = "adopt_broker"  # small difference: take the broker's quantity
    ADOPT_MANUAL = "adopt_manual"  # broker-only position: adopted under MANUAL, cost unknown
    REFUSE = "refuse"


class ReconReason(StrEnum):
    EQUAL = "equal"
    WITHIN_THRESHOLD = "within_threshold"
    BROKER_ONLY = "broker_only"
    SIGN_MISMATCH = "sign_mismatch"
    DIFF_ABOVE_THRESHOLD = "diff_above_threshold"


class BrokerPosition(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    qty: Decimal  # signed (Binance positionAmt in one-way mode)
    entry_price: Decimal = ZERO


class SymbolDecision(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    action: ReconAction
    reason: ReconReason
    local_qty: Decimal
    broker_qty: Decimal
    detail: str


class StartupReconciliation(msgspec.Struct, frozen=True, kw_only=True):
    decisions: tuple[SymbolDecision, ...]
    threshold: Decimal

    @property
    def ok(self) -> bool:
        return all(d.action is not ReconAction.REFUSE for d in self.decisions)

    @property
    def refusals(self) -> tuple[SymbolDecision, ...]:
        return tuple(d for d in self.decisions if d.action is ReconAction.REFUSE)


def startup_recon_settings(environ: Mapping[str, str] | None = None) -> tuple[bool, Decimal]:
    """(enabled, threshold) from HFT_STARTUP_RECON_ENABLED (default 1) and ..._QTY_THRESHOLD (default 10)."""
    env = os.environ if environ is None else environ
    enabled = env.get(ENV_RECON_ENABLED, "1").strip().lower() not in ("0", "false", "no", "off")
    raw = env.get(ENV_RECON_THRESHOLD, "").strip()
    if not raw:
        return enabled, DEFAULT_RECON_THRESHOLD
    try:
        threshold = Decimal(raw)
    except InvalidOperation:
        threshold = Decimal(-1)
    if not threshold.is_finite() or threshold < 0:
        raise ValueError(f"{ENV_RECON_THRESHOLD}={raw!r} must be a number >= 0 (base units), e.g. 10")
    return enabled, threshold


def decide_symbol(symbol: str, local: Decimal, broker: Decimal, threshold: Decimal) -> SymbolDecision:
    def decision(action: ReconAction, reason: ReconReason, detail: str) -> SymbolDecision:
        return SymbolDecision(
            symbol=symbol, action=action, reason=reason, local_qty=local, broker_qty=broker, detail=detail
        )

    if local == broker:
        return decision(ReconAction.MATCH, ReconReason.EQUAL, f"{symbol}: engine and broker both hold {local}")
    if local == 0:
        return decision(
            ReconAction.ADOPT_MANUAL,
            ReconReason.BROKER_ONLY,
            f"{symbol}: broker holds {broker}, engine none; adopted under MANUAL with unknown cost",
        )
    if broker != 0 and (local > 0) != (broker > 0):
        return decision(
            ReconAction.REFUSE,
            ReconReason.SIGN_MISMATCH,
            f"{symbol}: engine holds {local} but broker holds {broker} (opposite sides); refusing to trade until "
            f"an operator flattens or fixes the checkpoint",
        )
    diff = abs(broker - local)
    if diff <= threshold:
        return decision(
            ReconAction.ADOPT_BROKER,
            ReconReason.WITHIN_THRESHOLD,
            f"{symbol}: engine {local}, broker {broker}; |diff| {diff} <= {threshold}, adopting the broker's quantity",
        )
    return decision(
        ReconAction.REFUSE,
        ReconReason.DIFF_ABOVE_THRESHOLD,
        f"{symbol}: engine {local}, broker {broker}; |diff| {diff} > {threshold} ({ENV_RECON_THRESHOLD}); "
        f"refusing to trade until an operator reconciles",
    )


def reconcile_startup(
    local_net: Mapping[str, Decimal], broker: Mapping[str, BrokerPosition], threshold: Decimal
) -> StartupReconciliation:
    """Pure: one decision per symbol held on either side (sorted by symbol)."""
    decisions = tuple(
        decide_symbol(symbol, local_net.get(symbol, ZERO), broker[symbol].qty if symbol in broker else ZERO, threshold)
        for symbol in sorted(set(local_net) | set(broker))
        if local_net.get(symbol, ZERO) != 0 or (symbol in broker and broker[symbol].qty != 0)
    )
    return StartupReconciliation(decisions=decisions, threshold=threshold)


def apply_startup_reconciliation(
    book: PositionBook, result: StartupReconciliation, broker: Mapping[str, BrokerPosition]
) -> None:
    """Book the adoptions (the difference under MANUAL). Refuses to apply a result that refused trading."""
    if not result.ok:
        raise ValueError(
            "startup reconciliation refused trading; nothing is adopted: "
            + "; ".join(d.detail for d in result.refusals)
        )
    for d in result.decisions:
        if d.action is ReconAction.ADOPT_BROKER or d.action is ReconAction.ADOPT_MANUAL:
            held = broker.get(d.symbol)
            price = held.entry_price if held is not None else ZERO
            book.adjust_manual(d.symbol, d.broker_qty - d.local_qty, price)


class DriftReport(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    local_qty: Decimal
    broker_qty: Decimal
    checks: int  # consecutive checks the drift has been seen
    since_ns: int
    resolved: bool = False  # True: the drift reported earlier is gone


class DriftMonitor:
    """Continuous reconciliation: a symbol's drift is reported once it persisted `persist_checks` checks,
    and reported resolved when it goes away. A failed broker query is not drift: it neither counts towards
    nor resets a streak (`query_failed`)."""

    def __init__(self, persist_checks: int, clock: Callable[[], int], tolerance: Decimal = ZERO) -> None:
        if persist_checks < 1:
            raise ValueError(f"persist_checks must be >= 1, got {persist_checks}")
        self.persist_checks = persist_checks
        self.tolerance = tolerance
        self._clock = clock
        self._streak: dict[str, tuple[int, int]] = {}  # symbol -> (consecutive checks, since_ns)
        self._reported: set[str] = set()
        self.checks = 0
        self.query_failures = 0

    @property
    def drifting(self) -> frozenset[str]:
        return frozenset(self._reported)

    def query_failed(self) -> None:
        self.query_failures += 1

    def observe(self, local_net: Mapping[str, Decimal], broker: Mapping[str, Decimal]) -> list[DriftReport]:
        self.checks += 1
        now = self._clock()
        reports: list[DriftReport] = []
        for symbol in sorted(set(local_net) | set(broker) | set(self._streak)):
            local, held = local_net.get(symbol, ZERO), broker.get(symbol, ZERO)
            if abs(local - held) <= self.tolerance:
                self._streak.pop(symbol, None)
                if symbol in self._reported:
                    self._reported.discard(symbol)
                    reports.append(
                        DriftReport(
                            symbol=symbol, local_qty=local, broker_qty=held, checks=0, since_ns=now, resolved=True
                        )
                    )
                continue
            count, since = self._streak.get(symbol, (0, now))
            count += 1
            self._streak[symbol] = (count, since)
            if count >= self.persist_checks and symbol not in self._reported:
                self._reported.add(symbol)
                reports.append(
                    DriftReport(symbol=symbol, local_qty=local, broker_qty=held, checks=count, since_ns=since)
                )
        return reports
