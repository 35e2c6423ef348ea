"""The supervisor process: composition root (`build_supervisor`) and its run loop (daemon or foreground)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from hftops.config.paths import DataPaths
from hftops.config.schema import Config
from hftops.control.audit import AuditLog
from hftops.control.dataflow import warm_store_reader
from hftops.control.httpserver import ApiRunner, ServedApp, unix_socket
from hftops.control.instance_lock import CONTROL_SOCKET, InstanceLock
from hftops.control.pidfiles import SUPERVISOR, PidFiles
from hftops.control.registry import build_registry
from hftops.control.runner import ProcessRunner
from hftops.control.shutdown import ShutdownReport
from hftops.control.shutdown_plan import ShutdownPlan
from hftops.control.supervisor import Runner, Supervisor
from hftops.logs import configure_logging

EXIT_START_FAILED = 1


def control_socket_path(paths: DataPaths) -> Any:
    return paths.run / CONTROL_SOCKET


def build_supervisor(
    config: Config,
    *,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Supervisor:
    """Construct every object of the supervisor process and wire them; starts nothing."""
    paths = DataPaths(config.data_dir).ensure()
    registry = build_registry(config, environ)
    pidfiles = PidFiles(paths.run)
    audit = AuditLog(paths.audit)
    runners: dict[str, Runner] = {}
    sup = Supervisor(config, registry, runners, audit, pidfiles, clock=clock, sleep=sleep)

    def api_app() -> Any:
        from hftops.api.app import create_app  # the composition root is the one place control meets api

        return create_app(sup, token=config.api.token)

    for spec in registry:
        if spec.is_process:
            runners[spec.name] = ProcessRunner(spec, config, pidfiles, clock=clock, on_crash=sup.on_crash)
        else:
            runners[spec.name] = ApiRunner(spec, config.api.host, config.api.port, api_app)
    return sup


class SupervisorHooks:
    """How the run loop reports to whoever started it (the daemon's parent via notify, or the terminal)."""

    def ready(self, sup: Supervisor) -> None: ...

    def failed(self, component: str, reason: str) -> None: ...

    async def watch(self, sup: Supervisor) -> None:
        """Runs while the platform is up (the foreground live view); returning does not stop anything."""

    def stopped(self, report: ShutdownReport | None) -> None: ...


async def run_supervisor(config: Config, *, operator: str, hooks: SupervisorHooks, foreground: bool = False) -> int:
    paths = DataPaths(config.data_dir).ensure()
    log = configure_logging("supervisor", paths.log, config.log.level, config.log.max_bytes, config.log.backups)
    if foreground:  # the live view owns the terminal; logs go to the file (`trading logs -f`)
        root = logging.getLogger()
        for handler in list(root.handlers):
            if type(handler) is logging.StreamHandler:
                root.removeHandler(handler)
    lock = InstanceLock(paths.run)
    pidfiles = PidFiles(paths.run)
    if not lock.acquire():
        running = pidfiles.live(SUPERVISOR)
        hooks.failed(SUPERVISOR, f"another supervisor is running (pid {running.pid if running else '?'})")
        return EXIT_START_FAILED
    pidfiles.write(SUPERVISOR, os.getpid())
    warm_store_reader(config)
    sup = build_supervisor(config)
    local: ServedApp | None = None
    try:
        from hftops.api.app import create_app

        try:
            sock = unix_socket(paths.run / CONTROL_SOCKET)
        except OSError as exc:
            hooks.failed(SUPERVISOR, f"cannot open the control socket: {exc}")
            return EXIT_START_FAILED
        local = ServedApp(create_app(sup, token=None, local=True), sock)
        await local.start()
        return await _serve(sup, operator, hooks, log)
    finally:
        if local is not None:
            await local.stop(5.0)
            with contextlib.suppress(FileNotFoundError):  # nobody answers on it any more
                (paths.run / CONTROL_SOCKET).unlink()
        await sup.close()
        pidfiles.remove(SUPERVISOR, pid=os.getpid())
        lock.release()


async def _serve(sup: Supervisor, operator: str, hooks: SupervisorHooks, log: Any) -> int:
    loop = asyncio.get_running_loop()
    signalled: asyncio.Event = asyncio.Event()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        signalled.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, on_signal, sig)
    start = asyncio.create_task(sup.start_pipeline(operator))
    await asyncio.wait({start, asyncio.create_task(signalled.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if not start.done():
        start.cancel()  # a signal during start: stop whatever is already up, in order
        with contextlib.suppress(asyncio.CancelledError):
            await start
        report = await sup.shutdown(ShutdownPlan(actor=operator, reason=f"signal {received[0]} during start"))
        hooks.stopped(report)
        return report.exit_code or EXIT_START_FAILED
    result = start.result()
    if not result["ok"]:
        hooks.failed(result["failed"], result["reason"])
        await sup.shutdown(ShutdownPlan(actor=operator, reason="start failed"))
        return EXIT_START_FAILED
    log.info("platform ready", pids=result["pids"])
    hooks.ready(sup)
    watcher = asyncio.create_task(hooks.watch(sup))
    await asyncio.wait(
        {asyncio.create_task(sup.exit_requested.wait()), asyncio.create_task(signalled.wait())},
        return_when=asyncio.FIRST_COMPLETED,
    )
    if received and sup.final_report is None:
        log.info("stopping on signal", signal=received[0])
    # Returns the report of a stop already done through the control socket, or stops now.
    report = await sup.shutdown(ShutdownPlan(actor=operator, reason=f"signal {received[0] if received else '?'}"))
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await watcher
    hooks.stopped(report)
    return report.exit_code
