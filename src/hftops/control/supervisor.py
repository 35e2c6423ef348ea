"""The supervisor: starts components in dependency order (each as soon as what it needs is ready), watches
them (exit, heartbeat), restarts crashed ones with backoff and a start limit, stops them in order, and
answers status."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog

from hftops.config.paths import DataPaths
from hftops.config.schema import Config
from hftops.control import dataflow, latch
from hftops.control.audit import AuditEvent, AuditLog
from hftops.control.backoff import RestartPolicy
from hftops.control.pidfiles import PidFiles
from hftops.control.procinfo import available_cpus, process_facts
from hftops.control.registry import Registry
from hftops.control.runner import RunState, StartFailed, StopResult
from hftops.control.shutdown import ShutdownReport, ordered_shutdown
from hftops.control.shutdown_plan import ShutdownPlan
from hftops.control.status import assemble
from hftops.model.components import API, COMPONENT_NAMES, REDIS, needs_of

log = structlog.get_logger("supervisor")

_WATCHDOG_TICK_S = 0.25
_FLOW_TTL_S = 1.0
_LEDGER_TTL_S = 10.0


class Runner(Protocol):
    name: str
    state: RunState
    detail: str
    restarts: int
    pid: int | None

    @property
    def alive(self) -> bool: ...

    async def start(self, ready_timeout_s: float) -> None: ...

    async def stop(self, timeout_s: float, *, controlled: bool = True) -> StopResult: ...

    async def kill(self) -> StopResult: ...

    def heartbeat_age(self, now: float) -> float | None: ...

    def info(self, now: float, heartbeat_timeout_s: float) -> dict[str, Any]: ...

    def close(self) -> None: ...


class Supervisor:
    def __init__(
        self,
        config: Config,
        registry: Registry,
        runners: dict[str, Runner],
        audit: AuditLog,
        pidfiles: PidFiles,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.paths = DataPaths(config.data_dir)
        self.registry = registry
        self.runners = runners  # start order
        self.audit = audit
        self.pidfiles = pidfiles
        self.clock = clock
        self.sleep = sleep
        self.policies: dict[str, RestartPolicy] = {}
        self.phase = "idle"
        self.halted = False
        self.started_wall = time.time()
        self._op_lock = asyncio.Lock()
        self._shutdown_lock = asyncio.Lock()
        self._restart_tasks: dict[str, asyncio.Task[None]] = {}
        self._hung: set[str] = set()
        self._hung_tasks: dict[str, asyncio.Task[None]] = {}
        self._watchdog_task: asyncio.Task[None] | None = None
        self._flow_cache: tuple[float, dict[str, Any]] | None = None
        self._ledger_cache: tuple[float, dict[str, Any]] | None = None
        self._tables_prev: tuple[float, dict[str, Any]] | None = None
        self.exit_requested = asyncio.Event()
        self.final_report: ShutdownReport | None = None

    # -- start ---------------------------------------------------------------------------------------
    def check_affinity(self) -> None:
        cpus = available_cpus()
        for name in self.runners:
            wanted = set(self.config.component(name).cpu_affinity)
            if wanted - cpus:
                raise StartFailed(
                    name,
                    f"supervisor.components.{name}.cpu_affinity {sorted(wanted)} names "
                    f"CPUs this machine does not offer; available: {sorted(cpus)}",
                )

    async def start_pipeline(self, actor: str) -> dict[str, Any]:
        """Start every component that is not running, each as soon as what it needs is ready (NEEDS in
        hftops.model.components); on failure start nothing more, let starts under way finish, and stop what
        was started, newest first."""
        async with self._op_lock:
            self.phase = "starting"
            self.halted = False
            latch.clear_restart_block(self.paths)
            self.policies.clear()  # an explicit start forgives earlier failures
            started: list[str] = []
            try:
                self.check_affinity()
                await self._start_concurrently(started)
            except StartFailed as exc:
                log.error("start failed", component=exc.component, reason=exc.reason)
                for name in reversed(started):
                    await self.runners[name].stop(self.config.component(name).stop_timeout_s)
                self.phase = "failed"
                result = {"ok": False, "failed": exc.component, "reason": exc.reason, "rolled_back": started}
                self.audit.append(AuditEvent.START_FAILED, actor=actor, result=result)
                return result
            self.phase = "running"
            self._ensure_watchdog()
            pids = {n: r.pid for n, r in self.runners.items()}
            self.audit.append(
                AuditEvent.START,
                actor=actor,
                args={"components": list(self.runners)},
                result={"ok": True, "pids": pids, "started": started},
            )
            return {"ok": True, "started": started, "pids": pids}

    async def _start_concurrently(self, started: list[str]) -> None:
        """One task per component: wait for its needs, then start it. The first failure cancels the tasks
        still waiting (a start under way is never cancelled: it would leave a process behind) and is raised
        once the others have finished; `started` lists what was started, in the order it became ready."""
        names = tuple(self.runners)
        ready = {name: asyncio.Event() for name in names}
        launching: set[str] = set()
        failures: list[BaseException] = []
        tasks: dict[str, asyncio.Task[None]] = {}
        timeout = self.config.supervisor.ready_timeout_s

        async def start_one(name: str) -> None:
            for need in needs_of(name, names):
                await ready[need].wait()
            if failures:
                return  # another component failed while this one waited: start nothing more
            if self.halted:
                raise StartFailed(name, "emergency stop during start")
            runner = self.runners[name]
            self._cancel_restart(name)
            if not runner.alive:
                launching.add(name)
                try:
                    await runner.start(timeout)
                except StartFailed:
                    raise
                except Exception as exc:  # a bug or an OS error: still named, rolled back and audited
                    raise StartFailed(name, f"{type(exc).__name__}: {exc}") from exc
                finally:
                    launching.discard(name)
                started.append(name)
                log.info("component ready", component=name, pid=runner.pid)
            ready[name].set()

        def ended(task: asyncio.Task[None]) -> None:
            if task.cancelled() or task.exception() is None:
                return
            failures.append(task.exception())  # type: ignore[arg-type]
            for name, other in tasks.items():  # nothing new starts after a failure
                if name not in launching and not other.done():
                    other.cancel()

        for name in names:
            tasks[name] = asyncio.create_task(start_one(name), name=f"start-{name}")
            tasks[name].add_done_callback(ended)
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        if failures:
            first = next((f for f in failures if isinstance(f, StartFailed)), failures[0])
            raise first

    # -- stop ----------------------------------------------------------------------------------------
    async def stop(self, plan: ShutdownPlan, *, include_api: bool) -> ShutdownReport:
        async with self._op_lock:
            self.phase = "stopping"
            for name in list(self._restart_tasks):
                self._cancel_restart(name)
            units = [r for n, r in self.runners.items() if include_api or n != API]
            report = await ordered_shutdown(units, self.config, self.audit, plan, process_facts=self.process_table)
            for runner in units:
                if runner.state in (RunState.FAILED, RunState.BACKOFF, RunState.EMERGENCY_STOPPED):
                    runner.state = RunState.STOPPED
            self.phase = "stopped"
            return report

    async def shutdown(self, plan: ShutdownPlan) -> ShutdownReport:
        """Full stop (API first, Redis last) and then the supervisor exits."""
        async with self._shutdown_lock:  # a signal during a `trading stop` must not stop twice
            if self.final_report is None:
                self.final_report = await self.stop(plan, include_api=True)
            return self.final_report

    async def restart_pipeline(self, actor: str) -> dict[str, Any]:
        report = await self.stop(ShutdownPlan(actor=actor, reason="restart"), include_api=False)
        started = await self.start_pipeline(actor)
        return {"stop": {"exit_code": report.exit_code, "forced": report.forced}, "start": started}

    async def emergency_stop(self, actor: str, reason: str = "manual_operator") -> dict[str, Any]:
        """HALT latch first, then SIGKILL every pipeline process at once; Redis and the API stay up."""
        t0 = time.monotonic()
        self.halted = True
        latch_data = latch.write_halt_latch(self.paths, actor, reason)
        latch.block_restarts(self.paths, actor, "emergency-stop")
        for name in list(self._restart_tasks):
            self._cancel_restart(name)
        victims = [r for n, r in self.runners.items() if n not in (REDIS, API)]
        results = await asyncio.gather(*(r.kill() for r in victims))
        for runner in victims:
            runner.state, runner.detail = (
                RunState.EMERGENCY_STOPPED,
                "emergency stop; `trading start` resumes",
            )
        self.phase = "halted"
        killed = {r.component: r.pid for r in results if r.was_running}
        result = {"killed": killed, "latch": latch_data, "duration_s": round(time.monotonic() - t0, 3)}
        self.audit.append(AuditEvent.EMERGENCY_STOP, actor=actor, args={"reason": reason}, result=result)
        log.warning("emergency stop", **result)
        return result

    # -- watchdog ------------------------------------------------------------------------------------
    def _ensure_watchdog(self) -> None:
        if self._watchdog_task is None or self._watchdog_task.done():
            self._watchdog_task = asyncio.create_task(self._watchdog(), name="watchdog")

    async def _watchdog(self) -> None:
        timeout = self.config.supervisor.heartbeat_timeout_s
        while True:
            await asyncio.sleep(_WATCHDOG_TICK_S)  # cadence only; decisions use the injected clock
            now = self.clock()
            for name, runner in self.runners.items():
                age = runner.heartbeat_age(now)
                if age is not None and age > timeout and name not in self._hung and self.phase == "running":
                    self._hung.add(name)
                    self._hung_tasks[name] = asyncio.create_task(self._terminate_hung(runner, age))

    async def _terminate_hung(self, runner: Runner, age: float) -> None:
        try:
            log.error("heartbeat lost", component=runner.name, age_s=round(age, 2))
            self.audit.append(
                AuditEvent.HEARTBEAT_LOST,
                actor="supervisor",
                args={"component": runner.name, "pid": runner.pid},
                result={"heartbeat_age_s": round(age, 3)},
            )
            timeout = self.config.component(runner.name).stop_timeout_s
            result = await runner.stop(timeout, controlled=False)  # its exit then counts as a crash
            if result.forced:
                self.audit.append(
                    AuditEvent.FORCED_KILL,
                    actor="supervisor",
                    args={"component": runner.name, "pid": result.pid, "timeout_s": timeout},
                    result={"signal": "SIGKILL", "after_s": result.duration_s, "cause": "heartbeat lost"},
                )
        finally:
            self._hung.discard(runner.name)

    def on_crash(self, runner: Runner, exit_code: int, reason: str | None = None) -> None:
        """Called when a running component exits on its own (or failed a restart)."""
        why = reason or f"exited with code {exit_code}"
        self.audit.append(
            AuditEvent.CRASH,
            actor="supervisor",
            args={"component": runner.name},
            result={"exit_code": exit_code, "reason": why},
        )
        if self.phase not in ("running", "starting") or self.halted or latch.restarts_blocked(self.paths):
            runner.state, runner.detail = RunState.FAILED, f"{why}; not restarted (platform {self.phase})"
            return
        decision = self._policy(runner.name).record_failure(self.clock())
        if decision.exhausted:
            runner.state = RunState.FAILED
            runner.detail = "failed (backoff exhausted)"
            interval = self.config.supervisor.start_limit_interval_s
            log.error("backoff exhausted", component=runner.name, failures=decision.failures_in_window)
            self.audit.append(
                AuditEvent.BACKOFF_EXHAUSTED,
                actor="supervisor",
                args={"component": runner.name},
                result={"failures": decision.failures_in_window, "interval_s": interval, "last": why},
            )
            return
        runner.state = RunState.BACKOFF
        runner.detail = f"{why}; restart in {decision.delay_s:g}s"
        log.warning("component crashed", component=runner.name, reason=why, restart_in_s=decision.delay_s)
        self._restart_tasks[runner.name] = asyncio.create_task(
            self._restart_after(runner, decision.delay_s, decision.failures_in_window, why)
        )

    async def _restart_after(self, runner: Runner, delay_s: float, attempt: int, why: str) -> None:
        await self.sleep(delay_s)
        if self.phase not in ("running", "starting") or self.halted or latch.restarts_blocked(self.paths):
            return
        self._restart_tasks.pop(runner.name, None)
        runner.restarts += 1
        self.audit.append(
            AuditEvent.RESTART,
            actor="supervisor",
            args={"component": runner.name},
            result={"attempt": attempt, "delay_s": delay_s, "after": why},
        )
        try:
            await runner.start(self.config.supervisor.ready_timeout_s)
            log.info("component restarted", component=runner.name, pid=runner.pid)
        except StartFailed as exc:
            self.on_crash(runner, -1, f"restart failed: {exc.reason}")

    def _policy(self, name: str) -> RestartPolicy:
        if name not in self.policies:
            sup = self.config.supervisor
            self.policies[name] = RestartPolicy(
                sup.backoff_initial_s, sup.backoff_max_s, sup.start_limit_burst, sup.start_limit_interval_s
            )
        return self.policies[name]

    def _cancel_restart(self, name: str) -> None:
        task = self._restart_tasks.pop(name, None)
        if task is not None:
            task.cancel()

    # -- status --------------------------------------------------------------------------------------
    def components_status(self) -> dict[str, Any]:
        now = self.clock()
        out: dict[str, Any] = {}
        for name in COMPONENT_NAMES:
            runner = self.runners.get(name)
            if runner is None:
                reason = self.registry.skipped.get(name, "not configured")
                out[name] = {
                    "state": str(RunState.DISABLED),
                    "detail": reason,
                    "pid": None,
                    "uptime_s": None,
                    "rss_bytes": None,
                    "cpu_affinity": None,
                    "scheduling": None,
                    "restarts": 0,
                    "watchdog": "n/a",
                }
                continue
            info = runner.info(now, self.config.supervisor.heartbeat_timeout_s)
            facts = process_facts(info["pid"]) if info["pid"] else {}
            if name == API and info["pid"] and getattr(runner, "started_at", None) is not None:
                facts["uptime_s"] = round(now - runner.started_at, 3)  # type: ignore[attr-defined]
            out[name] = {
                **info,
                "uptime_s": facts.get("uptime_s"),
                "rss_bytes": facts.get("rss_bytes"),
                "cpu_affinity": facts.get("cpu_affinity"),
                "scheduling": facts.get("scheduling"),
                "configured_affinity": list(self.config.component(name).cpu_affinity) or None,
            }
        return out

    def process_table(self) -> dict[str, Any]:
        from hftops.control.snapshot import process_table

        pids = {n: r.pid for n, r in self.runners.items() if r.alive}
        pids["supervisor"] = os.getpid()
        return process_table(pids)

    def supervisor_info(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "phase": self.phase,
            "halted": self.halted,
            "uptime_s": round(time.time() - self.started_wall, 3),
            "restarts_blocked": latch.restarts_blocked(self.paths),
            "latch": latch.read_latch(self.paths),
        }

    async def dataflow(self, with_ledger: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
        now = time.monotonic()
        if self._flow_cache is None or now - self._flow_cache[0] > _FLOW_TTL_S:
            flow = await asyncio.to_thread(dataflow.collect, self.config, direct=False)
            self._add_rates(now, flow)
            self._flow_cache = (now, flow)
        ledger: dict[str, Any] = {"available": False, "reason": "not computed"}
        if with_ledger:
            if self._ledger_cache is None or now - self._ledger_cache[0] > _LEDGER_TTL_S:
                self._ledger_cache = (
                    now,
                    await asyncio.to_thread(dataflow.ledger, self.config, direct=False),
                )
            ledger = self._ledger_cache[1]
        return self._flow_cache[1], ledger

    def _add_rates(self, now: float, flow: dict[str, Any]) -> None:
        tables = flow.get("tables") or {}
        if "error" in tables:
            return
        if self._tables_prev is not None:
            then, prev = self._tables_prev
            dt = max(now - then, 1e-6)
            for name, info in tables.items():
                if name in prev:
                    info["ingest_rows_per_s"] = round((info["rows"] - prev[name]["rows"]) / dt, 1)
        self._tables_prev = (now, {k: dict(v) for k, v in tables.items()})

    async def status(self, with_ledger: bool = True) -> dict[str, Any]:
        components = self.components_status()
        flow, ledger = await self.dataflow(with_ledger)
        return assemble(self.supervisor_info(), components, flow, ledger, config=self.config)

    # -- teardown ------------------------------------------------------------------------------------
    async def close(self) -> None:
        if self._watchdog_task is not None:
            self._watchdog_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog_task
        for name in list(self._restart_tasks):
            self._cancel_restart(name)
        for runner in self.runners.values():
            runner.close()
