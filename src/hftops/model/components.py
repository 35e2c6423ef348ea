"""Component names in start order (stop order is the reverse; consumers stop before producers)."""

from __future__ import annotations

from typing import Final

REDIS: Final = "redis"
VENUE: Final = "venue"
COLLECTOR: Final = "collector"
RECORDER: Final = "recorder"
ENGINE: Final = "engine"
API: Final = "api"

# Dependency order. Later issues insert their components (engine) here; nothing else hard-codes the order.
COMPONENT_NAMES: Final[tuple[str, ...]] = (REDIS, VENUE, COLLECTOR, RECORDER, ENGINE, API)
