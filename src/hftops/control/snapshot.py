"""State snapshots (`trading snapshot`, written by every stop) and the post-reboot comparison."""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hftops.config.paths import DataPaths
from hftops.control.latch import atomic_write_json
from hftops.control.procinfo import hugepages, process_facts

LATEST = "latest.json"
_KEEP = 200  # snapshots are small; keep a long history but not an unbounded one


def process_table(pids: dict[str, int | None]) -> dict[str, Any]:
    return {name: {"pid": pid, **process_facts(pid, detailed=True)} for name, pid in pids.items()}


def build_snapshot(
    reason: str, *, processes: dict[str, Any], flow: dict[str, Any], ledger: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "taken_at": datetime.now(UTC).isoformat(),
        "reason": reason,
        "host": socket.gethostname(),
        "processes": processes,
        "streams": {
            key: {"length": info["length"], "groups": info["groups"]}
            for key, info in (flow.get("streams") or {}).items()
        },
        "stream_totals": flow.get("totals"),
        "tables": flow.get("tables"),
        "wal": flow.get("wal"),
        "dlq": flow.get("dlq"),
        "cursor": flow.get("cursor"),
        "ledger": ledger,
        "hugepages": hugepages(),
    }


def save_snapshot(paths: DataPaths, snapshot: dict[str, Any]) -> Path:
    paths.snapshots.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    path = paths.snapshots / f"snapshot-{stamp}.json"
    atomic_write_json(path, snapshot, mode=0o644)
    atomic_write_json(paths.snapshots / LATEST, {**snapshot, "path": str(path)}, mode=0o644)
    old = sorted(paths.snapshots.glob("snapshot-*.json"))
    for stale in old[:-_KEEP]:
        os.unlink(stale)
    return path


def load_snapshot(paths: DataPaths, path: Path | None = None) -> dict[str, Any] | None:
    target = path or paths.snapshots / LATEST
    try:
        data: dict[str, Any] = json.loads(target.read_text())
        return data
    except (OSError, ValueError):
        return None


def compare_tables(snapshot: dict[str, Any], tables_now: dict[str, Any]) -> tuple[bool, list[str]]:
    """Every table must hold at least the rows it held at the snapshot (nothing lost over the reboot)."""
    then = snapshot.get("tables") or {}
    if "error" in then:
        return False, [f"the snapshot has no table counts ({then['error']}); take one with `trading snapshot`"]
    if "error" in tables_now:
        return False, [tables_now["error"]]
    ok, lines = True, []
    for table, info in sorted(then.items()):
        before = int(info.get("rows", 0))
        now = tables_now.get(table, {}).get("rows")
        if now is None:
            ok = False
            lines.append(f"{table}: {before:,} rows at the snapshot, table missing now")
        elif now < before:
            ok = False
            lines.append(f"{table}: {before:,} rows at the snapshot, {now:,} now: {before - now:,} rows LOST")
        else:
            extra = f" (+{now - before:,} since)" if now > before else ""
            lines.append(f"{table}: {now:,} rows, snapshot {before:,}{extra}: ok")
    return ok, lines
