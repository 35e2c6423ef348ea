"""Autonomy modes, from least to most restrictive (the ladder of DESIGN rule 6)."""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    NORMAL = "NORMAL"
    STRATEGY_QUARANTINED = "STRATEGY_QUARANTINED"  # one or more strategies: only cancels and reducing orders
    PLATFORM_REDUCE_ONLY = "PLATFORM_REDUCE_ONLY"  # no order when flat, reducing orders clamped, never a flip
    HALT = "HALT"  # only cancels and flatten orders; never recovers by itself

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Mode.NORMAL: 0, Mode.STRATEGY_QUARANTINED: 1, Mode.PLATFORM_REDUCE_ONLY: 2, Mode.HALT: 3}


class Scope(StrEnum):
    PLATFORM = "platform"
    STRATEGY = "strategy"
