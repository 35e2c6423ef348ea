"""A small trading world for engine tests: valkey, the simulated venue, the collector and the engine, each a
real process; helpers to read the engine's `ops:stats` and `exec:*` streams and the venue's ground truth."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import redis

from hftops.config.paths import DataPaths
from hftops.engine.checkpoint import checkpoint_path
from hftops.model.streams import STATS_HASH, ExecKind, exec_stream
from tests.integration.venue.helpers import NotifySocket, VenueProcess
from tests.support.platform import TestPlatform
from tests.support.waiting import wait_for

ENGINE_OVERRIDES: dict[str, Any] = {
    "simulator": {"rate": 400},
    "engine": {"checkpoint_interval_s": 1.0, "recon_interval_s": 1.0, "recon_drift_checks": 2},
    "supervisor": {"components": {"engine": {"enabled": True}}},
}


class Child:
    """One `python -m <module>` child of the test, output in <root>/<name>.out."""

    def __init__(
        self, platform: TestPlatform, module: str, name: str, notify: NotifySocket | None = None, **env: str
    ) -> None:
        self.name = name
        self.out = platform.root / f"{name}.out"
        extra = {"NOTIFY_SOCKET": notify.path} if notify else {}
        with open(self.out, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", module], env=platform.env(**extra, **env), stdout=log, stderr=subprocess.STDOUT
            )

    def alive(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited {self.process.returncode}: {self.out.read_text()[-3000:]}")
        return True

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 8.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"{self.name} did not exit within {timeout}s of signal {sig}") from None


class World:
    def __init__(self, platform: TestPlatform) -> None:
        self.platform = platform
        self.config = platform.config
        self.redis = redis.Redis.from_url(self.config.redis_url)
        self.venue = VenueProcess(platform).start()
        self.collector = Child(platform, "hftops.pipeline.collector", "collector")
        self.checkpoint: Path = checkpoint_path(DataPaths(self.config.data_dir).state)
        self.engine: Child | None = None
        self.notify: NotifySocket | None = None

    # --- engine process ---
    def start_engine(self, ready: bool = True, **env: str) -> Child:
        self.redis.hdel(STATS_HASH, "engine")
        self.notify = NotifySocket()
        self.engine = Child(self.platform, "hftops.engine", "engine", self.notify, **env)
        if ready:
            wait_for(
                lambda: (
                    self.engine is not None
                    and self.engine.alive()
                    and self.notify is not None
                    and self.notify.count("READY=1")
                ),
                30,
                what="engine READY=1",
            )
        return self.engine

    def stop_engine(self, sig: int = signal.SIGTERM, timeout: float = 8.0) -> int:
        assert self.engine is not None
        code = self.engine.stop(sig, timeout)
        if self.notify is not None:
            self.notify.close()
        self.engine = self.notify = None
        return code

    def wait_ready(self, timeout_s: float = 15.0) -> dict[str, Any]:
        """The engine's stats once it says ready_to_trade; on timeout the error shows its stats and log."""
        try:
            wait_for(lambda: (self.stats() or {}).get("ready_to_trade"), timeout_s, what="engine ready_to_trade")
        except AssertionError as exc:
            log = DataPaths(self.config.data_dir).log / "engine.log"
            tail = log.read_text()[-3000:] if log.exists() else ""
            raise AssertionError(f"{exc}\nstats: {self.stats()}\nengine.log tail:\n{tail}") from None
        stats = self.stats()
        assert stats is not None
        return stats

    # --- reads ---
    def stats(self) -> dict[str, Any] | None:
        raw = self.redis.hget(STATS_HASH, "engine")
        return None if raw is None else json.loads(raw)

    def events(self, kind: ExecKind) -> list[dict[bytes, bytes]]:
        return [fields for _, fields in self.redis.xrange(exec_stream(self.config.venue.name, kind))]

    def decoded(self, kind: ExecKind, struct: type) -> list[Any]:
        return [msgspec.msgpack.decode(f[b"d"], type=struct) for f in self.events(kind)]

    def venue_positions(self) -> dict[str, Decimal]:
        rows = self.venue.admin("GET", "/admin/positions")["positions"]
        return {symbol: Decimal(row["qty"]) for symbol, row in rows.items()}

    def venue_fills(self) -> list[dict[str, Any]]:
        return self.venue.admin("GET", "/admin/fills")["fills"]

    def venue_orders(self) -> dict[str, Any]:
        return self.venue.admin("GET", "/admin/orders")

    def engine_net(self) -> dict[str, Decimal] | None:
        stats = self.stats()
        return None if stats is None else {s: Decimal(q) for s, q in stats["net"].items()}

    def net_matches_venue(self) -> bool:
        net = self.engine_net()
        if net is None:
            return False
        venue = self.venue_positions()
        return all(net.get(s, Decimal(0)) == venue.get(s, Decimal(0)) for s in set(net) | set(venue))

    def close(self) -> None:
        if self.engine is not None:
            self.engine.process.kill()
            self.engine.process.wait()
        if self.notify is not None:
            self.notify.close()
        self.collector.process.kill()
        self.collector.process.wait()
        self.venue.close()
        self.redis.close()
