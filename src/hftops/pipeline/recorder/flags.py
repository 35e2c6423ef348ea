"""State the recorder's tasks share, and the one way they react to Redis failing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from hftops.pipeline.recorder.metrics import RecorderMetrics


@dataclass
class RunFlags:
    stopping: bool = False  # SIGTERM/SIGINT: finish what is in hand, read nothing new
    abandon: bool = False  # the stop deadline passed: drop unfinished batches (they stay pending in Redis)
    redis_ok: bool = False


async def redis_failed(
    flags: RunFlags,
    metrics: RecorderMetrics,
    log: structlog.stdlib.BoundLogger,
    url: str,
    what: str,
    exc: BaseException,
) -> None:
    """Count, log once per outage, back off. Unacked entries stay pending, so nothing is lost meanwhile."""
    metrics.redis_error()
    if flags.redis_ok:
        log.warning(
            "redis_failing", during=what, url=url, error=str(exc), action="retrying; unacked entries stay pending"
        )
    flags.redis_ok = False
    await asyncio.sleep(0.5)
