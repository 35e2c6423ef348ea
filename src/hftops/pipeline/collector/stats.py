"""The collector's counters, hop-latency window and reconnect history (published every second)."""

from __future__ import annotations

import bisect
import math
from collections import Counter, deque
from dataclasses import dataclass, field


@dataclass
class Totals:
    received: int = 0  # frames read from the venue
    forwarded: int = 0  # rows acknowledged by Redis (live + backfilled)
    duplicates: int = 0  # live trades already taken
    backfilled: int = 0  # REST rows that closed a gap or extended the feed
    reconnects: int = 0  # venue connections lost and re-opened (our own back-pressure closes excluded)
    pauses: int = 0  # reading stopped for back-pressure (buffer full, stream over cap)
    dlq: Counter[str] = field(default_factory=Counter)  # dead letters by reason
    rest_failures: Counter[str] = field(default_factory=Counter)  # by RestFailure kind
    redis_failures: int = 0
    redis_rewinds: int = 0  # times Redis came back without data we had written
    gaps_opened: int = 0
    entries: int = 0  # stream entries written

    def as_dict(self) -> dict[str, object]:
        return {
            "received": self.received,
            "forwarded": self.forwarded,
            "duplicates": self.duplicates,
            "backfilled": self.backfilled,
            "reconnects": self.reconnects,
            "pauses": self.pauses,
            "dlq": dict(self.dlq),
            "dlq_total": sum(self.dlq.values()),
            "rest_failures": dict(self.rest_failures),
            "redis_failures": self.redis_failures,
            "redis_rewinds": self.redis_rewinds,
            "gaps_opened": self.gaps_opened,
            "entries": self.entries,
        }


# Upper bounds (ms) of the cumulative hop histogram: fine around the 5 ms budget, coarse beyond.
HOP_BUCKETS_MS: tuple[float, ...] = (
    0.5,
    1,
    1.5,
    2,
    2.5,
    3,
    3.5,
    4,
    4.5,
    5,
    6,
    8,
    10,
    15,
    20,
    30,
    50,
    100,
    250,
    500,
    1000,
    math.inf,
)


class LatencyWindow:
    """Hop latencies (ns) since the last `summary()` (bounded, so a stall cannot grow it without limit),
    and a cumulative histogram since start: a p99 over any stretch of time is the difference of two
    readings, not a figure of whichever one-second window happened to be read."""

    def __init__(self, max_samples: int = 100_000) -> None:
        self._samples: deque[int] = deque(maxlen=max_samples)
        self._bounds_ns = [b * 1e6 for b in HOP_BUCKETS_MS]
        self.histogram = [0] * len(HOP_BUCKETS_MS)

    def record(self, latency_ns: int) -> None:
        self._samples.append(latency_ns)
        self.histogram[bisect.bisect_left(self._bounds_ns, latency_ns)] += 1

    def summary(self, reset: bool = True) -> dict[str, float | int | None]:
        samples = sorted(self._samples)
        if reset:
            self._samples.clear()
        if not samples:
            return {"p50": None, "p99": None, "max": None, "samples": 0}

        def pick(q: float) -> float:
            return round(samples[min(len(samples) - 1, math.ceil(q * len(samples)) - 1)] / 1e6, 3)

        return {
            "p50": pick(0.50),
            "p99": pick(0.99),
            "max": round(samples[-1] / 1e6, 3),
            "samples": len(samples),
        }

    def cumulative(self) -> dict[str, object]:
        """{"le_ms": bounds, "counts": per bucket} since start (the last bound is +inf, written null)."""
        return {"le_ms": [None if math.isinf(b) else b for b in HOP_BUCKETS_MS], "counts": list(self.histogram)}


def histogram_quantile(q: float, le_ms: list[float | None], counts: list[int]) -> float | None:
    """The upper bound (ms) of the bucket holding quantile q of `counts` (None: no samples, or +inf)."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for bound, n in zip(le_ms, counts, strict=True):
        seen += n
        if seen >= rank:
            return bound
    return None


class FlapDetector:
    """Flapping: at least `threshold` reconnects within `window_s` (monotonic seconds)."""

    def __init__(self, threshold: int = 3, window_s: float = 60.0) -> None:
        self.threshold = threshold
        self.window_s = window_s
        self._times: deque[float] = deque()

    def record(self, now_s: float) -> None:
        self._times.append(now_s)

    def flapping(self, now_s: float) -> bool:
        while self._times and now_s - self._times[0] > self.window_s:
            self._times.popleft()
        return len(self._times) >= self.threshold
