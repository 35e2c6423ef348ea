"""The supervisor's single-instance lock and its control socket's name: stdlib only, so that `trading stop`
can find a running supervisor without importing the process-handling modules (psutil, PID files)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

CONTROL_SOCKET = "supervisor.sock"  # the supervisor's HTTP API on a 0600 unix socket in the run directory


def try_exclusive_lock(path: Path) -> int | None:
    """A non-blocking exclusive flock on `path` (created 0600): the open fd that holds it, or None when another
    process holds it. The lock lasts until the fd is closed (or the process exits)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class InstanceLock:
    """flock on `<run>/supervisor.lock`: exactly one supervisor per run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "supervisor.lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fd = try_exclusive_lock(self.path)
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def is_held_elsewhere(self) -> bool:
        if self._fd is not None:
            return False
        if not self.path.exists():
            return False
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
