"""The PositionFlattener: closes every position in a scope and proves it with the broker's own figures.

One job per request (`trading flatten`, the API, HALT, a track entering FORCE_FLAT): cancel the resting
orders in scope, send reduce-only MARKET orders as FORCE_FLAT intents through the engine's gate chain and
order router, follow their fills on the user-data stream, re-read the broker's positions (positionRisk) and
retry what remains with backoff. The report counts fills and the broker's positions, never submissions
(DESIGN rule 8). Anything still open at the deadline is a failure: a critical notification and HALT
(`flatten_failed`). One job per scope at a time; a second request for a running scope is refused
(`FlattenBusy`), never merged into or overwriting the first. While a job runs, its scope takes only cancels
and flatten orders (`ops.flatten_gate`). How one-way mode's net positions are split: `ops.flatten_plan`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol

import msgspec
import structlog

from hftops.config.flatten_margin import FlattenConfig
from hftops.model.ops_events import FlattenReport
from hftops.model.orders import (
    Fill,
    Intent,
    IntentKind,
    OrderStatus,
    OrderType,
    OrderUpdate,
    TimeInForce,
)
from hftops.notify.messages import Severity
from hftops.ops.flatten_gate import FlattenActiveGate
from hftops.ops.flatten_job import FlattenBusy, FlattenJob, FlattenScope, FlattenTrigger, PlacedOrder
from hftops.ops.flatten_plan import PlannedOrder, plan_net_round, plan_strategy_round
from hftops.ops.flatten_port import FlattenPort
from hftops.ops.reasons import Reason


class Escalation(Protocol):
    """The autonomy controller, as far as the flattener uses it (ops.autonomy_state.AutonomyController)."""

    def trip(
        self,
        reason: Reason,
        *,
        strategy_id: str | None = None,
        detail: str = "",
        values: Mapping[str, Any] | None = None,
    ) -> Any: ...


class Notifier(Protocol):
    def notify(self, severity: Severity, text: str, *, key: str = "") -> None: ...


class PositionFlattener:
    def __init__(
        self,
        port: FlattenPort,
        config: FlattenConfig,
        *,
        clock: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], float] = time.monotonic,
        autonomy: Escalation | None = None,
        notifier: Notifier | None = None,
        log: Any = None,
    ) -> None:
        self.port = port
        self.config = config
        self.clock = clock
        self.monotonic = monotonic
        self.autonomy = autonomy  # set by the engine once built (it needs the flattener too)
        self.notifier = notifier
        self.log = log or structlog.get_logger("ops.flatten")
        self._running: dict[tuple[str, str], FlattenJob] = {}
        self._by_order: dict[str, FlattenJob] = {}
        self._seq = 0
        self.gate = FlattenActiveGate(self._running)
        self.recent: deque[FlattenReport] = deque(maxlen=20)
        self.counters = {
            "requested": 0,
            "refused_busy": 0,
            "succeeded": 0,
            "failed": 0,
            "escalated": 0,
            "interrupted": 0,
            "orders_sent": 0,
            "orders_refused": 0,
            "broker_read_errors": 0,
        }

    # --- requests -------------------------------------------------------------------------------------

    def request(
        self, scope: str, scope_id: str = "", *, deadline_s: float | None = None, trigger: str, operator: str = ""
    ) -> FlattenJob:
        """Start a flatten job (call on the engine's loop). ValueError: a bad scope, id, trigger or deadline;
        FlattenBusy: this scope is already being flattened."""
        kind, scope_id, trig = self._validate(scope, scope_id, trigger)
        deadline = self.config.deadline_s if deadline_s is None else float(deadline_s)
        if not 0 < deadline <= 3600:
            raise ValueError(f"deadline_s must be > 0 and <= 3600 seconds (got {deadline_s!r})")
        running = self._running.get((kind.value, scope_id))
        if running is not None:
            self.counters["refused_busy"] += 1
            raise FlattenBusy(running, self.monotonic() - running.started_mono)
        symbols = None
        if kind is FlattenScope.TRACK:
            try:
                symbols = frozenset(self.port.symbols_of_track(scope_id))
            except KeyError as exc:
                raise ValueError(f"unknown track {scope_id!r}: {exc.args[0] if exc.args else ''}") from None
        self._seq += 1
        now = self.clock()
        job = FlattenJob(
            id=f"fl{now // 1_000_000:x}{self._seq}",
            scope=kind.value,
            scope_id=scope_id,
            trigger=trig.value,
            operator=operator,
            deadline_s=deadline,
            started_ns=now,
            started_mono=self.monotonic(),
            symbols=symbols,
        )
        self._running[job.key] = job
        self.counters["requested"] += 1
        job.task = asyncio.get_running_loop().create_task(self._run(job), name=f"flatten-{job.id}")
        self.log.warning(
            "flatten_started",
            job=job.id,
            scope=job.label,
            trigger=job.trigger,
            operator=operator,
            deadline_s=deadline,
            symbols=sorted(symbols) if symbols is not None else None,
        )
        return job

    @staticmethod
    def _validate(scope: str, scope_id: str, trigger: str) -> tuple[FlattenScope, str, FlattenTrigger]:
        try:
            kind = FlattenScope(scope)
        except ValueError:
            raise ValueError(f"unknown flatten scope {scope!r}; use one of {[s.value for s in FlattenScope]}") from None
        try:
            trig = FlattenTrigger(trigger)
        except ValueError:
            raise ValueError(
                f"unknown flatten trigger {trigger!r}; use one of {[t.value for t in FlattenTrigger]}"
            ) from None
        scope_id = (scope_id or "").strip()
        if kind is FlattenScope.ALL and scope_id:
            raise ValueError(f"scope all takes no id (got {scope_id!r}); use --scope strategy or track with --id")
        if kind is not FlattenScope.ALL and not scope_id:
            raise ValueError(f"scope {kind.value} needs an id: the {kind.value}'s name (--id)")
        return kind, scope_id, trig

    def running(self) -> list[FlattenJob]:
        return list(self._running.values())

    async def close(self) -> None:
        """Engine stopping: running jobs end now, reported as interrupted (never escalated)."""
        jobs = list(self._running.values())
        for job in jobs:
            job.interrupted = "the engine stopped before the flatten finished"
            if job.task is not None:
                job.task.cancel()
        for job in jobs:
            if job.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await job.task

    # --- reports from the engine (order updates and fills of every order) -----------------------------

    def on_order(self, update: OrderUpdate) -> None:
        job = self._by_order.get(update.client_order_id)
        if job is None:
            return
        order = job.orders[update.client_order_id]
        order.status = update.status
        order.reported = max(order.reported, update.filled_qty)
        if update.status is OrderStatus.REJECTED:
            order.leg.reject(f"broker: {update.reason or 'rejected'}")
        elif update.status is OrderStatus.EXPIRED and update.filled_qty < order.qty:
            order.leg.reject(f"expired with {order.qty - update.filled_qty} of {order.qty} unfilled")
        job.changed.set()

    def on_fill(self, fill: Fill) -> None:
        job = self._by_order.get(fill.client_order_id)
        if job is None:
            return
        order = job.orders[fill.client_order_id]
        order.fills += fill.qty
        order.leg.filled += fill.qty
        job.changed.set()

    # --- one job --------------------------------------------------------------------------------------

    async def _run(self, job: FlattenJob) -> None:
        try:
            await self._work(job)
        except asyncio.CancelledError:
            job.interrupted = job.interrupted or "cancelled"
        except Exception as exc:  # a bug must still end in a report (and an escalation), never in silence
            job.error = f"{type(exc).__name__}: {exc}"
            self.log.exception("flatten_crashed", job=job.id)
        finally:
            self._finish(job)

    async def _work(self, job: FlattenJob) -> None:
        while not self.port.ready():  # e.g. FORCE_FLAT at boot: the broker is not connected yet
            if job.left(self.monotonic()) <= 0:
                job.error = "the engine never became ready to send orders (broker not connected)"
                return
            await asyncio.sleep(min(0.1, job.left(self.monotonic())))
        delay = self.config.retry_initial_s
        first = True
        while True:
            broker = await self._read_broker(job, with_cancels=first)
            first = False
            if broker is not None:
                orders = self._plan(job, broker)
                if not orders and job.all_confirmed():
                    return
                if orders and await self._round(job, orders):
                    delay = self.config.retry_initial_s
                    continue  # fills arrived: re-read the broker at once
            left = job.left(self.monotonic())
            if left <= 0:
                return
            job.retries += 1
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, self.config.retry_max_s)

    async def _read_broker(self, job: FlattenJob, *, with_cancels: bool) -> dict[str, Decimal] | None:
        reads: list[Awaitable[Any]] = [self.port.broker_positions()]
        if with_cancels:  # in parallel with the first read: both must be done before the first order
            reads.append(self._cancel(job))
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*reads, return_exceptions=True), max(0.001, job.left(self.monotonic()))
            )
        except TimeoutError:
            job.broker_error = "the broker did not answer positionRisk before the deadline"
            return None
        broker = results[0]
        if with_cancels and isinstance(results[1], Exception):  # the orders still go out; the report says it
            job.cancel_problems.append(f"cancelling in scope failed: {type(results[1]).__name__}: {results[1]}")
        if isinstance(broker, BaseException):
            self.counters["broker_read_errors"] += 1
            job.broker_error = f"positionRisk failed: {type(broker).__name__}: {broker}"
            self.log.warning("flatten_broker_read_failed", job=job.id, error=job.broker_error)
            return None
        job.broker_reads += 1
        return broker

    async def _cancel(self, job: FlattenJob) -> None:
        if job.scope == FlattenScope.STRATEGY:
            problems = await self.port.cancel_orders(self.port.open_orders(job.scope_id))
        else:
            symbols = job.symbols if job.symbols is not None else self.port.all_symbols()
            problems = await self.port.cancel_symbols(sorted(symbols))
        job.cancel_problems.extend(problems)

    def _plan(self, job: FlattenJob, broker: Mapping[str, Decimal]) -> list[PlannedOrder]:
        book = self.port.book()
        if job.scope == FlattenScope.STRATEGY:
            return plan_strategy_round(job.legs, job.scope_id, broker, book)
        symbols = job.symbols if job.symbols is not None else set(broker) | set(book) | {s for s, _ in job.legs}
        return plan_net_round(job.legs, symbols, broker, book)

    async def _round(self, job: FlattenJob, planned: list[PlannedOrder]) -> bool:
        """Send one round of orders (all at once) and wait for their outcome; True when something filled."""
        job.rounds += 1
        sent = []
        for p in planned:
            leg = job.legs[(p.symbol, "" if job.scope != FlattenScope.STRATEGY else p.strategy_id)]
            cid = self.port.next_client_order_id(p.strategy_id)
            intent = Intent(
                kind=IntentKind.FORCE_FLAT,
                strategy_id=p.strategy_id,
                symbol=p.symbol,
                side=p.side,
                qty=p.qty,
                order_type=OrderType.MARKET,
                tif=TimeInForce.IOC,
                client_order_id=cid,
                reduce_only=True,
                tag=f"flatten:{job.id}",
            )
            job.orders[cid] = PlacedOrder(leg, p.qty)
            self._by_order[cid] = job  # before sending: the first report may overtake the send's return
            refusal = self.port.send(intent)
            if refusal is not None:
                self.counters["orders_refused"] += 1
                del job.orders[cid], self._by_order[cid]
                leg.reject(f"gate {refusal.gate}: {refusal.reason.value if refusal.reason else ''} {refusal.detail}")
                continue
            self.counters["orders_sent"] += 1
            leg.submitted += p.qty
            sent.append(cid)
        if not sent:
            return False
        filled_before = job.filled()
        await self._settle(job, sent)
        return job.filled() > filled_before

    async def _settle(self, job: FlattenJob, cids: list[str]) -> None:
        """Until every order is final and its fills are in, or the settle timeout; then resync what is not."""
        end = self.monotonic() + min(self.config.settle_timeout_s, max(0.0, job.left(self.monotonic())))
        while True:
            job.changed.clear()
            waiting = [c for c in cids if not job.orders[c].settled]
            left = end - self.monotonic()
            if not waiting:
                return
            if left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(job.changed.wait(), left)
        symbols = {job.orders[c].leg.symbol for c in waiting}
        self.log.warning("flatten_orders_unsettled", job=job.id, orders=waiting, hint="resyncing with the broker")
        try:  # settles orders whose answer was lost and recovers fills the stream missed
            await asyncio.wait_for(self.port.resync(symbols), max(0.001, job.left(self.monotonic())))
        except Exception as exc:
            self.log.warning("flatten_resync_failed", job=job.id, error=f"{type(exc).__name__}: {exc}")

    # --- the end of a job -----------------------------------------------------------------------------

    def _finish(self, job: FlattenJob) -> None:
        report = job.report(self.clock())
        self._running.pop(job.key, None)
        for cid in job.orders:
            self._by_order.pop(cid, None)
        self.recent.append(report)
        with contextlib.suppress(Exception):
            self.port.publish(report)
        if report.ok:
            self.counters["succeeded"] += 1
            self.log.warning(
                "flatten_done",
                job=job.id,
                scope=job.label,
                symbols=len(report.symbols),
                seconds=round((report.time_ns - report.started_ns) / 1e9, 3),
            )
            self._notify(Severity.INFO, job.summary(report))
        else:
            self.counters["interrupted" if job.interrupted else "failed"] += 1
            self.log.error(
                "flatten_failed",
                job=job.id,
                scope=job.label,
                detail=report.detail,
                open=[s.symbol for s in report.symbols if s.failed],
            )
            self._notify(Severity.CRITICAL, job.summary(report))
            if not job.interrupted:
                self._escalate(job, report)
        if not job.done.done():
            job.done.set_result(report)

    def _escalate(self, job: FlattenJob, report: FlattenReport) -> None:
        if self.autonomy is None:
            self.log.error("flatten_escalation_unwired", job=job.id, hint="no autonomy controller: cannot HALT")
            return
        open_symbols = {s.symbol: s.remaining for s in report.symbols if s.failed}
        try:
            self.autonomy.trip(
                Reason.FLATTEN_FAILED,
                detail=f"flatten {job.id} ({job.label}): {report.detail}",
                values={"job": job.id, "scope": job.label, **open_symbols},
            )
            self.counters["escalated"] += 1
        except Exception:
            self.log.exception("flatten_escalation_failed", job=job.id)

    def _notify(self, severity: Severity, text: str) -> None:
        if self.notifier is not None:
            with contextlib.suppress(Exception):  # the notifier never raises; a bug there must not stop us
                self.notifier.notify(severity, text, key="flatten")

    def stats(self) -> dict[str, Any]:
        now = self.monotonic()
        last = self.recent[-1] if self.recent else None
        return {
            "running": [
                {
                    "id": j.id,
                    "scope": j.label,
                    "trigger": j.trigger,
                    "age_s": round(now - j.started_mono, 3),
                    "deadline_s": j.deadline_s,
                }
                for j in self._running.values()
            ],
            "counters": dict(self.counters),
            "last": None
            if last is None
            else {
                "id": last.id,
                "scope": last.scope,
                "scope_id": last.scope_id,
                "ok": last.ok,
                "time_ns": last.time_ns,
                "detail": last.detail,
            },
            "recent": [msgspec.to_builtins(r) for r in list(self.recent)[-5:]],  # control.flatten_client reads
        }


__all__ = ["FlattenActiveGate", "FlattenBusy", "FlattenScope", "FlattenTrigger", "PositionFlattener"]
