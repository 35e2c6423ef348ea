"""PID files with process identity (start time + command line), and the supervisor's single-instance lock.

A PID alone is not an identity: after a crash or reboot the number can belong to an unrelated process.
Every record carries the process's create time and command line, and nothing is signalled unless both
still match, so a stale file never gets a stranger killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

SUPERVISOR = "supervisor"
_CREATE_TIME_TOLERANCE_S = 0.05
_EXEC_SETTLE_S = 0.5  # how long record_for waits for a fresh child's command line


@dataclass(frozen=True)
class PidRecord:
    component: str
    pid: int
    create_time: float
    cmdline: tuple[str, ...]
    started_at: str
    supervisor_pid: int | None = None

    def to_json(self) -> str:
        data = asdict(self)
        data["cmdline"] = list(self.cmdline)
        return json.dumps(data, indent=1)


def identify(pid: int) -> tuple[float, tuple[str, ...]] | None:
    """(create_time, cmdline) of a live, non-zombie process; None when there is no such process."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc.create_time(), tuple(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def record_for(component: str, pid: int, supervisor_pid: int | None = None) -> PidRecord:
    """The identity to keep for `pid`. Right after a spawn the kernel can still be inside execve: the parent
    is woken when the close-on-exec pipe closes, before the new program's arguments are set up, and
    /proc/<pid>/cmdline reads empty for that moment. Wait (briefly) for the real command line."""
    identity = identify(pid)
    deadline = time.monotonic() + _EXEC_SETTLE_S
    while identity is not None and not identity[1] and time.monotonic() < deadline:
        time.sleep(0.001)
        identity = identify(pid)
    if identity is None:
        raise ProcessLookupError(f"{component}: process {pid} is gone before its PID file was written")
    create_time, cmdline = identity
    started = datetime.fromtimestamp(create_time, UTC).isoformat()
    return PidRecord(component, pid, create_time, cmdline, started, supervisor_pid)


def _program(cmdline: tuple[str, ...]) -> str:
    return os.path.basename(cmdline[0].split(" ", 1)[0]) if cmdline else ""


def is_same_process(record: PidRecord) -> bool:
    """Same start time, and the same command line (or, for servers that rewrite their process title
    such as valkey-server, the same program)."""
    identity = identify(record.pid)
    if identity is None:
        return False
    create_time, cmdline = identity
    if abs(create_time - record.create_time) > _CREATE_TIME_TOLERANCE_S:
        return False
    if not record.cmdline:  # recorded mid-exec (see record_for): the PID and its start time identify it
        return True
    return cmdline == record.cmdline or (bool(cmdline) and _program(cmdline) == _program(record.cmdline))


def signal_process(record: PidRecord, sig: int) -> bool:
    """Send `sig` only if the PID still belongs to the recorded process. Returns whether it was sent.

    A pidfd pins the process before the identity check, so the PID cannot be reused in between.
    """
    try:
        pidfd = os.pidfd_open(record.pid)
    except ProcessLookupError:
        return False
    except OSError:
        pidfd = -1  # kernels without pidfd: a plain check-then-kill
    try:
        if not is_same_process(record):
            return False
        if pidfd >= 0:
            signal.pidfd_send_signal(pidfd, sig)
        else:
            os.kill(record.pid, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        if pidfd >= 0:
            os.close(pidfd)


class PidFiles:
    """`<run>/<component>.pid`, one JSON record each; the directory is mode 0700."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir

    def ensure(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.dir, 0o700)

    def path(self, component: str) -> Path:
        return self.dir / f"{component}.pid"

    def write(self, component: str, pid: int, supervisor_pid: int | None = None) -> PidRecord:
        self.ensure()
        record = record_for(component, pid, supervisor_pid)
        tmp = self.path(component).with_suffix(".pid.tmp")
        tmp.write_text(record.to_json())
        os.replace(tmp, self.path(component))
        return record

    def read(self, component: str) -> PidRecord | None:
        try:
            data = json.loads(self.path(component).read_text())
            return PidRecord(
                data["component"],
                int(data["pid"]),
                float(data["create_time"]),
                tuple(data["cmdline"]),
                str(data["started_at"]),
                data.get("supervisor_pid"),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return PidRecord(component, -1, 0.0, (), "")  # unreadable: treated as stale

    def remove(self, component: str, pid: int | None = None) -> None:
        """Remove the file; with `pid`, only if it still names that PID (a newer start may own it)."""
        if pid is not None:
            record = self.read(component)
            if record is not None and record.pid != pid:
                return
        with contextlib.suppress(FileNotFoundError):
            self.path(component).unlink()

    def live(self, component: str) -> PidRecord | None:
        """The record if its process is still the one that wrote it; a stale file is removed."""
        record = self.read(component)
        if record is None:
            return None
        if record.pid > 0 and is_same_process(record):
            return record
        self.remove(component)
        return None

    def all_live(self, names: tuple[str, ...] | list[str]) -> dict[str, PidRecord]:
        found = {}
        for name in names:
            record = self.live(name)
            if record is not None:
                found[name] = record
        return found


def sweep(pidfiles: PidFiles, names: tuple[str, ...] | list[str]) -> tuple[dict[str, PidRecord], list[PidRecord]]:
    """Live records, and the stale ones removed (their PID is gone or belongs to another process)."""
    live: dict[str, PidRecord] = {}
    stale: list[PidRecord] = []
    for name in names:
        record = pidfiles.read(name)
        if record is None:
            continue
        if record.pid > 0 and is_same_process(record):
            live[name] = record
        else:
            stale.append(record)
            pidfiles.remove(name)
    return live, stale
