"""Where every piece of state lives under $HFT_DATA_DIR; nothing is written relative to the working directory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DataPaths:
    root: Path

    @property
    def redis(self) -> Path:
        return self.root / "redis"

    @property
    def clickhouse(self) -> Path:
        return self.root / "clickhouse"

    @property
    def wal(self) -> Path:
        return self.root / "wal"

    @property
    def wal_archive(self) -> Path:
        return self.root / "wal" / "archive"

    @property
    def dlq(self) -> Path:
        return self.root / "dlq"

    @property
    def log(self) -> Path:
        return self.root / "log"

    @property
    def audit(self) -> Path:
        return self.root / "audit"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def faults(self) -> Path:
        """Fault switches for drills and tests (a file present = the fault is on)."""
        return self.root / "state" / "faults"

    @property
    def venue_state(self) -> Path:
        return self.root / "state" / "venue"

    @property
    def snapshots(self) -> Path:
        return self.root / "snapshots"

    @property
    def run(self) -> Path:
        """PID files: $XDG_RUNTIME_DIR/trading_pipeline when set, else $HFT_DATA_DIR/run."""
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        return Path(runtime) / "trading_pipeline" if runtime else self.root / "run"

    def ensure(self) -> DataPaths:
        for path in (
            self.redis,
            self.clickhouse,
            self.wal,
            self.wal_archive,
            self.dlq,
            self.log,
            self.audit,
            self.state,
            self.faults,
            self.venue_state,
            self.snapshots,
        ):
            path.mkdir(parents=True, exist_ok=True)
        self.run.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.run, 0o700)
        return self
