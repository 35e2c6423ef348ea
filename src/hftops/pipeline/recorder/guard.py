"""Disk guard: above the WAL size limit or below the free-space floor, stop writing the WAL and acking.

Data then stays in Redis (producers apply back-pressure), which is bounded and visible, instead of a
disk filling up. It releases with hysteresis so it does not flap at the threshold.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path


class GuardActive(Exception):
    """The disk guard is on: nothing may be written to the WAL, so nothing may be acked."""


class DiskGuard:
    def __init__(
        self,
        wal_dir: Path,
        wal_max_bytes: int,
        free_min_bytes: int,
        hysteresis: float,
        free_bytes: Callable[[], int] | None = None,
    ) -> None:
        self.wal_max_bytes = wal_max_bytes
        self.free_min_bytes = free_min_bytes
        self.hysteresis = hysteresis
        self._free_bytes = free_bytes or (lambda: shutil.disk_usage(wal_dir).free)
        self.active = False
        self.reason = ""
        self.free = -1

    def update(self, wal_bytes: int) -> bool:
        """Re-evaluate; returns True when the state changed."""
        try:
            self.free = self._free_bytes()
        except OSError:
            self.free = 0  # a WAL directory we cannot stat is not one to write to
        if not self.active:
            reasons = []
            if wal_bytes > self.wal_max_bytes:
                reasons.append(f"WAL holds {wal_bytes} bytes, above recorder.wal_max_bytes={self.wal_max_bytes}")
            if self.free < self.free_min_bytes:
                reasons.append(
                    f"{self.free} bytes free on the WAL disk, below recorder.disk_free_min_bytes={self.free_min_bytes}"
                )
            if reasons:
                self.active, self.reason = True, "; ".join(reasons)
                return True
            return False
        wal_ok = wal_bytes <= self.wal_max_bytes * (1 - self.hysteresis)
        free_ok = self.free >= self.free_min_bytes * (1 + self.hysteresis)
        if wal_ok and free_ok:
            self.active, self.reason = False, ""
            return True
        return False

    def as_dict(self) -> dict[str, object]:
        return {
            "active": self.active,
            "reason": self.reason,
            "free_bytes": self.free,
            "wal_max_bytes": self.wal_max_bytes,
            "disk_free_min_bytes": self.free_min_bytes,
        }
