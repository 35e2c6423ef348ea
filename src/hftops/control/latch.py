"""The HALT latch written by emergency-stop, and the marker that blocks automatic restarts.

The latch (`state/autonomy_latch.json`) is the engine's to honour and only `trading rearm` clears it.
The restart block (`state/restart_block.json`) keeps the supervisor's watchdog from bringing killed
components back; only an explicit `trading start` removes it.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hftops.config.paths import DataPaths

LATCH_FILE = "autonomy_latch.json"
RESTART_BLOCK_FILE = "restart_block.json"


def atomic_write_json(path: Path, data: dict[str, Any], mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, json.dumps(data, indent=1, sort_keys=True).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself must survive a power cut
    finally:
        os.close(dir_fd)


def latch_path(paths: DataPaths) -> Path:
    return paths.state / LATCH_FILE


def write_halt_latch(paths: DataPaths, actor: str, reason: str = "manual_operator") -> dict[str, Any]:
    latch = {"mode": "HALT", "reason": reason, "by": actor, "at": datetime.now(UTC).isoformat()}
    atomic_write_json(latch_path(paths), latch)
    return latch


def read_latch(paths: DataPaths) -> dict[str, Any] | None:
    try:
        data = json.loads(latch_path(paths).read_text())
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def block_restarts(paths: DataPaths, actor: str, reason: str) -> None:
    atomic_write_json(
        paths.state / RESTART_BLOCK_FILE, {"by": actor, "reason": reason, "at": datetime.now(UTC).isoformat()}
    )


def restarts_blocked(paths: DataPaths) -> bool:
    return (paths.state / RESTART_BLOCK_FILE).exists()


def clear_restart_block(paths: DataPaths) -> None:
    with contextlib.suppress(FileNotFoundError):
        (paths.state / RESTART_BLOCK_FILE).unlink()
