"""What the `trading` control commands do, with or without a live supervisor (then through PID files)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from hftops.config.paths import DataPaths
from hftops.config.schema import Config
from hftops.control import latch
from hftops.control.audit import AuditEvent, AuditLog
from hftops.control.backup import backup_config
from hftops.control.client import SupervisorClient, SupervisorUnavailable
from hftops.control.emergency import emergency_stop_through_supervisor
from hftops.control.pidfiles import SUPERVISOR, PidFiles, PidRecord, is_same_process, signal_process, sweep
from hftops.control.registry import build_registry
from hftops.control.runner import StopResult
from hftops.control.shutdown_plan import ShutdownPlan
from hftops.model.components import API, REDIS


@dataclass
class Outcome:
    code: int
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def _paths(config: Config) -> DataPaths:
    return DataPaths(config.data_dir).ensure()


def cli_logging(config: Config) -> None:
    """What the CLI itself logs (a stop through PID files) goes to <data>/log/cli.log, never to stdout."""
    from hftops.logs import configure_logging

    configure_logging("cli", DataPaths(config.data_dir).log, config.log.level, config.log.max_bytes, config.log.backups)


def current_status(config: Config, *, with_ledger: bool = True) -> dict[str, Any]:
    client = SupervisorClient(_paths(config))
    if client.running():
        with contextlib.suppress(SupervisorUnavailable):
            return client.status(with_ledger=with_ledger)
    from hftops.control.status import offline_status

    return offline_status(config, with_ledger=with_ledger)


def running_pids(status: dict[str, Any]) -> dict[str, int]:
    pids = {n: c["pid"] for n, c in status["components"].items() if c.get("pid") and n != API}
    if status.get("supervisor", {}).get("pid"):
        pids[SUPERVISOR] = status["supervisor"]["pid"]
    return pids


# -- start ------------------------------------------------------------------------------------------------


def start_platform(config: Config, operator: str) -> Outcome:
    paths = _paths(config)
    client = SupervisorClient(paths)
    pidfiles = PidFiles(paths.run)
    audit = AuditLog(paths.audit)
    if client.running():
        return _start_through_supervisor(client, config, operator)
    names = [s.name for s in build_registry(config) if s.is_process]
    live, stale = sweep(pidfiles, [*names, SUPERVISOR])
    for record in stale:
        audit.append(
            AuditEvent.STALE_PID_FILE,
            actor=operator,
            args={"component": record.component, "pid": record.pid},
            result={"removed": True, "reason": "the PID is gone or belongs to another process"},
        )
    if live:
        pids = {n: r.pid for n, r in live.items()}
        return Outcome(
            1,
            f"refusing to start: components are running without a supervisor (pids {pids}); run `trading stop` first",
            {"pids": pids},
        )
    backup = backup_config(config)
    timeout = config.supervisor.ready_timeout_s * (len(names) + 1) + 10
    from hftops.control.daemon import launch

    result = launch(config, operator, timeout)
    if result.ok:
        return Outcome(
            0,
            f"platform ready (supervisor pid {result.pid}); config backup {backup}",
            {"supervisor_pid": result.pid},
        )
    return Outcome(
        1,
        f"start failed: {result.component}: {result.reason}",
        {"component": result.component, "reason": result.reason},
    )


def _start_through_supervisor(client: SupervisorClient, config: Config, operator: str) -> Outcome:
    try:
        status = client.status(with_ledger=False)
    except SupervisorUnavailable as exc:
        return Outcome(
            1,
            f"refusing to start: a supervisor holds the lock but does not answer ({exc}); `trading stop` stops it",
        )
    pids = running_pids(status)
    waiting = [n for n, c in status["components"].items() if c["state"] not in ("running", "disabled")]
    if not waiting:
        return Outcome(1, f"refusing to start: already running (pids {pids})", {"pids": pids})
    timeout = config.supervisor.ready_timeout_s * (len(waiting) + 1) + 10
    code, body = client.request("POST", "/api/pipeline/start", json={"operator": operator}, timeout_s=timeout)
    if code == 200 and body.get("ok"):
        return Outcome(0, f"started {body.get('started')} in the running supervisor", body)
    if code == 409:
        return Outcome(1, f"refusing to start: already running (pids {body.get('pids')})", body)
    return Outcome(
        1,
        f"start failed: {body.get('failed')}: {body.get('reason')}",
        {"component": body.get("failed"), "reason": body.get("reason")},
    )


# -- stop -------------------------------------------------------------------------------------------------


class PidUnit:
    """A component known only by its PID file (the supervisor is gone): SIGTERM, wait, SIGKILL."""

    def __init__(self, name: str, pidfiles: PidFiles) -> None:
        self.name = name
        self.pidfiles = pidfiles
        self.record: PidRecord | None = pidfiles.live(name)

    @property
    def alive(self) -> bool:
        return self.record is not None and is_same_process(self.record)

    async def stop(self, timeout_s: float, *, controlled: bool = True) -> StopResult:
        return await asyncio.to_thread(self._stop, timeout_s)

    def _stop(self, timeout_s: float) -> StopResult:
        record = self.record
        if record is None or not signal_process(record, signal.SIGTERM):
            return StopResult(self.name, record.pid if record else None, False, None, False, 0.0)
        t0 = time.monotonic()
        forced = not _wait_gone(record, timeout_s)
        if forced:
            signal_process(record, signal.SIGKILL)
            _wait_gone(record, 5.0)
        self.pidfiles.remove(self.name, pid=record.pid)
        return StopResult(self.name, record.pid, True, None, forced, round(time.monotonic() - t0, 3))


def _wait_gone(record: PidRecord, timeout_s: float) -> bool:
    """Not our child, so no waitpid: poll until the PID no longer names that process (a zombie that
    init has not reaped yet counts as gone)."""
    deadline = time.monotonic() + timeout_s
    while is_same_process(record):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def stop_platform(config: Config, plan: ShutdownPlan) -> Outcome:
    paths = _paths(config)
    client = SupervisorClient(paths)
    if client.running():
        answered = client.shutdown(plan, _stop_budget(config, plan))
        if answered is not None:
            return Outcome(answered["exit_code"], "", answered)
        _stop_unresponsive_supervisor(paths, config)
    from hftops.control.shutdown import ordered_shutdown
    from hftops.control.snapshot import process_table

    cli_logging(config)
    registry = build_registry(config)
    pidfiles = PidFiles(paths.run)
    units = [PidUnit(s.name, pidfiles) for s in registry if s.is_process]
    if not any(u.alive for u in units):
        return Outcome(0, "nothing is running", {"exit_code": 0, "steps": [], "nothing_running": True})

    def facts() -> dict[str, Any]:
        return process_table({u.name: u.record.pid for u in units if u.record})

    report = asyncio.run(ordered_shutdown(units, config, AuditLog(paths.audit), plan, process_facts=facts))
    return Outcome(report.exit_code, "stopped through PID files (no supervisor)", report.to_dict())


def _stop_budget(config: Config, plan: ShutdownPlan) -> float:
    """How long a stop may take before the supervisor counts as unresponsive."""
    steps = build_registry(config).names()
    per_step = sum(plan.timeout_s or config.component(n).stop_timeout_s for n in steps)
    return per_step + (plan.drain_timeout_s if plan.drain else 0.0) + 60.0


def _stop_unresponsive_supervisor(paths: DataPaths, config: Config) -> None:
    """A supervisor that holds the lock but does not answer: SIGTERM (it stops in order), then SIGKILL."""
    record = PidFiles(paths.run).live(SUPERVISOR)
    if record is None:
        return
    budget = sum(config.component(n).stop_timeout_s for n in build_registry(config).names()) + 10
    if signal_process(record, signal.SIGTERM) and not _wait_gone(record, budget):
        signal_process(record, signal.SIGKILL)
        _wait_gone(record, 5.0)


# -- emergency stop ---------------------------------------------------------------------------------------


def emergency_stop(config: Config, operator: str, reason: str = "manual_operator") -> Outcome:
    """The HALT latch is on disk before anything is killed, whatever happens next."""
    paths = _paths(config)
    answer = emergency_stop_through_supervisor(paths, operator, reason)
    if answer is not None:
        return Outcome(0, "", answer)
    t0 = time.monotonic()
    pidfiles = PidFiles(paths.run)
    targets = [
        r
        for r in (pidfiles.live(s.name) for s in build_registry(config) if s.is_process and s.name != REDIS)
        if r is not None
    ]
    killed = {r.component: r.pid for r in targets if signal_process(r, signal.SIGKILL)}
    for record in targets:
        _wait_gone(record, 1.0)
        pidfiles.remove(record.component, pid=record.pid)
    result = {
        "killed": killed,
        "latch": latch.read_latch(paths),
        "duration_s": round(time.monotonic() - t0, 3),
        "via": "pid files",
    }
    AuditLog(paths.audit).append(AuditEvent.EMERGENCY_STOP, actor=operator, args={"reason": reason}, result=result)
    return Outcome(0, "", result)


# -- snapshot ---------------------------------------------------------------------------------------------


def snapshot(config: Config, operator: str, reason: str = "manual") -> Outcome:
    from hftops.control.snapshot import build_snapshot, process_table, save_snapshot

    paths = _paths(config)
    status = current_status(config)
    pids: dict[str, int | None] = {n: c["pid"] for n, c in status["components"].items() if c.get("pid")}
    if status["supervisor"].get("pid"):
        pids[SUPERVISOR] = status["supervisor"]["pid"]
    snap = build_snapshot(reason, processes=process_table(pids), flow=status, ledger=status.get("ledger"))
    snap["health"] = status.get("health")
    path = save_snapshot(paths, snap)
    AuditLog(paths.audit).append(
        AuditEvent.STATE_SNAPSHOT, actor=operator, args={"reason": reason}, result={"path": str(path)}
    )
    return Outcome(0, str(path), snap)
