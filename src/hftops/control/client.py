"""The CLI's line to a running supervisor: HTTP over the 0600 unix socket in the run directory."""

from __future__ import annotations

from typing import Any

import httpx

from hftops.config.paths import DataPaths
from hftops.control.pidfiles import CONTROL_SOCKET, InstanceLock


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
        transport = httpx.HTTPTransport(uds=str(self.socket))
        try:
            with httpx.Client(
                transport=transport,
                base_url="http://supervisor",
                timeout=httpx.Timeout(timeout_s, connect=2.0),
            ) as client:
                response = client.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            raise SupervisorUnavailable(f"supervisor not answering on {self.socket}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return response.status_code, body

    def status(self, with_ledger: bool = True, timeout_s: float = 15.0) -> dict[str, Any]:
        code, body = self.request(
            "GET", "/api/status", params={"ledger": str(with_ledger).lower()}, timeout_s=timeout_s
        )
        if code != 200:
            raise SupervisorUnavailable(f"status answered HTTP {code}: {body}")
        result: dict[str, Any] = body
        return result
