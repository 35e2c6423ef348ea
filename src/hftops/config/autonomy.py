"""The `autonomy:` config section: how often the engine judges its health, and every threshold it uses.

Thresholds name the figure they are compared with (`*_s` seconds, `*_bytes`, `*_fraction` of a limit);
`trading check --explain` lists them. HFT_STORMGUARD_FEED_GAP_HALT_S overrides `feed_gap_halt_s`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from hftops.config.schema import Config

ENV_FEED_GAP_HALT_S = "HFT_STORMGUARD_FEED_GAP_HALT_S"


class AutonomyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    eval_interval_s: float = Field(0.25, ge=0.1, le=1.0, description="judge the health inputs this often")
    cooldown_s: float = Field(
        60.0, ge=0, description="an auto-recoverable reason clears after its condition was clear this long"
    )
    boot_grace_s: float = Field(
        30.0, ge=0, description="after boot, health probes degrade nothing for this long (start-up transients)"
    )
    flatten_on_halt: bool = Field(True, description="entering HALT cancels every order and flattens everything")
    db_stale_s: float = Field(60.0, gt=0, description="database writes older than this: clickhouse_unhealthy")
    feed_gap_s: float = Field(10.0, gt=0, description="a symbol without a trade this long while open has a gap")
    feed_gap_majority_fraction: float = Field(
        0.5, gt=0, lt=1, description="feed_gap_majority when more than this share of active symbols have a gap"
    )
    feed_gap_halt_s: float = Field(
        30.0, gt=0, description="a majority feed gap this long while open: HALT (HFT_STORMGUARD_FEED_GAP_HALT_S)"
    )
    stream_backlog_fraction: float = Field(
        0.9, gt=0, le=1, description="queue_depth_exceeded when a stream holds more than this share of its cap"
    )
    rss_max_bytes: int = Field(2 * 1024**3, ge=64 * 1024**2, description="engine RSS above this: rss_unhealthy")
    memory_available_min_bytes: int = Field(
        256 * 1024**2, ge=0, description="host memory available below this: memory_pressure"
    )
    wal_backlog_max_bytes: int = Field(
        256 * 1024**2,
        ge=0,
        description="recorder WAL awaiting replay above this (or disk guard on): wal_backlog_unhealthy",
    )
    broker_unavailable_s: float = Field(15.0, gt=0, description="broker unreachable this long: broker_unavailable")
    redis_unhealthy_s: float = Field(5.0, gt=0, description="Redis not answering this long: redis_unhealthy")
    drawdown_max_fraction: Decimal = Field(
        Decimal("0.05"), gt=0, lt=1, description="equity this far below its peak (share of peak) is a breach"
    )
    drawdown_consecutive: int = Field(3, ge=1, description="breaches in a row that HALT with pnl_peak_drawdown")
    drawdown_min_peak: Decimal = Field(
        Decimal("1"), ge=0, description="peak equity is meaningful (drawdown judged) only at or above this"
    )
    strategy_error_burst: int = Field(5, ge=1, description="this many strategy exceptions in the window: quarantine")
    strategy_reject_burst: int = Field(200, ge=1, description="this many rejections in the window: quarantine")
    strategy_burst_window_s: float = Field(10.0, gt=0, description="window of the strategy bursts")
    log_tail_lines: int = Field(30, ge=0, le=500, description="engine log lines kept in each evidence record")


def autonomy_settings(config: Config, environ: Mapping[str, str]) -> AutonomyConfig:
    """The config section with HFT_STORMGUARD_FEED_GAP_HALT_S applied (ValueError names a bad value)."""
    raw = environ.get(ENV_FEED_GAP_HALT_S, "").strip()
    if not raw:
        return config.autonomy
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{ENV_FEED_GAP_HALT_S}={raw!r}: use a number of seconds > 0, e.g. 30")
    return config.autonomy.model_copy(update={"feed_gap_halt_s": value})
