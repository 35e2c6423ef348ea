"""The `autonomy:` config section and HFT_STORMGUARD_FEED_GAP_HALT_S."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hftops.config import Config
from hftops.config.autonomy import AutonomyConfig, autonomy_settings


def test_defaults_match_the_issue() -> None:
    cfg = Config().autonomy
    assert (cfg.cooldown_s, cfg.db_stale_s, cfg.feed_gap_halt_s, cfg.feed_gap_majority_fraction) == (60, 60, 30, 0.5)
    assert 0.1 <= cfg.eval_interval_s <= 1.0 and cfg.stream_backlog_fraction == 0.9


@pytest.mark.parametrize("interval", [0.05, 1.5])
def test_the_evaluation_interval_stays_between_100_ms_and_1_s(interval: float) -> None:
    with pytest.raises(ValidationError, match="eval_interval_s"):
        AutonomyConfig(eval_interval_s=interval)


def test_stormguard_feed_gap_halt_from_the_environment() -> None:
    config = Config()
    assert autonomy_settings(config, {}).feed_gap_halt_s == 30
    assert autonomy_settings(config, {"HFT_STORMGUARD_FEED_GAP_HALT_S": "45"}).feed_gap_halt_s == 45
    for bad in ("0", "-1", "soon"):
        with pytest.raises(ValueError, match="HFT_STORMGUARD_FEED_GAP_HALT_S"):
            autonomy_settings(config, {"HFT_STORMGUARD_FEED_GAP_HALT_S": bad})
