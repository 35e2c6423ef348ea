"""Processes in tests: whether one is gone without racing its reaping; running one without the realtime privilege."""

from __future__ import annotations

import ctypes
import os
import resource

import psutil


def process_gone(pid: int) -> bool:
    """True when `pid` no longer runs: absent, or a zombie waiting for its parent.

    The process can be reaped between any two looks at /proc, so a vanished process
    while reading its status is an answer (gone), not an error.
    """
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


_PR_CAPBSET_DROP, _CAP_SYS_NICE = 24, 23


def without_realtime_privilege() -> None:
    """A subprocess `preexec_fn`: no CAP_SYS_NICE (dropped from the bounding set, so root does not get it back at
    exec) and no RLIMIT_RTPRIO, as for a user who may not run anything on SCHED_FIFO."""
    if os.geteuid() == 0 and ctypes.CDLL(None, use_errno=True).prctl(_PR_CAPBSET_DROP, _CAP_SYS_NICE, 0, 0, 0):
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP, CAP_SYS_NICE)")
    resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
