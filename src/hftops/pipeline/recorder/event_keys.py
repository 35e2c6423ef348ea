"""Which event keys are already durable, per event table: stored in the database or waiting in the WAL.

The event-table counterpart of idset.IdRegistry. Event keys are strings without an order, so the
bound works on the event time instead of an id: each table holds its newest `max_keys` stored keys, and
`floor_ns` is the newest event time it let go of. An event at or before the floor may be stored without
the registry knowing, so it is checked against the table; anything newer and unknown is new. The same
key always carries the same event time (the time is part of the event), which is what makes this sound.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum


class Seen(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    ASK = "ask"  # stored state unknown: check the table before inserting


@dataclass
class TableKeys:
    stored: dict[str, int] = field(default_factory=dict)  # key -> event time, oldest first
    wal: set[str] = field(default_factory=set)
    floor_ns: int = -1


class EventKeys:
    # ~100 bytes per key: 50,000 keys per table is ~5 MB at most, and most tables hold far fewer.
    def __init__(self, max_keys: int = 50_000) -> None:
        self.max_keys = max_keys
        self.loaded = False  # False until the stored keys came from the database: every event is then asked
        self._tables: dict[str, TableKeys] = {}

    def table(self, name: str) -> TableKeys:
        found = self._tables.get(name)
        if found is None:
            found = self._tables[name] = TableKeys()
        return found

    def classify(self, table: str, key: str, time_ns: int) -> Seen:
        keys = self.table(table)
        if key in keys.stored or key in keys.wal:
            return Seen.DUPLICATE
        if not self.loaded or time_ns <= keys.floor_ns:
            return Seen.ASK
        return Seen.NEW

    def load_stored(self, table: str, newest_first: Iterable[tuple[str, int]], floor_ns: int) -> None:
        keys = self.table(table)
        keys.stored = {key: time_ns for key, time_ns in reversed(list(newest_first))}
        keys.floor_ns = max(keys.floor_ns, floor_ns)
        keys.wal.difference_update(keys.stored)  # replayed before a crash, archived after it: stored wins

    def mark_stored(self, table: str, pairs: Iterable[tuple[str, int]]) -> None:
        keys = self.table(table)
        for key, time_ns in pairs:
            keys.stored[key] = time_ns
            keys.wal.discard(key)
        if len(keys.stored) > self.max_keys:
            self._compact(keys)

    def mark_wal(self, table: str, keys: Iterable[str]) -> None:
        self.table(table).wal.update(keys)

    def drop_wal(self, table: str, keys: Iterable[str]) -> None:
        self.table(table).wal.difference_update(keys)

    def _compact(self, keys: TableKeys) -> None:
        drop = len(keys.stored) - self.max_keys // 2
        dropped = list(keys.stored.items())[:drop]
        for key, _ in dropped:
            del keys.stored[key]
        keys.floor_ns = max(keys.floor_ns, max(time_ns for _, time_ns in dropped))

    def wal_keys(self) -> dict[str, int]:
        return {name: len(keys.wal) for name, keys in sorted(self._tables.items()) if keys.wal}

    def summary(self) -> dict[str, dict[str, int]]:
        return {
            name: {"keys": len(k.stored), "wal": len(k.wal), "floor_ns": k.floor_ns}
            for name, k in sorted(self._tables.items())
        }
