"""Session vocabulary: the phases of a trading track, how permissive each is, and why a phase changed.

Phases run INIT(0) -> PRE_OPEN(1) -> OPEN(2) -> CLOSE_ONLY(3) -> FORCE_FLAT(4) -> CLOSED(5). Config spells
them in lower case (`pre_open`), events and status in upper case (`PRE_OPEN`).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum, StrEnum
from typing import Final


class Phase(IntEnum):
    INIT = 0  # not yet evaluated (engine booting)
    PRE_OPEN = 1  # auction / before the open: no new orders, cancels allowed
    OPEN = 2  # everything passes
    CLOSE_ONLY = 3  # cancels, force-flat and orders that strictly reduce the strategy's position
    FORCE_FLAT = 4  # cancels and force-flat only; entering it flattens the track
    CLOSED = 5  # no new orders, cancels allowed

    @classmethod
    def parse(cls, name: str) -> Phase:
        """`pre_open` / `PRE_OPEN` -> Phase.PRE_OPEN; ValueError lists the valid names."""
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown phase {name!r}; use one of {CONFIG_PHASE_NAMES}") from None

    @property
    def config_name(self) -> str:
        return self.name.lower()


# Phases a schedule may name (INIT is the engine's own "not evaluated yet").
CONFIG_PHASE_NAMES: Final = tuple(p.name.lower() for p in Phase if p is not Phase.INIT)

# A symbol in several tracks gets the most permissive phase: what lets the most order kinds through.
PERMISSIVENESS: Final[dict[Phase, int]] = {
    Phase.OPEN: 5,
    Phase.CLOSE_ONLY: 4,  # reducing orders + force-flat + cancels
    Phase.FORCE_FLAT: 3,  # force-flat + cancels
    Phase.PRE_OPEN: 2,  # cancels only (ranked above CLOSED: the market is about to open)
    Phase.CLOSED: 1,
    Phase.INIT: 0,
}


def most_permissive(phases: Iterable[Phase]) -> Phase:
    best = Phase.INIT
    for phase in phases:
        if PERMISSIVENESS[phase] > PERMISSIVENESS[best]:
            best = phase
    return best


class SessionCause(StrEnum):
    """Why a track changed phase (`SessionTransition.cause`)."""

    SCHEDULE = "schedule"  # a time of the track's schedule was reached
    CALENDAR = "calendar"  # the exchange calendar (a non-trading day) decided it
    OVERRIDE = "override"  # the local override file (ad-hoc closure) changed it
    BOOT = "boot"  # the first evaluation after the engine started


CALENDAR_24_7: Final = "24/7"  # a track that trades every day, all day (crypto)
