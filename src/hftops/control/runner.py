"""One supervised child process: spawn with affinity and its own notify socket, readiness, heartbeats,
and the controlled stop (SIGTERM, wait, SIGKILL)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from hftops.config.paths import DataPaths
from hftops.config.schema import Config
from hftops.control.notify import NotifySocket
from hftops.control.pidfiles import PidFiles
from hftops.control.registry import ComponentSpec, Readiness
from hftops.control.sched import set_autogroup_nice, set_realtime

_REDIS_PROBE_S = 0.05
_REDIS_HEARTBEAT_S = 1.0


class RunState(StrEnum):
    """What the supervisor knows about a component (status `state`)."""

    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    BACKOFF = "backoff"  # crashed; a restart is scheduled
    FAILED = "failed"  # start failed, or backoff exhausted: left stopped until an explicit start
    EMERGENCY_STOPPED = "emergency_stopped"
    DISABLED = "disabled"


@dataclass(frozen=True)
class StopResult:
    component: str
    pid: int | None
    was_running: bool
    exit_code: int | None
    forced: bool
    duration_s: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class StartFailed(Exception):
    def __init__(self, component: str, reason: str) -> None:
        self.component = component
        self.reason = reason
        super().__init__(f"{component}: {reason}")


def child_env(config: Config, notify_address: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    if env.get("HFT_CONFIG"):
        env["HFT_CONFIG"] = str(Path(env["HFT_CONFIG"]).resolve())
    env["HFT_DATA_DIR"] = str(config.data_dir)  # children must not resolve ./var against another cwd
    env["PYTHONUNBUFFERED"] = "1"
    if notify_address:
        env["NOTIFY_SOCKET"] = notify_address
    return env


def rotate_out_file(path: Path, max_bytes: int) -> None:
    """Child stdout/stderr files are bounded too: one generation is kept."""
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size > max_bytes:
            os.replace(path, path.with_name(path.name + ".1"))


def kill_group(pid: int) -> None:
    """SIGKILL the child's whole session (it was started with its own), so no grandchild survives."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
            return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class ProcessRunner:
    def __init__(
        self,
        spec: ComponentSpec,
        config: Config,
        pidfiles: PidFiles,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_crash: Callable[[ProcessRunner, int], None] | None = None,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.config = config
        self.paths = DataPaths(config.data_dir)
        self.pidfiles = pidfiles
        self.clock = clock
        self.on_crash = on_crash
        self.state = RunState.STOPPED
        self.detail = ""
        self.restarts = 0
        self.pid: int | None = None
        self.exit_code: int | None = None
        self.started_at: float | None = None  # monotonic
        self.last_heartbeat: float | None = None
        self.status_text = ""
        self._proc: asyncio.subprocess.Process | None = None
        self._exit_task: asyncio.Task[int] | None = None
        self._ready = asyncio.Event()
        self._start_lock = asyncio.Lock()
        self._controlled = True
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._notify = NotifySocket(pidfiles.dir, spec.name) if spec.readiness is Readiness.NOTIFY else None

    # -- notify protocol ---------------------------------------------------------------------------
    def _on_notify(self, fields: dict[str, str]) -> None:
        if fields.get("READY") == "1":
            self._ready.set()
            self.last_heartbeat = self.clock()
        if fields.get("WATCHDOG") == "1":
            self.last_heartbeat = self.clock()
        if "STATUS" in fields:
            self.status_text = fields["STATUS"][:200]

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self, ready_timeout_s: float) -> None:
        """Spawn and wait until ready; raises StartFailed naming the reason (the child is then gone).
        Concurrent calls (a watchdog restart and an operator start) run one after the other."""
        async with self._start_lock:
            if self.alive:
                return
            await self._start(ready_timeout_s)

    async def _start(self, ready_timeout_s: float) -> None:
        orphan = self.pidfiles.live(self.name)
        if orphan is not None:
            raise StartFailed(
                self.name,
                f"already running as pid {orphan.pid} outside this supervisor; run `trading stop` first",
            )
        self.state, self.detail, self.exit_code = RunState.STARTING, "", None
        self._ready = asyncio.Event()
        self._controlled = False
        self.last_heartbeat = None
        notify_address = None
        if self._notify is not None:
            self._notify.open(self._on_notify)
            notify_address = self._notify.address
        out_path = self.paths.log / f"{self.name}.out"
        self.paths.log.mkdir(parents=True, exist_ok=True)
        rotate_out_file(out_path, self.config.log.max_bytes)
        try:
            with open(out_path, "ab") as out:
                self._proc = await asyncio.create_subprocess_exec(
                    *self.spec.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=child_env(self.config, notify_address),
                    start_new_session=True,
                )
        except OSError as exc:
            self.state, self.detail = RunState.FAILED, f"cannot execute {self.spec.argv[0]}: {exc.strerror}"
            raise StartFailed(self.name, self.detail) from exc
        self.pid = self._proc.pid
        self.started_at = self.clock()
        self._exit_task = asyncio.create_task(self._watch_exit(self._proc), name=f"exit-{self.name}")
        try:
            self._apply_scheduling(self._proc.pid)
            self.pidfiles.write(self.name, self._proc.pid, supervisor_pid=os.getpid())
            await self._await_ready(ready_timeout_s)
            self._apply_realtime(self._proc.pid)  # again: threads started before they could inherit it
        except (StartFailed, ProcessLookupError, OSError) as exc:
            await self.stop(min(self.config.component(self.name).stop_timeout_s, 5.0))
            self.state = RunState.FAILED
            self.detail = exc.reason if isinstance(exc, StartFailed) else str(exc)
            if isinstance(exc, StartFailed):
                raise
            raise StartFailed(self.name, self.detail) from exc
        self.state = RunState.RUNNING
        self.last_heartbeat = self.clock()
        if self.spec.readiness is Readiness.REDIS_PING:
            self._heartbeat_task = asyncio.create_task(self._redis_heartbeat(), name="redis-heartbeat")

    def _apply_scheduling(self, pid: int) -> None:
        """CPU affinity, niceness (of the process and of its session's autogroup) and a realtime priority,
        right after the spawn: the child has hardly a thread yet, and every thread it starts inherits them."""
        component = self.config.component(self.name)
        if component.nice:
            try:
                os.setpriority(os.PRIO_PROCESS, pid, component.nice)
            except OSError as exc:
                raise StartFailed(
                    self.name,
                    f"supervisor.components.{self.name}.nice {component.nice} cannot be applied: {exc.strerror}"
                    + (" (a negative niceness needs CAP_SYS_NICE)" if component.nice < 0 else ""),
                ) from exc
            try:
                set_autogroup_nice(pid, component.nice)
            except OSError as exc:
                raise StartFailed(
                    self.name,
                    f"supervisor.components.{self.name}.nice {component.nice} cannot be applied to its "
                    f"scheduling autogroup: {exc.strerror}",
                ) from exc
        cpus = component.cpu_affinity
        if cpus:
            try:
                os.sched_setaffinity(pid, set(cpus))
            except OSError as exc:
                raise StartFailed(
                    self.name,
                    f"supervisor.components.{self.name}.cpu_affinity {list(cpus)} cannot be applied: {exc.strerror}",
                ) from exc
        self._apply_realtime(pid)

    def _apply_realtime(self, pid: int) -> None:
        priority = self.config.component(self.name).realtime_priority
        if priority is None:
            return
        try:
            set_realtime(pid, priority)
        except PermissionError as exc:
            raise StartFailed(
                self.name,
                f"supervisor.components.{self.name}.realtime_priority {priority} cannot be applied: {exc.strerror} "
                f"(SCHED_FIFO needs CAP_SYS_NICE or an RLIMIT_RTPRIO of at least {priority}: `ulimit -r {priority}`, "
                "LimitRTPRIO= in systemd; or remove the key)",
            ) from exc

    async def _await_ready(self, timeout_s: float) -> None:
        assert self._exit_task is not None
        waiter = asyncio.create_task(self._ready_condition())
        done, _ = await asyncio.wait({waiter, self._exit_task}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        if waiter in done and waiter.exception() is None:
            return
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await waiter
        if self._exit_task in done:
            raise StartFailed(self.name, f"exited with code {self._exit_task.result()} before it was ready")
        what = "READY=1" if self.spec.readiness is Readiness.NOTIFY else "an answer to PING"
        raise StartFailed(
            self.name,
            f"not ready within {timeout_s:g}s (no {what}); see {self.paths.log / (self.name + '.out')}",
        )

    async def _ready_condition(self) -> None:
        if self.spec.readiness is Readiness.NOTIFY:
            await self._ready.wait()
            return
        import redis.asyncio as aioredis  # here: the CLI reads StopResult without needing a Redis client

        client = aioredis.Redis(
            host=self.config.redis.host,
            port=self.config.redis.port,
            socket_connect_timeout=0.5,
            socket_timeout=0.5,
        )
        try:
            while True:
                try:
                    if await client.ping():
                        info = await client.info("persistence")
                        if int(info.get("loading", 0)) == 0:
                            return
                except (aioredis.ConnectionError, aioredis.TimeoutError, aioredis.BusyLoadingError):
                    pass
                await asyncio.sleep(_REDIS_PROBE_S)
        finally:
            await client.aclose()

    async def _redis_heartbeat(self) -> None:
        """Valkey sends no WATCHDOG=1; an answered PING (even 'loading') is its heartbeat."""
        import redis.asyncio as aioredis

        client = aioredis.Redis(
            host=self.config.redis.host,
            port=self.config.redis.port,
            socket_connect_timeout=1.0,
            socket_timeout=1.0,
        )
        try:
            while self.alive:
                try:
                    await client.ping()
                    self.last_heartbeat = self.clock()
                except aioredis.BusyLoadingError:
                    self.last_heartbeat = self.clock()
                except (aioredis.ConnectionError, aioredis.TimeoutError):
                    pass
                await asyncio.sleep(_REDIS_HEARTBEAT_S)
        finally:
            await client.aclose()

    async def _watch_exit(self, proc: asyncio.subprocess.Process) -> int:
        code = await proc.wait()
        self.exit_code = code
        self.pidfiles.remove(self.name, pid=proc.pid)
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            self._heartbeat_task = None
        was_running = self.state is RunState.RUNNING
        if not self._controlled and was_running:
            self.state = RunState.FAILED
            self.detail = f"exited with code {code}"
            if self.on_crash is not None:
                self.on_crash(self, code)
        return code

    async def stop(self, timeout_s: float, *, controlled: bool = True) -> StopResult:
        """SIGTERM, wait up to timeout_s, then SIGKILL (forced). `controlled=False` lets the exit count
        as a crash (a hung component that the watchdog terminates)."""
        proc, exit_task = self._proc, self._exit_task
        self._controlled = controlled
        if proc is None or exit_task is None or exit_task.done():
            if controlled:
                self.state = RunState.STOPPED
            return StopResult(self.name, self.pid, False, self.exit_code, False, 0.0)
        if controlled:
            self.state = RunState.STOPPING
        t0 = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        forced = False
        try:
            await asyncio.wait_for(asyncio.shield(exit_task), timeout_s)
        except TimeoutError:
            forced = True
            kill_group(proc.pid)
            await exit_task
        if controlled:
            self.state = RunState.STOPPED
        return StopResult(self.name, proc.pid, True, exit_task.result(), forced, round(time.monotonic() - t0, 3))

    async def kill(self) -> StopResult:
        """SIGKILL at once (emergency stop); never counts as a crash."""
        proc, exit_task = self._proc, self._exit_task
        self._controlled = True
        if proc is None or exit_task is None or exit_task.done():
            return StopResult(self.name, self.pid, False, self.exit_code, False, 0.0)
        t0 = time.monotonic()
        kill_group(proc.pid)
        await exit_task
        return StopResult(self.name, proc.pid, True, exit_task.result(), True, round(time.monotonic() - t0, 3))

    def close(self) -> None:
        if self._notify is not None:
            self._notify.close()

    def heartbeat_age(self, now: float) -> float | None:
        if self.state is not RunState.RUNNING or self.last_heartbeat is None:
            return None
        return now - self.last_heartbeat

    def info(self, now: float, heartbeat_timeout_s: float) -> dict[str, Any]:
        age = self.heartbeat_age(now)
        if age is None:
            watchdog = "n/a"
        else:
            watchdog = (
                "ok" if age <= min(heartbeat_timeout_s, 3.0) else ("late" if age <= heartbeat_timeout_s else "lost")
            )
        return {
            "state": str(self.state),
            "detail": self.detail,
            "pid": self.pid if self.alive else None,
            "restarts": self.restarts,
            "watchdog": watchdog,
            "heartbeat_age_s": None if age is None else round(age, 3),
            "status_text": self.status_text,
            "exit_code": self.exit_code,
        }
