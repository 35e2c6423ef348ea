"""Token bucket with an injected clock (nanoseconds), for the order-rate gate."""

from __future__ import annotations

from collections.abc import Callable


class TokenBucket:
    """`rate` tokens per second, at most `burst` stored. `try_take()` spends one token if there is one."""

    __slots__ = ("_clock", "_last_ns", "_per_ns", "burst", "rate", "tokens")

    def __init__(self, rate: float, burst: float, clock: Callable[[], int]) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"token bucket needs rate > 0 and burst >= 1, got rate={rate} burst={burst}")
        self.rate = rate
        self.burst = float(burst)
        self._per_ns = rate / 1e9
        self._clock = clock
        self.tokens = float(burst)
        self._last_ns = clock()

    def try_take(self) -> bool:
        now = self._clock()
        elapsed = now - self._last_ns
        if elapsed > 0:
            tokens = self.tokens + elapsed * self._per_ns
            self.tokens = tokens if tokens < self.burst else self.burst
            self._last_ns = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
