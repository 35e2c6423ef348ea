"""The ordered shutdown (`trading stop`): consumers before producers, stores last, every step audited.

Shared by the supervisor (its own children) and the CLI when the supervisor is gone (PID files).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import redis
import structlog

from hftops.config.paths import DataPaths
from hftops.config.schema import Config
from hftops.control import dataflow, verdicts
from hftops.control.audit import AuditEvent, AuditLog, component_stop_event
from hftops.control.runner import StopResult
from hftops.control.shutdown_plan import ShutdownPlan
from hftops.control.snapshot import build_snapshot, save_snapshot
from hftops.model.components import COLLECTOR, ENGINE, RECORDER, REDIS, VENUE
from hftops.model.streams import collector_cursor_key

EXIT_CLEAN = 0
EXIT_FORCED_KILL = 3
EXIT_UNBALANCED = 4
EXIT_NOT_DRAINED = 5

log = structlog.get_logger("control.shutdown")


class Stoppable(Protocol):
    name: str

    @property
    def alive(self) -> bool: ...

    async def stop(self, timeout_s: float, *, controlled: bool = True) -> StopResult: ...


@dataclass
class ShutdownReport:
    plan: ShutdownPlan
    steps: list[dict[str, Any]] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    ledger_after: dict[str, Any] = field(default_factory=dict)
    drained: dict[str, Any] | None = None
    snapshot: str | None = None
    duration_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase, for benches and operators

    @property
    def forced(self) -> list[str]:
        return [s["component"] for s in self.steps if s.get("forced")]

    @property
    def exit_code(self) -> int:
        if verdicts.ledger_verdict(self.ledger_after) == "unbalanced":
            return EXIT_UNBALANCED
        if self.forced:
            return EXIT_FORCED_KILL
        if self.plan.drain and self.drained is not None and not self.drained.get("drained"):
            return EXIT_NOT_DRAINED
        return EXIT_CLEAN

    def to_dict(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "forced": self.forced,
            "drain": self.plan.drain,
            "reason": self.plan.reason,
            "steps": self.steps,
            "before": self.before,
            "after": self.after,
            "ledger_after": self.ledger_after,
            "drained": self.drained,
            "snapshot": self.snapshot,
            "duration_s": self.duration_s,
            "timings": self.timings,
        }


def inflight_counts(config: Config) -> dict[str, Any]:
    """Cheap in-flight figures for each <COMPONENT>_STOP entry."""
    flow = dataflow.redis_flow(config)
    if not flow["reachable"]:
        return {"redis": "unreachable"}
    return {**dataflow.group_totals(flow["streams"], config.recorder.group), "wal": dataflow.wal_info(config)}


def quiesce_venue(config: Config, collector_running: bool, timeout_s: float) -> dict[str, Any]:
    """Simulated venue only: pause publishing, then wait until the collector's cursor has every id
    the venue published, so stopping the producer loses nothing that is not backfilled later."""
    if config.venue.kind != "simulated":
        return {"paused": False, "reason": "real venue"}
    base = config.rest_base_url
    try:
        http = dataflow.local_http()
        http.post(f"{base}/admin/publishing", json={"paused": True}, timeout=2.0).raise_for_status()
        truth = http.get(f"{base}/admin/ground-truth", timeout=2.0).json()
    except (httpx.HTTPError, ValueError) as exc:
        return {"paused": False, "reason": f"venue admin not reachable: {exc}"}
    wanted = {s: int(t.get("last_id") or 0) for s, t in (truth.get("symbols") or {}).items()}
    if not collector_running:
        return {"paused": True, "caught_up": None}
    deadline = time.monotonic() + timeout_s
    client = redis.Redis.from_url(config.redis_url, socket_connect_timeout=1, socket_timeout=2)
    try:
        while True:
            cursor = {_text(k): int(v) for k, v in client.hgetall(collector_cursor_key(config.venue.name)).items()}
            behind = {s: last - cursor.get(s, 0) for s, last in wanted.items() if cursor.get(s, 0) < last}
            if not behind or time.monotonic() > deadline:
                return {"paused": True, "caught_up": not behind, "behind": behind}
            time.sleep(0.02)
    except redis.RedisError as exc:
        return {"paused": True, "caught_up": False, "reason": str(exc)}
    finally:
        client.close()


async def wait_drained(config: Config, timeout_s: float, poll_s: float = 0.1) -> dict[str, Any]:
    """Await (bounded) every stream read and acknowledged by the recorder group; no fixed sleep."""
    t0 = time.monotonic()
    while True:
        drained, remaining = await asyncio.to_thread(dataflow.drain_state, config)
        waited = round(time.monotonic() - t0, 3)
        if drained:
            return {"drained": True, "waited_s": waited}
        if waited >= timeout_s:
            return {"drained": False, "waited_s": waited, "remaining": remaining}
        await asyncio.sleep(poll_s)


async def ordered_shutdown(
    units: Sequence[Stoppable],
    config: Config,
    audit: AuditLog,
    plan: ShutdownPlan,
    *,
    process_facts: Callable[[], dict[str, Any]] = dict,
    on_step: Callable[[str], Awaitable[None] | None] | None = None,
) -> ShutdownReport:
    """Stop `units` (given in start order) in reverse order, or producer-first with a drain."""
    t0 = time.monotonic()
    report = ShutdownReport(plan)
    alive = {u.name for u in units if u.alive}
    redis_up = REDIS in alive or config.redis.url is not None
    processes = process_facts()
    # The counts before (only counts: the ledger is checked once, after the stop) are read while the
    # simulated venue pauses and the collector catches up: neither stops a component, and together they
    # take what the slower of the two takes. SHUTDOWN_START is still written before any component stops.
    before = None
    if redis_up:
        before = asyncio.create_task(_timed(report, "before_s", dataflow.collect, config, direct=False))
    if VENUE in alive:
        quiesce = await _timed(
            report, "quiesce_s", quiesce_venue, config, COLLECTOR in alive, _timeout(config, plan, COLLECTOR)
        )
        log.info("venue quiesced", **quiesce)
    if before is not None:
        report.before = await before
    audit.append(
        AuditEvent.SHUTDOWN_START,
        actor=plan.actor,
        args={"drain": plan.drain, "timeout_s": plan.timeout_s, "reason": plan.reason},
        result={"running": sorted(alive), "counts": _brief(report.before)},
    )

    order = list(reversed(units))
    if plan.drain:
        # Producers first (the engine writes exec/ops events, the collector market data), then the recorder
        # drains what they wrote; stable sort: the rest keep reverse order.
        order.sort(key=lambda u: 0 if u.name in (ENGINE, COLLECTOR) else 1)
    measured_after = False
    for unit in order:
        if unit.name in (VENUE, REDIS) and not measured_after and redis_up:
            await _measure_after(config, report)
            measured_after = True
        await _stop_step(unit, config, audit, plan, report, redis_up and unit.name != REDIS)
        if on_step is not None:
            maybe = on_step(unit.name)
            if maybe is not None:
                await maybe
        if plan.drain and unit.name == COLLECTOR:
            if RECORDER in alive and redis_up:
                report.drained = await wait_drained(config, plan.drain_timeout_s)
            else:
                report.drained = {"drained": False, "reason": "the recorder is not running; nothing drains"}
    if not measured_after and redis_up:
        await _measure_after(config, report)
    report.duration_s = round(time.monotonic() - t0, 3)
    audit.append(
        AuditEvent.SHUTDOWN_COMPLETE,
        actor=plan.actor,
        args={"drain": plan.drain, "reason": plan.reason},
        result={
            "exit_code": report.exit_code,
            "forced": report.forced,
            "ledger": verdicts.ledger_verdict(report.ledger_after),
            "drained": report.drained,
            "duration_s": report.duration_s,
            "counts": _brief(report.after),
        },
    )
    snapshot = build_snapshot(
        f"shutdown ({plan.reason})",
        processes=processes,
        flow=report.after or report.before,
        ledger=report.ledger_after or None,
    )
    path = save_snapshot(DataPaths(config.data_dir), snapshot)
    report.snapshot = str(path)
    audit.append(AuditEvent.STATE_SNAPSHOT, actor=plan.actor, args={"reason": plan.reason}, result={"path": str(path)})
    return report


async def _timed(report: ShutdownReport, key: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`fn` in a thread; its duration goes to report.timings[key]."""
    t0 = time.monotonic()
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    finally:
        report.timings[key] = round(time.monotonic() - t0, 3)


