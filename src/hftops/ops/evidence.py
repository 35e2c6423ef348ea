"""Evidence of an autonomy transition: what was measured, against what, and the state of the engine at that
moment (positions, stream lag, process figures, the last log lines). Built from plain inputs so the
engine, the tests and a drill all produce the same record; published on `ops:events:evidence`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import psutil

from hftops.model.ops_events import AutonomyTransition, EvidenceRecord
from hftops.ops.autonomy_entries import Transition

_TAIL_BYTES = 64 * 1024


def log_tail(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a log file (reads at most 64 KiB from its end); [] when unreadable."""
    if lines <= 0:
        return []
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - _TAIL_BYTES))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line[:2000] for line in text.splitlines()[-lines:]]


def process_figures(process: psutil.Process | None = None) -> dict[str, str]:
    try:
        proc = process or psutil.Process(os.getpid())
        with proc.oneshot():
            mem = proc.memory_info()
            times = proc.cpu_times()
            return {
                "pid": str(proc.pid),
                "rss_bytes": str(mem.rss),
                "vms_bytes": str(mem.vms),
                "cpu_user_s": f"{times.user:.2f}",
                "cpu_system_s": f"{times.system:.2f}",
                "threads": str(proc.num_threads()),
                "open_files": str(proc.num_fds()),
            }
    except (psutil.Error, OSError) as exc:
        return {"pid": str(os.getpid()), "error": f"{type(exc).__name__}: {exc}"}


def position_rows(positions: Iterable[Any]) -> list[dict[str, str]]:
    """Open positions (objects with strategy_id, symbol, qty, avg_price) as string rows; flat ones left out."""
    return [
        {"strategy": p.strategy_id, "symbol": p.symbol, "qty": str(p.qty), "avg_price": str(p.avg_price)}
        for p in positions
        if p.qty != 0
    ]


def autonomy_event(t: Transition) -> AutonomyTransition:
    return AutonomyTransition(
        id=t.id,
        time_ns=t.time_ns,
        scope=t.scope.value,
        strategy_id=t.strategy_id,
        from_mode=t.from_mode.value,
        to_mode=t.to_mode.value,
        reasons=list(t.reasons),
        trigger=t.trigger,
        operator=t.operator,
        detail=(t.detail + (" [forced]" if t.forced else "")).strip(),
    )


def build_evidence(
    t: Transition,
    *,
    health: Mapping[str, str],
    positions: list[dict[str, str]],
    stream_lag: Mapping[str, str],
    process: Mapping[str, str],
    log_lines: list[str],
) -> EvidenceRecord:
    values = dict(t.values)
    if t.forced:
        values["forced"] = "true"
    if t.operator:
        values["operator"] = t.operator
    return EvidenceRecord(
        id=t.id,
        time_ns=t.time_ns,
        scope=t.scope.value,
        strategy_id=t.strategy_id,
        from_mode=t.from_mode.value,
        to_mode=t.to_mode.value,
        trigger=t.trigger,
        reasons=list(t.reasons),
        trigger_values=values,
        thresholds=dict(t.thresholds),
        health=dict(health),
        positions=positions,
        stream_lag=dict(stream_lag),
        process=dict(process),
        log_tail=log_lines,
    )
