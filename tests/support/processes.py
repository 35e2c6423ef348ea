"""Ask whether a process is gone without racing its reaping."""

from __future__ import annotations

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