async def _measure_after(config: Config, report: ShutdownReport) -> None:
    # The recorder is stopped by now (and nothing starts it during a stop): the store may be read directly.
    t0 = time.monotonic()
    report.after = await asyncio.to_thread(dataflow.collect_final, config)
    report.ledger_after = report.after.pop("ledger", {})
    report.timings["after_s"] = round(time.monotonic() - t0, 3)


async def _stop_step(
    unit: Stoppable,
    config: Config,
    audit: AuditLog,
    plan: ShutdownPlan,
    report: ShutdownReport,
    measure: bool,
) -> None:
    in_flight = await asyncio.to_thread(inflight_counts, config) if measure and unit.alive else {}
    timeout = _timeout(config, plan, unit.name)
    result = await unit.stop(timeout)
    step = {**result.as_dict(), "timeout_s": timeout, "in_flight": in_flight}
    report.steps.append(step)
    if result.was_running:
        audit.append(
            component_stop_event(unit.name),
            actor=plan.actor,
            args={"timeout_s": timeout},
            result={k: step[k] for k in ("pid", "exit_code", "forced", "duration_s", "in_flight")},
        )
    if result.forced:
        audit.append(
            AuditEvent.FORCED_KILL,
            actor=plan.actor,
            args={"component": unit.name, "pid": result.pid, "timeout_s": timeout},
            result={"signal": "SIGKILL", "after_s": result.duration_s},
        )
        log.warning("forced kill", component=unit.name, pid=result.pid, timeout_s=timeout)


def _timeout(config: Config, plan: ShutdownPlan, name: str) -> float:
    return plan.timeout_s if plan.timeout_s is not None else config.component(name).stop_timeout_s


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _brief(flow: dict[str, Any]) -> dict[str, Any]:
    if not flow:
        return {}
    return {
        "totals": flow.get("totals"),
        "tables": flow.get("tables"),
        "wal": flow.get("wal"),
        "dlq": flow.get("dlq"),
    }
