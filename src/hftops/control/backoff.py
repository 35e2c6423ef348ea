"""Restart policy of the watchdog: exponential backoff, and a start limit against restart storms."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class RestartDecision:
    restart: bool
    delay_s: float
    failures_in_window: int

    @property
    def exhausted(self) -> bool:
        return not self.restart


class RestartPolicy:
    """Failure n within the window waits initial * 2**(n-1) seconds (capped); the burst-th failure within
    `interval_s` gives up (systemd's StartLimitBurst / StartLimitIntervalSec). Time comes from the caller."""

    def __init__(self, initial_s: float, max_s: float, burst: int, interval_s: float) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.burst = burst
        self.interval_s = interval_s
        self._failures: deque[float] = deque()

    def record_failure(self, now: float) -> RestartDecision:
        while self._failures and now - self._failures[0] > self.interval_s:
            self._failures.popleft()
        self._failures.append(now)
        count = len(self._failures)
        if count >= self.burst:
            return RestartDecision(False, 0.0, count)
        return RestartDecision(True, min(self.initial_s * 2 ** (count - 1), self.max_s), count)

    def reset(self) -> None:
        """An explicit operator start forgives earlier failures."""
        self._failures.clear()

    def failures(self, now: float) -> int:
        return sum(1 for t in self._failures if now - t <= self.interval_s)
