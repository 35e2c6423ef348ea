"""Facts about a running process for status and snapshots (psutil): uptime, memory, affinity, files."""

from __future__ import annotations

import time
from typing import Any

import psutil

from hftops.control.sched import describe


def process_facts(pid: int | None, *, detailed: bool = False) -> dict[str, Any]:
    """uptime_s, rss_bytes, cpu_affinity, scheduling ('nice 5', 'fifo 10') (and, detailed, open files,
    connections, threads); {} if gone."""
    if not pid:
        return {}
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            facts: dict[str, Any] = {
                "uptime_s": round(max(0.0, time.time() - proc.create_time()), 3),
                "rss_bytes": proc.memory_info().rss,
                "cpu_affinity": proc.cpu_affinity() if hasattr(proc, "cpu_affinity") else None,
                "scheduling": describe(pid),
            }
            if detailed:
                facts["vms_bytes"] = proc.memory_info().vms
                facts["num_threads"] = proc.num_threads()
                facts["num_fds"] = proc.num_fds()
                facts["open_files"] = len(proc.open_files())
                facts["connections"] = len(proc.net_connections(kind="inet"))
                facts["cpu_times_s"] = round(sum(proc.cpu_times()[:2]), 3)
        return facts
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return {}


def available_cpus() -> set[int]:
    return set(psutil.Process().cpu_affinity() or range(psutil.cpu_count() or 1))


def hugepages() -> dict[str, Any]:
    """The HugePages_* and Hugepagesize/AnonHugePages lines of /proc/meminfo (kB values as numbers)."""
    found: dict[str, Any] = {}
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if "Huge" in key:
                    parts = value.split()
                    found[key.strip()] = int(parts[0]) if parts and parts[0].isdigit() else value.strip()
    except OSError as exc:
        found["error"] = str(exc)
    return found
