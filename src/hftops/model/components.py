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

# What each component needs ready before it starts; the supervisor starts the others at the same time (the
# recorder, a consumer, does not wait for the collector, nor the engine for either). A component not listed
# here waits for every component before it in COMPONENT_NAMES (the API: all of them). Stopping always
# follows the reverse of COMPONENT_NAMES.
NEEDS: Final[dict[str, tuple[str, ...]]] = {
    REDIS: (),
    VENUE: (),
    COLLECTOR: (REDIS, VENUE),
    RECORDER: (REDIS,),
    ENGINE: (REDIS, VENUE),
}


def needs_of(name: str, present: tuple[str, ...]) -> tuple[str, ...]:
    """The components of `present` (in start order) that `name` must see ready before it starts."""
    if name in NEEDS:
        return tuple(n for n in NEEDS[name] if n in present)
    earlier = present[: present.index(name)] if name in present else present
    return tuple(earlier)
