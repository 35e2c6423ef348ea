"""`trading start` without --foreground: launch the supervisor detached and wait until it reports
READY=1 (every component ready) or fails, over a notify socket of the CLI's own.

Light on purpose: the CLI imports this before the supervisor process exists, so every module imported here
delays the whole start. The supervisor's side of the protocol (NotifyParentHooks) is in control/__main__.py.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hftops.config.paths import DataPaths
from hftops.control.notify import parse_notify

if TYPE_CHECKING:
    from hftops.config.schema import Config

FAILED_FIELD = "X_HFT_FAILED"
IN_SUPERVISOR = frozenset({"api", "supervisor", "config"})
SUPERVISOR_MODULE = "hftops.control"


@dataclass(frozen=True)
class LaunchResult:
    ok: bool
    pid: int
    component: str | None = None
    reason: str = ""


def launch(config: Config, operator: str, timeout_s: float) -> LaunchResult:
    paths = DataPaths(config.data_dir).ensure()
    sock_path = paths.run / f"start-{os.getpid()}.sock"
    with contextlib.suppress(FileNotFoundError):
        sock_path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    sock.bind(str(sock_path))
    try:
        from hftops.control.runner import child_env

        env = child_env(config, str(sock_path))
        with open(paths.log / "supervisor.out", "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", SUPERVISOR_MODULE, "--operator", operator],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        return _await_outcome(sock, proc, timeout_s)
    finally:
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            sock_path.unlink()


def _await_outcome(sock: socket.socket, proc: subprocess.Popen[bytes], timeout_s: float) -> LaunchResult:
    deadline = time.monotonic() + timeout_s
    failed: tuple[str, str] | None = None
    sock.settimeout(0.1)
    while time.monotonic() < deadline:
        try:
            fields = parse_notify(sock.recv(4096))
        except TimeoutError:
            fields = {}
        if fields.get("READY") == "1":
            return LaunchResult(True, proc.pid)
        if FAILED_FIELD in fields:
            failed = (fields[FAILED_FIELD], fields.get("STATUS", "start failed"))
        code = proc.poll()
        if code is not None:
            component, reason = failed or ("supervisor", f"exited with code {code} before it was ready")
            return LaunchResult(False, proc.pid, component, reason)
    return LaunchResult(
        False,
        proc.pid,
        "supervisor",
        f"not ready after {timeout_s:g}s; it keeps starting in the background (`trading status`, `trading logs`)",
    )


def last_log_lines(log_dir: Path, component: str, n: int = 15) -> list[str]:
    """The tail of a component's stdout/stderr and of its structured log, for start failures."""
    lines: list[str] = []
    if component in IN_SUPERVISOR:
        component = "supervisor"  # served inside the supervisor: its own output tells
    for path in (log_dir / f"{component}.out", log_dir / f"{component}.log"):
        try:
            tail = path.read_bytes()[-16384:].decode("utf-8", "replace").splitlines()[-n:]
        except OSError:
            lines.append(f"--- {path}: not written")
            continue
        lines.append(f"--- {path} (last {len(tail)} lines)" if tail else f"--- {path}: empty")
        lines.extend(tail)
    return lines
