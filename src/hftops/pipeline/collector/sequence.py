"""Per-symbol trade id tracking: the next expected id, duplicates, open gaps and the contiguous mark."""

from __future__ import annotations

import bisect
from enum import Enum


class Seen(Enum):
    NEW = "new"  # at or above the next expected id (ids skipped on the way became a gap)
    FILLED = "filled"  # inside an open gap: closes part of it
    DUPLICATE = "duplicate"  # below the next expected id and not missing: already taken


class TradeSequence:
    """One symbol's trade ids. Every id below `next_id` is either taken (written or about to be) or in a gap.

    `next_id` is None until the first id (or a stored cursor) says where the feed stands.
    """

    __slots__ = ("_los", "gaps", "gaps_opened", "next_id", "origin", "symbol")

    def __init__(self, symbol: str, next_id: int | None = None) -> None:
        self.symbol = symbol
        self.next_id = next_id
        self.origin = next_id  # the lowest id this process is responsible for (re-fetched if Redis loses all)
        self.gaps: list[list[int]] = []  # sorted, disjoint, inclusive [lo, hi]
        self._los: list[int] = []  # gaps' lo values, for bisect
        self.gaps_opened = 0

    def observe(self, trade_id: int) -> Seen:
        nxt = self.next_id
        if nxt is None:
            self.next_id = trade_id + 1
            self.origin = trade_id
            return Seen.NEW
        if trade_id == nxt:
            self.next_id = trade_id + 1
            return Seen.NEW
        if trade_id > nxt:
            self.add_gap(nxt, trade_id - 1)
            self.next_id = trade_id + 1
            return Seen.NEW
        if self.gaps and self._take(trade_id):
            return Seen.FILLED
        return Seen.DUPLICATE

    @property
    def healthy(self) -> bool:
        return not self.gaps

    @property
    def missing(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self.gaps)

    def contiguous_mark(self) -> int | None:
        """The highest id such that every id <= it is taken; None when nothing is known yet."""
        if self.next_id is None:
            return None
        low = self.gaps[0][0] if self.gaps else self.next_id
        return low - 1

    def add_gap(self, lo: int, hi: int) -> None:
        """Mark [lo, hi] missing (merging with open gaps); a gap opened here is counted."""
        if hi < lo:
            return
        self.gaps_opened += 1
        merged: list[list[int]] = []
        for g_lo, g_hi in self.gaps:
            if g_hi < lo - 1 or g_lo > hi + 1:
                merged.append([g_lo, g_hi])
            else:
                lo, hi = min(lo, g_lo), max(hi, g_hi)
        merged.append([lo, hi])
        merged.sort()
        self.gaps = merged
        self._los = [g[0] for g in merged]

    def rewind(self, from_id: int) -> None:
        """Everything from `from_id` up to the last id seen is missing again (the bus lost it)."""
        if self.next_id is None:
            self.next_id = self.origin = from_id
            return
        self.add_gap(from_id, self.next_id - 1)

    def close(self, lo: int, hi: int) -> int:
        """Remove [lo, hi] from the gaps without data (ids the venue does not have); returns ids closed."""
        closed = 0
        kept: list[list[int]] = []
        for g_lo, g_hi in self.gaps:
            if g_hi < lo or g_lo > hi:
                kept.append([g_lo, g_hi])
                continue
            closed += min(g_hi, hi) - max(g_lo, lo) + 1
            if g_lo < lo:
                kept.append([g_lo, lo - 1])
            if g_hi > hi:
                kept.append([hi + 1, g_hi])
        self.gaps = kept
        self._los = [g[0] for g in kept]
        return closed

    def _take(self, trade_id: int) -> bool:
        i = bisect.bisect_right(self._los, trade_id) - 1
        if i < 0:
            return False
        gap = self.gaps[i]
        lo, hi = gap
        if trade_id > hi:
            return False
        if lo == hi:
            del self.gaps[i]
            del self._los[i]
        elif trade_id == lo:
            gap[0] = lo + 1
            self._los[i] = lo + 1
        elif trade_id == hi:
            gap[1] = hi - 1
        else:
            gap[1] = trade_id - 1
            self.gaps.insert(i + 1, [trade_id + 1, hi])
            self._los.insert(i + 1, trade_id + 1)
        return True
