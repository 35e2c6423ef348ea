"""The CLI's line to a running supervisor: HTTP over the 0600 unix socket in the run directory.

Plain `http.client` over the socket: the supervisor answers small JSON bodies, and `trading stop` under
load should not spend its budget importing an HTTP client library first.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import socket
import time
from typing import Any
from urllib.parse import urlencode

from hftops.config.paths import DataPaths
from hftops.control.instance_lock import CONTROL_SOCKET, InstanceLock
from hftops.control.shutdown_plan import ShutdownPlan

_CONNECT_TIMEOUT_S = 2.0


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout_s: float | None) -> None:
        super().__init__("supervisor", timeout=timeout_s)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(_CONNECT_TIMEOUT_S)
            sock.connect(self._path)
            sock.settimeout(self.timeout)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class SupervisorUnavailable(Exception):
    pass


class SupervisorClient:
    def __init__(self, paths: DataPaths) -> None:
        self.paths = paths
        self.socket = paths.run / CONTROL_SOCKET

    def running(self) -> bool:
        """A supervisor holds the instance lock (it may still be unresponsive)."""
        return InstanceLock(self.paths.run).is_held_elsewhere()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        timeout_s: float | None = 10.0,
        params: dict[str, Any] | None = None,
    ) -> tuple[int, Any]:
        if not self.socket.exists():
            raise SupervisorUnavailable(f"no control socket at {self.socket}")
        target = path + (f"?{urlencode(params)}" if params else "")
        payload = None if json is None else jsonlib.dumps(json).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        connection = _UnixConnection(str(self.socket), timeout_s)
        try:
            connection.request(method, target, body=payload, headers=headers)
            response = connection.getresponse()
            status, raw = response.status, response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise SupervisorUnavailable(f"supervisor not answering on {self.socket}: {exc!r}") from exc
        finally:
            connection.close()
        text = raw.decode("utf-8", "replace")
        try:
            body = jsonlib.loads(text)
        except ValueError:
            body = text
        return status, body

    def status(self, with_ledger: bool = True, timeout_s: float = 15.0) -> dict[str, Any]:
        code, body = self.request(
            "GET", "/api/status", params={"ledger": str(with_ledger).lower()}, timeout_s=timeout_s
        )
        if code != 200:
            raise SupervisorUnavailable(f"status answered HTTP {code}: {body}")
        result: dict[str, Any] = body
        return result

    def shutdown(self, plan: ShutdownPlan, timeout_s: float) -> dict[str, Any] | None:
        """Ask for the ordered stop and wait until the supervisor has exited; its report, or None when it
        did not answer within `timeout_s` (a repeated request joins a stop already under way)."""
        body = {
            "operator": plan.actor,
            "drain": plan.drain,
            "timeout_s": plan.timeout_s,
            "drain_timeout_s": plan.drain_timeout_s,
        }
        try:
            code, report = self.request("POST", "/local/shutdown", json=body, timeout_s=timeout_s)
        except SupervisorUnavailable:
            return None
        if code != 200 or not isinstance(report, dict):
            return None
        self.wait_exit(30.0)
        return report

    def wait_exit(self, timeout_s: float) -> None:
        """Until the supervisor released its instance lock (a `start` right after then succeeds)."""
        deadline = time.monotonic() + timeout_s
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.01)
