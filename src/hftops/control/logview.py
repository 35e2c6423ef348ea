"""Merged, time-ordered view of the components' JSON log files (`trading logs`, `GET /api/logs`)."""

from __future__ import annotations

import heapq
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_TAIL_CHUNK = 64 * 1024


def log_files(log_dir: Path, component: str | None) -> dict[str, list[Path]]:
    """component -> its files, oldest rotation first (x.log.3, x.log.2, x.log.1, x.log)."""
    found: dict[str, list[Path]] = {}
    if not log_dir.is_dir():
        return found
    for path in log_dir.glob("*.log*"):
        name, _, suffix = path.name.partition(".log")
        if suffix and not suffix[1:].isdigit():
            continue
        if component and name != component:
            continue
        found.setdefault(name, []).append(path)
    for paths in found.values():
        paths.sort(key=lambda p: -int(p.name.rpartition(".")[2]) if p.name[-1].isdigit() else 0)
    return found


def parse_line(raw: str, component: str) -> dict[str, Any]:
    try:
        entry = json.loads(raw)
        if not isinstance(entry, dict):
            raise ValueError
    except ValueError:
        entry = {"event": raw.rstrip("\n"), "level": "raw"}
    entry.setdefault("component", component)
    entry["source"] = component  # the file it came from; `component` may name the subject of the event
    entry.setdefault("timestamp", "")
    return entry


def _tail_lines(path: Path, n: int) -> list[str]:
    """The last n lines of a file without reading all of it."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        pos = fh.tell()
        data = b""
        while pos > 0 and data.count(b"\n") <= n:
            step = min(_TAIL_CHUNK, pos)
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[-n:] if n else []


def tail(log_dir: Path, component: str | None = None, n: int = 100) -> list[dict[str, Any]]:
    """The last n entries across the chosen components, ordered by timestamp."""
    per_component: list[list[dict[str, Any]]] = []
    for name, paths in log_files(log_dir, component).items():
        lines: deque[str] = deque(maxlen=n)
        for path in paths:  # oldest rotation first, so the newest lines win the deque
            try:
                lines.extend(_tail_lines(path, n))
            except OSError:
                continue
        per_component.append([parse_line(line, name) for line in lines if line.strip()])
    merged = list(heapq.merge(*per_component, key=lambda e: str(e.get("timestamp", ""))))
    return merged[-n:] if n else []


def follow(
    log_dir: Path, component: str | None, *, poll_s: float = 0.2, stop: Callable[[], bool] = lambda: False
) -> Iterator[dict[str, Any]]:
    """New entries as they are written (rotation-aware: a replaced file is reopened from its start).
    Everything already in the files when this is called counts as seen."""
    offsets: dict[Path, tuple[int, int]] = {}
    for paths in log_files(log_dir, component).values():
        current = paths[-1]
        st = current.stat()
        offsets[current] = (st.st_ino, st.st_size)
    return _follow(log_dir, component, offsets, poll_s, stop)


def _follow(
    log_dir: Path,
    component: str | None,
    offsets: dict[Path, tuple[int, int]],
    poll_s: float,
    stop: Callable[[], bool],
) -> Iterator[dict[str, Any]]:
    while not stop():
        batch: list[dict[str, Any]] = []
        for name, paths in log_files(log_dir, component).items():
            for path in (p for p in paths if p.name == f"{name}.log"):
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                inode, offset = offsets.get(path, (st.st_ino, 0))
                if inode != st.st_ino or st.st_size < offset:
                    offset = 0
                if st.st_size > offset:
                    with open(path, "rb") as fh:
                        fh.seek(offset)
                        chunk = fh.read()
                    complete = chunk.rpartition(b"\n")
                    usable = complete[0] + complete[1]
                    offset += len(usable)
                    batch.extend(
                        parse_line(line, name)
                        for line in usable.decode("utf-8", "replace").splitlines()
                        if line.strip()
                    )
                offsets[path] = (st.st_ino, offset)
        yield from sorted(batch, key=lambda e: str(e.get("timestamp", "")))
        time.sleep(poll_s)


def format_entry(entry: dict[str, Any]) -> str:
    skip = {"timestamp", "source", "level", "event", "logger"}
    extras = " ".join(
        f"{k}={v}" for k, v in entry.items() if k not in skip and not (k == "component" and v == entry.get("source"))
    )
    return (
        f"{entry.get('timestamp', '')[:23]:23} {entry.get('source', ''):10} "
        f"{entry.get('level', '')!s:7} {entry.get('event', '')} {extras}"
    ).rstrip()
