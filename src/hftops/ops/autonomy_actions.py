"""What the engine does when the autonomy controller reports a transition: publish it with its evidence
(`ops:events:autonomy`, `ops:events:evidence`), log it, notify the operator (scope, reason, exposure,
what a rearm will do), and act: entering HALT cancels every open order and requests one flatten of
everything per HALT episode; quarantining a strategy cancels that strategy's open orders.

The actions reach the engine through a small port (callables), so this module owns the policy and the
engine keeps the mechanics of cancelling and flattening.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog

from hftops.model.streams import OpsKind
from hftops.notify import Severity, exposure_rows, format_degradation, format_rearm, format_recovery
from hftops.ops.autonomy_entries import Transition
from hftops.ops.autonomy_state import AutonomyController
from hftops.ops.evidence import autonomy_event, build_evidence, log_tail, process_figures
from hftops.ops.modes import Mode, Scope
from hftops.ops.reasons import AUTO_RECOVERABLE, Reason

REASON_CODES = frozenset(r.value for r in Reason)


class NotifierLike(Protocol):
    def notify(self, severity: Severity, text: str, *, key: str = "") -> None: ...


class OpsPublisher(Protocol):
    def publish_ops(self, kind: OpsKind, event: Any, event_kind: str | None = None) -> None: ...


@dataclass
class EnginePort:
    """The engine's side of the actions (bound by Engine)."""

    publisher: OpsPublisher
    notifier: Callable[[], NotifierLike | None]
    positions: Callable[[], list[Any]]  # the position book's positions (objects)
    health: Callable[[], Mapping[str, str]]  # the monitor's last health figures
    stream_lag: Callable[[], Mapping[str, str]]
    ready: Callable[[], bool]  # started and connected to the broker: orders can be cancelled
    cancel_all: Callable[[], Awaitable[None]]
    cancel_strategy: Callable[[str], None]
    cancel_risk_increasing: Callable[[], None]  # resting orders that could add risk (REDUCE_ONLY entry)
    request_flatten: Callable[[], str] | None  # returns a description of the job; raises when refused
    spawn: Callable[[Awaitable[None]], None]
    log_path: Path


def kind_of(t: Transition) -> str:
    if t.trigger == "rearm":
        return "rearm"
    if t.trigger == "recovered":
        return "recovered"
    if t.trigger == "restored":
        return "restored" if t.to_mode is not Mode.NORMAL else "recovered"
    return "degraded"


