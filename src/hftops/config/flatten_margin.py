"""The `flatten:` and `margin:` config sections: the position flattener's deadline and retry pace, and the
margin monitor's polling and thresholds (HFT_FLATTEN__DEADLINE_S, HFT_MARGIN__CRITICAL_RATIO, ...)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FlattenConfig(BaseModel):
    """`trading flatten`, HALT and FORCE_FLAT close positions with reduce-only market orders until the
    broker confirms them flat; anything still open after `deadline_s` is a failure (critical alert, HALT)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deadline_s: float = Field(120.0, gt=0, le=3600, description="default deadline of a flatten (--deadline)")
    retry_initial_s: float = Field(0.1, gt=0, le=60, description="first wait before retrying what remains (doubles)")
    retry_max_s: float = Field(2.0, gt=0, le=300, description="cap of the retry wait")
    settle_timeout_s: float = Field(
        2.0, gt=0, le=60, description="wait this long for a flatten order's fills before resyncing with the broker"
    )

    @model_validator(mode="after")
    def _retry_order(self) -> FlattenConfig:
        if self.retry_initial_s > self.retry_max_s:
            raise ValueError(
                f"flatten.retry_initial_s ({self.retry_initial_s}) must not exceed flatten.retry_max_s "
                f"({self.retry_max_s})"
            )
        return self


class MarginConfig(BaseModel):
    """Margin monitor: ratio = margin in use (totalInitialMargin) / available (availableBalance), as the issue
    defines it. warning_ratio: one warning per episode; critical_ratio or available <= 0: REDUCE_ONLY."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="poll the broker's account (GET /fapi/v2/account)")
    poll_interval_s: float = Field(5.0, ge=0.1, le=300, description="poll the account this often")
    warning_ratio: Decimal = Field(Decimal("0.8"), gt=0, description="used/available at or above: a warning")
    critical_ratio: Decimal = Field(
        Decimal("0.9"), gt=0, description="used/available at or above: REDUCE_ONLY margin_critical + critical alert"
    )
    recovery_ratio: Decimal = Field(
        Decimal("0.75"), gt=0, description="an episode ends (one warning each) only below this ratio: hysteresis"
    )

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> MarginConfig:
        if not self.recovery_ratio <= self.warning_ratio < self.critical_ratio:
            raise ValueError(
                f"margin ratios must be ordered recovery_ratio <= warning_ratio < critical_ratio, got "
                f"{self.recovery_ratio}, {self.warning_ratio}, {self.critical_ratio}"
            )
        return self
