"""Which venue ids are already durable, per (venue, kind, symbol): stored in the database or waiting in the WAL.

Every batch is filtered against it before insert, which makes re-delivery after kill -9, collector re-sends
and replays idempotent (insert tokens only cover retries inside one process). It is loaded at start with
one SQL per table, and bounded: past `max_ranges` ranges per key the oldest are dropped and ids at or
below the resulting `floor` are checked against the database instead (only old data replayed by hand).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from hftops.model.market import BboRow, TradeRow
from hftops.model.streams import MdKind
from hftops.pipeline.intervals import IdRanges


class Key(NamedTuple):
    venue: str
    kind: MdKind
    symbol: str

    def text(self) -> str:
        return f"{self.venue}:{self.kind.value}:{self.symbol}"

    @classmethod
    def parse(cls, text: str) -> Key:
        venue, kind, symbol = text.split(":")
        return cls(venue, MdKind(kind), symbol)


@dataclass
class KeyIds:
    stored: IdRanges = field(default_factory=IdRanges)
    wal: IdRanges = field(default_factory=IdRanges)
    floor: int = -1  # ids <= floor are not tracked in memory: ask the database

    def top(self) -> int:
        stored = self.stored.max
        wal = self.wal.max
        return max(self.floor, -1 if stored is None else stored, -1 if wal is None else wal)


@dataclass
class Filtered:
    """The rows of one entry that are new, the count of known duplicates, and ids to check in the database."""

    rows: list[TradeRow] | list[BboRow]
    duplicates: int
    recheck: list[int]


def _id(row: TradeRow | BboRow) -> int:
    return row.trade_id if isinstance(row, TradeRow) else row.update_id


class IdRegistry:
    # Sequential ids (trades; the simulator's book ids) stay a handful of ranges. Venues whose book ids
    # have gaps (Binance `u`) make one range per row: the cap keeps that to ~1.5 MB per key.
    def __init__(self, max_ranges: int = 20_000) -> None:
        self.max_ranges = max_ranges
        self.loaded = False  # False until the stored ids came from the database: every row is then rechecked
        self._keys: dict[Key, KeyIds] = {}

    def ids(self, key: Key) -> KeyIds:
        found = self._keys.get(key)
        if found is None:
            found = self._keys[key] = KeyIds()
        return found

    def keys(self) -> list[Key]:
        return list(self._keys)

    # -- loading ---------------------------------------------------------------------------------

    def load_stored(self, key: Key, ranges: Iterable[tuple[int, int]], floor: int = -1) -> None:
        ids = self.ids(key)
        ids.stored = IdRanges(ranges)
        ids.floor = floor
        ids.wal = ids.wal.difference(ids.stored)  # replayed before a crash, archived after it: stored wins

    # -- filtering -------------------------------------------------------------------------------

    def filter(
        self,
        key: Key,
        rows: Sequence[TradeRow | BboRow],
        lo: int,
        ordered: bool,
        batch: IdRanges,
        row_ids: Sequence[int] | None = None,
    ) -> Filtered:
        """Keep rows not yet durable and not earlier in this batch; `batch` collects what is kept.

        Fast path: an entry whose ids are strictly increasing and all above everything known needs no
        per-row look-up. `row_ids`, when given, are the rows' ids in order (saves reading them again).
        """
        ids = self.ids(key)
        batch_top = batch.max if batch.max is not None else -1
        if self.loaded and ordered and lo > ids.top() and lo > batch_top:
            hi = _id(rows[-1])
            if hi - lo + 1 == len(rows):
                batch.add_range(lo, hi)
            else:
                batch.extend_ascending(row_ids if row_ids is not None else map(_id, rows))
            return Filtered(rows if isinstance(rows, list) else list(rows), 0, [])  # type: ignore[arg-type]
        kept: list[TradeRow | BboRow] = []
        recheck: list[int] = []
        duplicates = 0
        for row in rows:
            venue_id = _id(row)
            if venue_id in batch or venue_id in ids.stored or venue_id in ids.wal:
                duplicates += 1
                continue
            if not self.loaded or venue_id <= ids.floor:
                recheck.append(venue_id)
            batch.add(venue_id)
            kept.append(row)
        return Filtered(kept, duplicates, recheck)  # type: ignore[arg-type]

    def in_stored(self, key: Key, venue_id: int) -> bool:
        return venue_id in self.ids(key).stored

    def below_floor(self, key: Key, venue_id: int) -> bool:
        return not self.loaded or venue_id <= self.ids(key).floor

    # -- durable transitions -----------------------------------------------------------------------

    def mark_stored(self, key: Key, ranges: IdRanges) -> None:
        ids = self.ids(key)
        for lo, hi in ranges.ranges():
            ids.stored.add_range(lo, hi)
        if ids.wal:
            ids.wal = ids.wal.difference(ranges)
        if ids.stored.range_count > self.max_ranges:
            self._compact(ids)

    def mark_wal(self, key: Key, ranges: IdRanges) -> None:
        ids = self.ids(key)
        for lo, hi in ranges.ranges():
            ids.wal.add_range(lo, hi)

    def drop_wal(self, key: Key, ranges: IdRanges) -> None:
        """These ids left the WAL (stored, dead-lettered, or about to be re-written as a new record)."""
        ids = self.ids(key)
        if ids.wal:
            ids.wal = ids.wal.difference(ranges)

    def _compact(self, ids: KeyIds) -> None:
        keep = self.max_ranges // 2
        pairs = list(ids.stored.ranges())
        dropped, kept = pairs[:-keep], pairs[-keep:]
        ids.floor = max(ids.floor, dropped[-1][1])
        ids.stored = IdRanges(kept)

    # -- reporting -------------------------------------------------------------------------------

    def wal_ids(self) -> dict[str, list[list[int]]]:
        return {key.text(): ids.wal.to_list() for key, ids in sorted(self._keys.items()) if ids.wal}

    def stored_summary(self) -> dict[str, dict[str, int]]:
        return {
            key.text(): {"ranges": ids.stored.range_count, "max": ids.stored.max or -1, "floor": ids.floor}
            for key, ids in sorted(self._keys.items())
        }


def strictly_increasing(ids: Sequence[int]) -> bool:
    """Checked in C: sequential ids (trades) against a range, gapped ones (Binance book `u`) by sorting."""
    if not ids:
        return True
    ids = ids if isinstance(ids, list) else list(ids)
    if ids[-1] - ids[0] == len(ids) - 1 and ids == list(range(ids[0], ids[-1] + 1)):
        return True
    return ids == sorted(ids) and len(set(ids)) == len(ids)
