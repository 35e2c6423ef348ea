"""The database fault switch for drills and tests: the file <data>/state/faults/clickhouse_down present = down."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from hftops.config.paths import DataPaths
from hftops.store.errors import DatabaseUnavailable

CLICKHOUSE_DOWN: Final = "clickhouse_down"


class FaultSwitch:
    """Checked before every insert; one stat() call, so it costs microseconds."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_paths(cls, paths: DataPaths) -> FaultSwitch:
        return cls(paths.faults / CLICKHOUSE_DOWN)

    def is_down(self) -> bool:
        return os.path.exists(self.path)

    def raise_if_down(self, store: str) -> None:
        """What every backend calls before an insert or a health probe."""
        if self.is_down():
            raise DatabaseUnavailable(f"{store}: fault switch {self.path} is on (clear it with `trading db fault up`)")

    def set_down(self, down: bool, reason: str = "") -> None:
        if down:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(reason or "database fault switch on\n")
        else:
            self.path.unlink(missing_ok=True)