class AutonomyActions:
    def __init__(
        self,
        controller: AutonomyController,
        port: EnginePort,
        *,
        flatten_on_halt: bool = True,
        log_tail_lines: int = 30,
        log: Any = None,
    ) -> None:
        self.autonomy = controller
        self.port = port
        self.flatten_on_halt = flatten_on_halt
        self.log_tail_lines = log_tail_lines
        self.log = log or structlog.get_logger("ops.autonomy")
        self._halt_pending = False  # HALT entered before the engine could cancel (boot, broker away)
        self.counters = {
            "published": 0,
            "halt_cancels": 0,
            "halt_flattens": 0,
            "flatten_refused": 0,
            "strategy_cancels": 0,
            "reduce_only_cancels": 0,
        }
        controller.listeners.append(self.on_transition)

    # --- the listener ---
    def on_transition(self, t: Transition) -> None:
        self._publish(t)
        self._log(t)
        self._notify(t)
        if t.scope is Scope.PLATFORM and t.to_mode is Mode.HALT and t.from_mode is not Mode.HALT:
            self._halt_pending = True
            self.on_ready()
        elif t.scope is Scope.PLATFORM and t.to_mode is Mode.PLATFORM_REDUCE_ONLY and t.from_mode is Mode.NORMAL:
            self.counters["reduce_only_cancels"] += 1
            self.port.cancel_risk_increasing()
        elif (
            t.scope is Scope.STRATEGY
            and t.to_mode is Mode.STRATEGY_QUARANTINED
            and t.from_mode is not Mode.STRATEGY_QUARANTINED
        ):
            self.counters["strategy_cancels"] += 1
            self.port.cancel_strategy(t.strategy_id)

    def on_ready(self) -> None:
        """Called on HALT and again once the engine can trade (after boot): the HALT actions run once."""
        if not self._halt_pending or self.autonomy.mode is not Mode.HALT or not self.port.ready():
            return
        self._halt_pending = False
        self.counters["halt_cancels"] += 1
        self.port.spawn(self._halt_actions())

    async def _halt_actions(self) -> None:
        # A flatten of everything cancels every resting order itself (one open-orders read, cancels in
        # parallel): asking it first saves a sequential cancel sweep on the way to flat.
        if not self._request_halt_flatten():
            await self.port.cancel_all()

    def _request_halt_flatten(self) -> bool:
        """True when a flatten of everything was started (it cancels the resting orders too)."""
        if not self.flatten_on_halt or self.autonomy.halt_flatten_requested or self.autonomy.mode is not Mode.HALT:
            return False
        if self.port.request_flatten is None:
            self.log.error(
                "halt_flatten_unavailable",
                hint="no flattener in this engine: positions are kept; "
                "close them with `trading flatten` or at the venue",
            )
            return False
        self.autonomy.mark_halt_flatten()  # once per episode, even when the request below is refused
        try:
            job = self.port.request_flatten()
        except Exception as exc:  # FlattenBusy: a flatten of everything is already running, which is the aim
            self.counters["flatten_refused"] += 1
            self.log.warning("halt_flatten_refused", episode=self.autonomy.halt_episode, reason=str(exc))
            return False
        self.counters["halt_flattens"] += 1
        self.log.error("halt_flatten_requested", episode=self.autonomy.halt_episode, job=job)
        return True

    # --- outputs ---
    def _publish(self, t: Transition) -> None:
        evidence = build_evidence(
            t,
            health=self.port.health(),
            positions=_rows(self.port.positions()),
            stream_lag=self.port.stream_lag(),
            process=process_figures(),
            log_lines=log_tail(self.port.log_path, self.log_tail_lines),
        )
        self.port.publisher.publish_ops(OpsKind.AUTONOMY, autonomy_event(t), t.to_mode.value)
        self.port.publisher.publish_ops(OpsKind.EVIDENCE, evidence, t.trigger)
        self.counters["published"] += 1

    def _log(self, t: Transition) -> None:
        kind = kind_of(t)
        level = self.log.error if kind in ("degraded", "restored") else self.log.warning
        level(
            "autonomy_transition",
            id=t.id,
            kind=kind,
            scope=t.scope.value,
            strategy=t.strategy_id or None,
            from_mode=t.from_mode.value,
            to_mode=t.to_mode.value,
            trigger=t.trigger,
            reasons=list(t.reasons),
            operator=t.operator or None,
            detail=t.detail or None,
            values=t.values or None,
            forced=t.forced,
        )

    def _notify(self, t: Transition) -> None:
        notifier = self.port.notifier()
        if notifier is None:
            return
        kind = kind_of(t)
        scope = "platform" if t.scope is Scope.PLATFORM else f"strategy {t.strategy_id}"
        exposure = exposure_rows(self.port.positions())
        if kind == "rearm":
            text = format_rearm(
                t.operator, t.detail, scope, t.from_mode.value, t.to_mode.value, exposure, forced=t.forced
            )
            severity = Severity.WARNING if t.forced else Severity.INFO
        elif kind == "recovered":
            text = format_recovery(scope, t.detail or t.trigger, t.to_mode.value, exposure)
            severity = Severity.INFO
        else:
            reason = t.trigger if t.trigger in REASON_CODES else ", ".join(t.reasons)
            text = format_degradation(
                scope + (" (restored at boot)" if kind == "restored" else ""),
                reason,
                t.to_mode.value,
                exposure,
                self.rearm_effect(t),
                detail=t.detail,
                values=t.values,
                thresholds=t.thresholds,
            )
            severity = Severity.CRITICAL if t.to_mode is Mode.HALT else Severity.WARNING
        notifier.notify(severity, text, key=f"autonomy:{scope}:{t.trigger}")

    def rearm_effect(self, t: Transition) -> str:
        if t.scope is Scope.STRATEGY:
            return (
                f"`trading rearm --strategy {t.strategy_id} --operator NAME --reason TEXT` lifts this "
                "strategy's quarantine only; it then trades normally"
            )
        auto = bool(t.reasons) and all(Reason(r) in AUTO_RECOVERABLE for r in t.reasons)
        cooldown = self.autonomy.cooldown_ns / 1e9
        if auto:
            return (
                f"recovers by itself once the condition has been clear for {cooldown:g} s; "
                "`trading rearm --operator NAME --reason TEXT` clears it now (refused while the condition is "
                "present unless --force)"
            )
        effect = "returns the platform to NORMAL and new orders resume"
        if t.to_mode is Mode.HALT:
            effect += (
                "; meanwhile every open order is cancelled and every position flattened"
                if self.flatten_on_halt
                else "; meanwhile open orders are cancelled, positions kept"
            )
        return f"`trading rearm --operator NAME --reason TEXT` {effect}"


def _rows(positions: list[Any]) -> list[dict[str, str]]:
    return [
        {"strategy": str(p.strategy_id), "symbol": str(p.symbol), "qty": str(p.qty), "avg_price": str(p.avg_price)}
        for p in positions
        if p.qty != 0
    ]
