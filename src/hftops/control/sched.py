"""How a component's process is scheduled: niceness (with its session's autogroup) or a realtime priority.

On a box the components share, the collector's hop waits for a CPU whenever the throughput side is busy.
Niceness weighs shares, but a woken task still waits for the running one's slice to end (up to a timer
tick: 4 ms at HZ=250). SCHED_FIFO preempts at once. bench/pipeline_e2e.py on this 2-core host, 60 s per rate,
collector and Valkey on SCHED_FIFO: hop p99 <= 5 ms at 20,000 msg/s and <= 4 ms at 50,000 msg/s; on the fair
class, <= 8-10 ms. A process on SCHED_FIFO that never sleeps owns a CPU, so it is opt-in,
and the kernel's realtime throttling (kernel.sched_rt_runtime_us) is what still leaves the others a share.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

_CAP_SYS_NICE = 23
RT_RUNTIME = Path("/proc/sys/kernel/sched_rt_runtime_us")


def set_autogroup_nice(pid: int, nice: int) -> None:
    """Give `pid`'s scheduling autogroup the niceness too. Every component starts in a session of its own,
    and where the kernel groups sessions (sched_autogroup_enabled, the default of most distributions) it
    shares the CPU between the groups first: a process's own niceness then weighs only against its own
    threads, and a recorder at nice 5 took as much CPU from the collector as one at 0. No autogroups, no-op."""
    path = Path(f"/proc/{pid}/autogroup")
    if not path.exists():
        return
    path.write_text(f"{nice}\n")


def _threads(pid: int) -> list[int]:
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except FileNotFoundError:
        raise ProcessLookupError(pid) from None


def set_realtime(pid: int, priority: int) -> int:
    """SCHED_FIFO at `priority` for every thread `pid` has now (threads it starts later inherit it).
    Returns how many threads it changed. Raises PermissionError without CAP_SYS_NICE or RLIMIT_RTPRIO."""
    changed = 0
    for tid in _threads(pid):
        if os.sched_getscheduler(tid) == os.SCHED_FIFO and os.sched_getparam(tid).sched_priority == priority:
            continue
        try:
            os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
        except ProcessLookupError:
            continue  # that thread ended meanwhile
        changed += 1
    return changed


def realtime_allowed(priority: int) -> tuple[bool, str]:
    """Can this process give a child SCHED_FIFO at `priority`? (and if not, why)"""
    if _has_cap_sys_nice():
        return True, ""
    soft, _hard = resource.getrlimit(resource.RLIMIT_RTPRIO)
    if soft == resource.RLIM_INFINITY or soft >= priority:
        return True, ""
    return False, f"this user has no CAP_SYS_NICE and an RLIMIT_RTPRIO of {soft}"


def _has_cap_sys_nice() -> bool:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> _CAP_SYS_NICE & 1)
    except (OSError, ValueError):
        pass
    return False


def rt_throttled() -> bool:
    """Does the kernel keep a share of every CPU for the other classes (sched_rt_runtime_us not -1)?"""
    try:
        return int(RT_RUNTIME.read_text().strip()) >= 0
    except (OSError, ValueError):
        return True  # not Linux-like /proc: nothing to warn about that we can see


def describe(pid: int) -> str:
    """'fifo 10', 'rr 5', or 'nice 5' for the process's main thread; '' when it cannot be read."""
    try:
        policy = os.sched_getscheduler(pid)
        if policy in (os.SCHED_FIFO, os.SCHED_RR):
            name = "fifo" if policy == os.SCHED_FIFO else "rr"
            return f"{name} {os.sched_getparam(pid).sched_priority}"
        return f"nice {os.getpriority(os.PRIO_PROCESS, pid)}"
    except OSError:
        return ""
