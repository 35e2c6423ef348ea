"""Serving ASGI apps inside the supervisor's event loop: the control API on TCP (the `api` component)
and the local control socket that the CLI talks to."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from hftops.control.registry import ComponentSpec
from hftops.control.runner import RunState, StartFailed, StopResult
from hftops.embedded_http import EmbeddedServer


def _server(app: Any) -> EmbeddedServer:
    return EmbeddedServer(
        uvicorn.Config(app, lifespan="off", log_config=None, access_log=False, timeout_graceful_shutdown=5)
    )


def tcp_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.setblocking(False)
    return sock


def unix_socket(path: Path) -> socket.socket:
    if len(str(path)) > 107:
        raise OSError(f"control socket path {path} is longer than 107 bytes; set XDG_RUNTIME_DIR or a shorter data_dir")
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    os.chmod(path, 0o600)  # the directory is 0700 as well: only this user can control the platform
    sock.listen(32)
    sock.setblocking(False)
    return sock


class ServedApp:
    """One uvicorn server on a pre-bound socket, started and stopped from the supervisor's loop."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        self.server = _server(app)
        self.sock = sock
        self.task: asyncio.Task[None] | None = None

    async def start(self, timeout_s: float = 10.0) -> None:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if self.task.done():
                exc = self.task.exception()
                raise RuntimeError(f"HTTP server stopped during startup: {exc!r}")
            if time.monotonic() > deadline:
                raise TimeoutError("HTTP server did not start")
            await asyncio.sleep(0.01)

    async def stop(self, timeout_s: float) -> bool:
        """Returns True if connections had to be cut (forced)."""
        if self.task is None or self.task.done():
            return False
        self.server.request_exit()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout_s)
            return False
        except TimeoutError:
            self.server.force_exit = True
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
            return True
        finally:
            self.sock.close()


class ApiRunner:
    """The `api` component: the control API served inside the supervisor on api.host:api.port."""

    def __init__(self, spec: ComponentSpec, host: str, port: int, app_factory: Callable[[], Any]) -> None:
        self.spec = spec
        self.name = spec.name
        self.host, self.port = host, port
        self.app_factory = app_factory
        self.state = RunState.STOPPED
        self.detail = ""
        self.restarts = 0
        self.pid: int | None = None
        self.exit_code: int | None = None
        self.started_at: float | None = None
        self._served: ServedApp | None = None

    @property
    def alive(self) -> bool:
        return self._served is not None and self._served.task is not None and not self._served.task.done()

    async def start(self, ready_timeout_s: float) -> None:
        if self.alive:
            return
        self.state, self.detail = RunState.STARTING, ""
        try:
            sock = tcp_socket(self.host, self.port)
        except OSError as exc:
            self.state, self.detail = RunState.FAILED, f"cannot bind {self.host}:{self.port}: {exc.strerror}"
            raise StartFailed(self.name, self.detail + " (set api.port or HFT_API_PORT to a free port)") from exc
        self._served = ServedApp(self.app_factory(), sock)
        try:
            await self._served.start(ready_timeout_s)
        except (RuntimeError, TimeoutError) as exc:
            self.state, self.detail = RunState.FAILED, str(exc)
            raise StartFailed(self.name, str(exc)) from exc
        self.pid = os.getpid()
        self.started_at = time.monotonic()
        self.state = RunState.RUNNING

    async def stop(self, timeout_s: float, *, controlled: bool = True) -> StopResult:
        if not self.alive or self._served is None:
            self.state = RunState.STOPPED
            return StopResult(self.name, None, False, None, False, 0.0)
        self.state = RunState.STOPPING
        t0 = time.monotonic()
        forced = await self._served.stop(timeout_s)
        self.state = RunState.STOPPED
        pid, self.pid = self.pid, None
        return StopResult(self.name, pid, True, 0, forced, round(time.monotonic() - t0, 3))

    async def kill(self) -> StopResult:
        # The API is how an operator reaches the platform during an emergency; it keeps serving.
        return StopResult(self.name, self.pid, False, None, False, 0.0)

    def close(self) -> None:
        pass

    def heartbeat_age(self, now: float) -> float | None:
        return None

    def info(self, now: float, heartbeat_timeout_s: float) -> dict[str, Any]:
        return {
            "state": str(self.state),
            "detail": self.detail,
            "pid": self.pid if self.alive else None,
            "restarts": self.restarts,
            "watchdog": "n/a (in supervisor)",
            "heartbeat_age_s": None,
            "status_text": f"http://{self.host}:{self.port}",
            "exit_code": None,
        }
