"""The MarginMonitor: polls the broker's account and turns margin use into a warning, REDUCE_ONLY, recovery.

ratio = margin in use (totalInitialMargin: positions + open orders) / available (availableBalance), the
issue's definition. At or above `warning_ratio` one warning per episode (an episode lasts from leaving OK
until the ratio falls below `recovery_ratio`); at or above `critical_ratio`, or available <= 0, the autonomy condition
`margin_critical` (PLATFORM_REDUCE_ONLY, auto-recoverable after its cooldown) and one critical notification
per critical stretch. Every poll reports the level to the autonomy controller (a level input); a poll that
fails changes nothing - the last level stands - and is counted. Level changes go to ops:events:margin.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

import structlog

from hftops.config.flatten_margin import MarginConfig
from hftops.model.ops_events import MarginEvent
from hftops.notify.messages import Severity
from hftops.ops.reasons import Reason

HEARTBEAT_S = 60.0  # an unchanged level is still published this often, so the table shows the monitor alive


class MarginLevel(StrEnum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    ERROR = "error"  # the account could not be read (published, never a state)


class AccountSource(Protocol):
    async def account(self) -> Any: ...  # execution.wire.Account: totalInitialMargin, availableBalance, ...


class Conditions(Protocol):
    def set_condition(
        self, reason: Reason, active: bool, *, values: Any = None, thresholds: Any = None, detail: str = ""
    ) -> Any: ...


class Notifier(Protocol):
    def notify(self, severity: Severity, text: str, *, key: str = "") -> None: ...


@dataclass(frozen=True, slots=True)
class MarginReading:
    used: Decimal
    available: Decimal
    balance: Decimal

    @property
    def ratio(self) -> Decimal | None:
        """used / available; None when nothing is available (the ratio has no meaning there)."""
        return self.used / self.available if self.available > 0 else None

    def ratio_text(self) -> str:
        ratio = self.ratio
        return "inf" if ratio is None else f"{ratio:.4f}"


def classify(reading: MarginReading, config: MarginConfig, previous: MarginLevel = MarginLevel.OK) -> MarginLevel:
    """The level of one reading; an episode in progress ends only below `recovery_ratio` (no flapping)."""
    ratio = reading.ratio
    if ratio is None or ratio >= config.critical_ratio:
        return MarginLevel.CRITICAL
    if ratio >= config.warning_ratio:
        return MarginLevel.WARNING
    in_episode = previous is not MarginLevel.OK and ratio >= config.recovery_ratio
    return MarginLevel.WARNING if in_episode else MarginLevel.OK


class MarginMonitor:
    def __init__(
        self,
        rest: AccountSource,
        autonomy: Conditions | None,
        notifier: Notifier | None,
        clock: Callable[[], int],
        *,
        config: MarginConfig,
        publish: Callable[[MarginEvent], None] | None = None,
        monotonic: Callable[[], float] | None = None,
        log: Any = None,
    ) -> None:
        self.rest = rest
        self.autonomy = autonomy
        self.notifier = notifier
        self.clock = clock
        self.config = config
        self.publish = publish or (lambda event: None)
        self.monotonic = monotonic or (lambda: clock() / 1e9)
        self.log = log or structlog.get_logger("ops.margin")
        self.level = MarginLevel.OK
        self.warned = False  # a warning went out in this episode
        self.last: MarginReading | None = None
        self.last_error = ""
        self.error_streak = 0
        self._published_at: float | None = None
        self.counters = {"polls": 0, "errors": 0, "episodes": 0, "warnings": 0, "criticals": 0, "recoveries": 0}

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self.poll()
            except Exception:  # the monitor outlives its own bugs; each failure is logged with its trace
                self.counters["errors"] += 1
                self.log.exception("margin_poll_crashed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.config.poll_interval_s)

    async def poll(self) -> MarginLevel:
        self.counters["polls"] += 1
        try:
            account = await self.rest.account()
        except Exception as exc:  # broker unreachable, 5xx, bad JSON: nothing changes, the failure is counted
            self._failed(f"{type(exc).__name__}: {exc}")
            return self.level
        self.error_streak = 0
        reading = MarginReading(
            used=account.totalInitialMargin, available=account.availableBalance, balance=account.totalMarginBalance
        )
        return self.observe(reading)

    def observe(self, reading: MarginReading) -> MarginLevel:
        """Judge one reading: autonomy input, notifications on the edges, the event when the level moves."""
        previous = self.level
        level = classify(reading, self.config, previous)
        self.last, self.level = reading, level
        figures = {
            "ratio": reading.ratio_text(),
            "used": str(reading.used),
            "available": str(reading.available),
            "margin_balance": str(reading.balance),
        }
        if self.autonomy is not None:
            self.autonomy.set_condition(
                Reason.MARGIN_CRITICAL,
                level is MarginLevel.CRITICAL,
                values=figures,
                thresholds={"critical_ratio": str(self.config.critical_ratio), "available_min": "0"},
                detail=self._describe(reading),
            )
        self._edges(previous, level, reading)
        now = self.monotonic()
        if level is not previous or self._published_at is None or now - self._published_at >= HEARTBEAT_S:
            self._published_at = now
            self.publish(
                MarginEvent(
                    time_ns=self.clock(),
                    level=level.value,
                    ratio=figures["ratio"],
                    used=figures["used"],
                    available=figures["available"],
                    detail=self._describe(reading),
                )
            )
        return level

    def _edges(self, previous: MarginLevel, level: MarginLevel, reading: MarginReading) -> None:
        text = self._describe(reading)
        if previous is MarginLevel.OK and level is not MarginLevel.OK:
            self.counters["episodes"] += 1
            self.warned = False
        if level is MarginLevel.CRITICAL and previous is not MarginLevel.CRITICAL:
            self.counters["criticals"] += 1
            self.warned = True  # the critical alert says more than a warning would
            self.log.error("margin_critical", detail=text)
            self._notify(
                Severity.CRITICAL,
                f"MARGIN CRITICAL: {text}. The platform goes REDUCE_ONLY "
                f"(margin_critical): no new risk, reducing orders only; it returns to NORMAL by itself once "
                f"the ratio stays below {self.config.critical_ratio} for the cooldown.",
            )
        elif level is MarginLevel.WARNING and not self.warned:
            self.warned = True
            self.counters["warnings"] += 1
            self.log.warning("margin_warning", detail=text)
            self._notify(Severity.WARNING, f"margin warning: {text} (REDUCE_ONLY at {self.config.critical_ratio})")
        if previous is MarginLevel.CRITICAL and level is not MarginLevel.CRITICAL:
            self.log.warning("margin_critical_cleared", detail=text, level=level.value)
        if level is MarginLevel.OK and previous is not MarginLevel.OK:
            self.counters["recoveries"] += 1
            self.log.info("margin_recovered", detail=text)
            self._notify(Severity.INFO, f"margin recovered: {text}")

    def _describe(self, reading: MarginReading) -> str:
        return (
            f"margin used {reading.used} / available {reading.available} = {reading.ratio_text()} "
            f"(warning {self.config.warning_ratio}, critical {self.config.critical_ratio}; margin balance "
            f"{reading.balance})"
        )

    def _failed(self, error: str) -> None:
        self.counters["errors"] += 1
        self.error_streak += 1
        self.last_error = error
        if self.error_streak == 1 or self.error_streak % 20 == 0:
            self.log.warning(
                "margin_poll_failed",
                error=error,
                streak=self.error_streak,
                level=self.level.value,
                hint="the last margin level stands until the broker answers again",
            )
        if self.error_streak == 1:
            self.publish(
                MarginEvent(
                    time_ns=self.clock(), level=MarginLevel.ERROR.value, ratio="", used="", available="", detail=error
                )
            )

    def _notify(self, severity: Severity, text: str) -> None:
        if self.notifier is not None:
            with contextlib.suppress(Exception):
                self.notifier.notify(severity, text, key="margin")

    def stats(self) -> dict[str, Any]:
        last = self.last
        return {
            "level": self.level.value,
            "ratio": None if last is None else last.ratio_text(),
            "used": None if last is None else str(last.used),
            "available": None if last is None else str(last.available),
            "error_streak": self.error_streak,
            "last_error": self.last_error,
            "counters": dict(self.counters),
        }
