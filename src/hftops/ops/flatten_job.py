"""One flatten job: its vocabulary (scope, trigger), its state (deadline, per-symbol legs, the orders it
placed), its report, and the refusal of a second job for a running scope (`FlattenBusy`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from hftops.model.ops_events import FlattenReport
from hftops.model.orders import ZERO, OrderStatus
from hftops.ops.flatten_plan import Leg


class FlattenScope(StrEnum):
    ALL = "all"
    STRATEGY = "strategy"  # scope_id: the strategy id
    TRACK = "track"  # scope_id: the session track's name; its symbols come from the session governor


class FlattenTrigger(StrEnum):
    MANUAL = "manual"  # `trading flatten`
    API = "api"  # POST /api/flatten
    HALT = "halt"  # the autonomy controller entering HALT
    FORCE_FLAT = "force_flat"  # a track's session entering FORCE_FLAT (or a boot inside it)


@dataclass
class PlacedOrder:
    """A flatten order as the job follows it: the broker's status and cumulative fill, and the fills seen."""

    leg: Leg
    qty: Decimal
    status: OrderStatus = OrderStatus.NEW
    reported: Decimal = ZERO  # the broker's cumulative filled quantity (order updates)
    fills: Decimal = ZERO  # the sum of the fills received (user-data stream / userTrades)

    @property
    def settled(self) -> bool:
        return self.status.terminal and self.fills >= self.reported


@dataclass(eq=False)
class FlattenJob:
    id: str
    scope: str
    scope_id: str
    trigger: str
    operator: str
    deadline_s: float
    started_ns: int
    started_mono: float
    symbols: frozenset[str] | None  # scope track: the track's symbols; else None
    done: asyncio.Future[FlattenReport] = field(init=False)  # `await job.done` -> the report
    label: str = field(init=False)  # "all", "strategy mm1", "track stock"
    gate_detail: str = field(init=False)
    task: asyncio.Task[None] | None = None
    legs: dict[tuple[str, str], Leg] = field(default_factory=dict)  # (symbol, strategy or '') -> leg
    orders: dict[str, PlacedOrder] = field(default_factory=dict)  # client order id -> order
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    rounds: int = 0
    retries: int = 0
    broker_reads: int = 0
    broker_error: str = ""
    cancel_problems: list[str] = field(default_factory=list)
    interrupted: str = ""
    error: str = ""

    def __post_init__(self) -> None:
        self.done = asyncio.get_running_loop().create_future()
        self.label = self.scope if not self.scope_id else f"{self.scope} {self.scope_id}"
        self.gate_detail = (
            f"flatten {self.id} of {self.label} is running: only cancels and flatten orders pass until it reports"
        )

    @property
    def key(self) -> tuple[str, str]:
        return (self.scope, self.scope_id)

    def covers(self, strategy_id: str, symbol: str) -> bool:
        if self.scope == "all":
            return True
        if self.scope == "strategy":
            return strategy_id == self.scope_id
        return self.symbols is not None and symbol in self.symbols

    def left(self, now_mono: float) -> float:
        return self.started_mono + self.deadline_s - now_mono

    def all_confirmed(self) -> bool:
        return all(leg.confirmed for leg in self.legs.values())

    def filled(self) -> Decimal:
        return sum((o.fills for o in self.orders.values()), ZERO)

    def report(self, now_ns: int) -> FlattenReport:
        legs = sorted(self.legs.values(), key=lambda leg: (leg.symbol, leg.strategy_id))
        still_open = [leg for leg in legs if not leg.confirmed]
        ok = not still_open and not self.error and not self.interrupted
        return FlattenReport(
            id=self.id,
            time_ns=now_ns,
            started_ns=self.started_ns,
            scope=self.scope,
            scope_id=self.scope_id,
            trigger=self.trigger,
            operator=self.operator,
            deadline_s=self.deadline_s,
            ok=ok,
            symbols=[leg.as_report() for leg in legs],
            detail=self._detail(legs, still_open, ok),
        )

    def _detail(self, legs: list[Leg], still_open: list[Leg], ok: bool) -> str:
        parts = []
        if self.interrupted:
            parts.append(f"interrupted: {self.interrupted}")
        if self.error:
            parts.append(f"failed: {self.error}")
        if still_open:
            opened = ", ".join(
                f"{leg.symbol}{'/' + leg.strategy_id if leg.strategy_id else ''} {leg.remaining}" for leg in still_open
            )
            parts.append(
                f"{len(still_open)} of {len(legs)} positions not confirmed flat by the broker "
                f"within {self.deadline_s:g} s: {opened}"
            )
        if not legs and ok:
            parts.append("nothing to flatten: no position in scope")
        elif ok:
            parts.append(f"{len(legs)} position(s) confirmed flat by the broker")
        if self.broker_error and not ok:
            parts.append(f"last broker error: {self.broker_error}")
        if self.cancel_problems:
            parts.append("cancel problems: " + "; ".join(self.cancel_problems[:5]))
        parts.append(f"{self.rounds} round(s), {len(self.orders)} order(s), {self.broker_reads} position read(s)")
        return "; ".join(parts)

    def summary(self, report: FlattenReport) -> str:
        """The notification text: outcome, every line of the report, and what happens next."""
        took = (report.time_ns - report.started_ns) / 1e9
        head = (
            f"FLATTEN {'DONE' if report.ok else 'FAILED'} {self.label} (job {self.id}, trigger {self.trigger}"
            f"{', by ' + self.operator if self.operator else ''}) after {took:.2f} s"
        )
        lines = [head, report.detail]
        for s in report.symbols:
            who = f" [{s.strategy_id}]" if s.strategy_id else ""
            lines.append(
                f"{'OPEN' if s.failed else 'flat'} {s.symbol}{who}: start {s.start_qty}, submitted "
                f"{s.submitted}, filled {s.filled}, remaining {s.remaining}" + (f" ({s.detail})" if s.detail else "")
            )
        if not report.ok and not self.interrupted:
            lines.append(
                "escalating to HALT (flatten_failed): close the remaining positions at the venue, then "
                "`trading rearm --operator NAME --reason TEXT` returns the platform to NORMAL"
            )
        return "\n".join(lines)


class FlattenBusy(Exception):
    """A flatten of this scope is running; the message names it. The running job is left as it is."""

    def __init__(self, job: FlattenJob, age_s: float) -> None:
        super().__init__(
            f"a flatten of scope {job.label} is already running (job {job.id}, trigger {job.trigger}"
            f"{', by ' + job.operator if job.operator else ''}, started {age_s:.1f} s ago, deadline "
            f"{job.deadline_s:g} s); this request is refused and the running one continues: its report "
            f"arrives on ops:events:flatten"
        )
        self.job = job
