"""The CLI's line to a running supervisor: HTTP over the 0600 unix socket in the run directory.

One HTTP/1.1 exchange per call, written out by hand over the socket (`Connection: close`, answer read to
the end): the supervisor answers small JSON bodies, and `trading stop` under load should not spend its
budget importing an HTTP client library first (`http.client` alone pulls in `email` and `ssl`).
"""

from __future__ import annotations

import json as jsonlib
import socket
import time
from typing import Any
from urllib.parse import urlencode

from hftops.config.paths import DataPaths
from hftops.control.instance_lock import CONTROL_SOCKET, InstanceLock
from hftops.control.shutdown_plan import ShutdownPlan

_CONNECT_TIMEOUT_S = 2.0


def _dechunk(body: bytes) -> bytes:
    """A chunked transfer-encoded body, joined (RFC 9112 section 7.1; no trailers expected)."""
    out: list[bytes] = []
    pos = 0
    while True:
        end = body.index(b"\r\n", pos)
        size = int(body[pos:end].split(b";", 1)[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(body[end + 2 : end + 2 + size])
        pos = end + 2 + size + 2


def exchange(
    socket_path: str, method: str, target: str, payload: bytes | None, timeout_s: float | None
) -> tuple[int, bytes]:
    """One request on a fresh connection; (status, body). OSError or ValueError when it fails."""
    head = [f"{method} {target} HTTP/1.1", "Host: supervisor", "Connection: close"]
    if payload is not None:
        head.append("Content-Type: application/json")
    if payload is not None or method != "GET":
        head.append(f"Content-Length: {len(payload or b'')}")
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + (payload or b"")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(_CONNECT_TIMEOUT_S)
        sock.connect(socket_path)
        sock.settimeout(timeout_s)
        sock.sendall(request)
        received = b""
        answer: tuple[int, dict[bytes, bytes], int] | None = None  # status, headers, where the body starts
        while chunk := sock.recv(65536):
            received += chunk
            if answer is None and b"\r\n\r\n" in received:
                answer = _head(received)
            length = answer[1].get(b"content-length") if answer is not None else None
            if answer is not None and length is not None and len(received) - answer[2] >= int(length):
                break  # the whole body is here; no need to wait for the close
    if answer is None:
        raise ValueError(f"the connection closed before a whole HTTP head arrived ({len(received)} bytes)")
    status, headers, start = answer
    body = received[start:]
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        return status, _dechunk(body)
    length = headers.get(b"content-length")
    return status, body if length is None else body[: int(length)]


def _head(received: bytes) -> tuple[int, dict[bytes, bytes], int]:
    """Status, lower-cased headers, and the offset of the body, from an answer's first bytes."""
    end = received.index(b"\r\n\r\n")
    lines = received[:end].split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    if not version.startswith(b"HTTP/1.") or not rest[:3].isdigit():
        raise ValueError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(b":") for line in lines[1:])}
    return int(rest[:3]), headers, end + 4


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
        try:
            status, raw = exchange(str(self.socket), method, target, payload, timeout_s)
        except (OSError, ValueError) as exc:
            raise SupervisorUnavailable(f"supervisor not answering on {self.socket}: {exc!r}") from exc
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
