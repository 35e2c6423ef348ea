"""The persisted autonomy state (`$HFT_DATA_DIR/state/autonomy.json`) and the engine's ownership lock.

Written atomically (temp file, fsync, rename, fsync of the directory) on every change, read at boot.
The running engine holds an flock on `state/autonomy.lock` for its whole life: another process (the CLI,
the API) that gets the lock knows no engine runs and may change the state file itself (halt, rearm),
which the next boot honours; one that does not get it talks to the engine instead. A state file that
cannot be read fails closed: the reader gets HALT and the damaged file is kept aside as evidence.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hftops.control.instance_lock import try_exclusive_lock

STATE_FILE = "autonomy.json"
LOCK_FILE = "autonomy.lock"
EMERGENCY_LATCH_FILE = "autonomy_latch.json"  # written by `trading emergency-stop` (control.latch)
STATE_VERSION = 1


class StateUnreadable(Exception):
    """The state file exists but is not a state document; `kept_at` names where the damaged copy went."""

    def __init__(self, message: str, kept_at: Path | None) -> None:
        super().__init__(message)
        self.kept_at = kept_at


def atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.write(fd, json.dumps(data, indent=1, sort_keys=True, default=str).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself must survive a power cut
    finally:
        os.close(dir_fd)


class AutonomyStore:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        self.path = state_dir / STATE_FILE
        self.lock_path = state_dir / LOCK_FILE
        self.latch_path = state_dir / EMERGENCY_LATCH_FILE
        self._lock_fd: int | None = None

    # --- the state document ---
    def peek(self) -> dict[str, Any] | None:
        """The stored document (read only), None when there is none; StateUnreadable when damaged."""
        try:
            raw = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateUnreadable(f"{self.path} unreadable: {exc.strerror}", None) from exc
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise StateUnreadable(f"{self.path} is not valid JSON ({exc})", None) from exc
        if not isinstance(data, dict) or not isinstance(data.get("reasons"), list):
            raise StateUnreadable(f"{self.path} is not an autonomy state document", None)
        return data

    def load(self) -> dict[str, Any] | None:
        """Like `peek`, but a damaged file is moved aside (kept as evidence) before StateUnreadable is raised,
        so the next write does not overwrite it."""
        try:
            return self.peek()
        except StateUnreadable as exc:
            if not self.path.exists():
                raise
            kept = self.path.with_name(f"{STATE_FILE}.corrupt-{time.time_ns()}")
            with contextlib.suppress(OSError):
                os.replace(self.path, kept)
            raise StateUnreadable(f"{exc}; kept as {kept}", kept) from exc

    def save(self, document: dict[str, Any]) -> None:
        atomic_write_json(self.path, {"version": STATE_VERSION, **document})

    # --- the emergency-stop latch (an input: HALT manual_operator until `trading rearm`) ---
    def emergency_latch(self) -> dict[str, Any] | None:
        """The latch when present; an unreadable one still counts (a damaged safety latch fails closed)."""
        try:
            raw = self.latch_path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            return {"mode": "HALT", "reason": f"latch file {self.latch_path} unreadable: {exc.strerror}"}
        try:
            data = json.loads(raw)
        except ValueError:
            return {"mode": "HALT", "reason": f"latch file {self.latch_path} is not valid JSON"}
        if not isinstance(data, dict):
            return {"mode": "HALT", "reason": f"latch file {self.latch_path} is not a JSON object"}
        return data if str(data.get("mode", "")).upper() == "HALT" else None

    def clear_emergency_latch(self) -> bool:
        try:
            self.latch_path.unlink()
            return True
        except FileNotFoundError:
            return False

    # --- ownership ---
    def acquire(self) -> bool:
        """Take the engine's lock (non-blocking); False when another process holds it."""
        if self._lock_fd is not None:
            return True
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = try_exclusive_lock(self.lock_path)
        if fd is None:
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd
        return True

    def release(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    @contextlib.contextmanager
    def offline(self) -> Iterator[bool]:
        """Hold the lock for an offline change; yields False (and holds nothing) while an engine runs."""
        if self._lock_fd is not None:  # this process is the engine
            yield True
            return
        got = self.acquire()
        try:
            yield got
        finally:
            if got:
                self.release()

    def engine_running(self) -> bool:
        with self.offline() as free:
            return not free
