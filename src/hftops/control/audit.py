"""The append-only, hash-chained audit log (`$HFT_DATA_DIR/audit/audit.jsonl`).

Each line is one JSON entry carrying `seq`, the previous entry's hash (`prev`) and its own `hash`
(SHA-256 over the canonical JSON of every other field). Editing, deleting or reordering any line breaks
the chain at that line, and `verify` names it. Writers from several processes (CLI and supervisor) take
an flock around read-last-hash + append, so the chain stays linear.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
AUDIT_FILE = "audit.jsonl"


class AuditEvent(StrEnum):
    START = "START"
    START_FAILED = "START_FAILED"
    SHUTDOWN_START = "SHUTDOWN_START"
    SHUTDOWN_COMPLETE = "SHUTDOWN_COMPLETE"
    STATE_SNAPSHOT = "STATE_SNAPSHOT"
    FORCED_KILL = "FORCED_KILL"
    RESTART = "RESTART"
    CRASH = "CRASH"
    HEARTBEAT_LOST = "HEARTBEAT_LOST"
    BACKOFF_EXHAUSTED = "BACKOFF_EXHAUSTED"
    EMERGENCY_STOP = "EMERGENCY_STOP"
    STALE_PID_FILE = "STALE_PID_FILE"
    API_CALL_START = "API_CALL_START"
    API_CALL_STOP = "API_CALL_STOP"
    API_CALL_RESTART = "API_CALL_RESTART"
    API_CALL_EMERGENCY_STOP = "API_CALL_EMERGENCY_STOP"
    FLATTEN = "FLATTEN"  # `trading flatten`, accepted or refused by the engine
    API_CALL_FLATTEN = "API_CALL_FLATTEN"
    HALT = "HALT"  # `trading halt`
    REARM = "REARM"  # `trading rearm`, accepted
    REARM_FORCED = "REARM_FORCED"  # accepted with --force while a triggering condition was still present
    REARM_REFUSED = "REARM_REFUSED"
    API_CALL_HALT = "API_CALL_HALT"
    API_CALL_REARM = "API_CALL_REARM"  # result says refused / forced


def component_stop_event(component: str) -> str:
    """`<COMPONENT>_STOP`, e.g. RECORDER_STOP."""
    return f"{component.upper()}_STOP"


OPERATOR_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"  # an audit actor: 1-64 letters, digits, _ . @ -


def default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def canonical(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def entry_hash(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(canonical(body)).hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    line: int | None = None  # 1-based line of the first problem
    problem: str = ""

    def describe(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.entries} entries"
        return f"audit chain broken at line {self.line}: {self.problem}"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class AuditLog:
    def __init__(self, audit_dir: Path, now: Callable[[], str] = _now_iso) -> None:
        self.dir = audit_dir
        self.path = audit_dir / AUDIT_FILE
        self._lock_path = audit_dir / "audit.lock"
        self._now = now

    def append(
        self,
        event: str,
        *,
        actor: str,
        args: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append one entry under the file lock and fsync it; returns the entry as written."""
        self.dir.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            last = self._last_entry()
            entry: dict[str, Any] = {
                "seq": (last["seq"] + 1) if last else 1,
                "at": self._now(),
                "event": str(event),
                "actor": actor,
                "args": args or {},
                "result": result or {},
                "prev": last["hash"] if last else GENESIS,
            }
            entry["hash"] = entry_hash(entry)
            line = canonical(entry) + b"\n"
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            return entry
        finally:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
            os.close(lock_fd)

    def _last_entry(self) -> dict[str, Any] | None:
        """The last complete line, read backwards from the end (the file can grow large)."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                end = fh.tell()
                chunk = b""
                pos = end
                while pos > 0:
                    step = min(8192, pos)
                    pos -= step
                    fh.seek(pos)
                    chunk = fh.read(step) + chunk
                    lines = chunk.rstrip(b"\n").split(b"\n")
                    if len(lines) > 1 or pos == 0:
                        last_line = lines[-1]
                        if not last_line.strip():
                            return None
                        parsed: dict[str, Any] = json.loads(last_line)
                        return parsed
                return None
        except FileNotFoundError:
            return None

    def entries(self) -> Iterator[dict[str, Any]]:
        try:
            with open(self.path, "rb") as fh:
                for raw in fh:
                    if raw.strip():
                        yield json.loads(raw)
        except FileNotFoundError:
            return

    def tail(self, n: int) -> list[dict[str, Any]]:
        from collections import deque

        return list(deque(self.entries(), maxlen=max(n, 0)))

    def verify(self) -> VerifyResult:
        """Walk the chain and name the first line that was edited, deleted around, or moved."""
        prev_hash, expected_seq, count = GENESIS, 1, 0
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return VerifyResult(True, 0)
        with fh:
            for number, raw in enumerate(fh, start=1):
                problem = _check_line(raw, prev_hash, expected_seq)
                if problem:
                    return VerifyResult(False, count, number, problem)
                entry = json.loads(raw)
                prev_hash, expected_seq, count = entry["hash"], entry["seq"] + 1, count + 1
        return VerifyResult(True, count)


def _check_line(raw: bytes, prev_hash: str, expected_seq: int) -> str:
    if not raw.strip():
        return "empty line (a line was blanked)"
    try:
        entry = json.loads(raw)
    except ValueError:
        return "not valid JSON (the line was edited or truncated)"
    if not isinstance(entry, dict) or not {"seq", "prev", "hash"} <= entry.keys():
        return "missing seq/prev/hash fields (the line was edited)"
    if entry_hash(entry) != entry["hash"]:
        return f"content does not match its hash (entry seq {entry.get('seq')} was edited)"
    seq = entry["seq"]
    if seq != expected_seq:
        if isinstance(seq, int) and seq > expected_seq:
            return f"expected seq {expected_seq}, found {seq}: entries {expected_seq}..{seq - 1} were deleted"
        return f"expected seq {expected_seq}, found {seq}: lines were reordered"
    if entry["prev"] != prev_hash:
        return f"prev hash does not match the previous line (entry seq {seq}): lines were removed or reordered"
    return ""
