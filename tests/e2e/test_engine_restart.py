"""kill -9 of the trading engine mid-position, through the real `trading` command and supervisor.

The supervisor restarts the engine; the new process restores its per-strategy positions from the checkpoint,
books the fills it missed from the broker's trade history, and then agrees with the venue's own record to the
unit: the same net quantity per symbol and the same fees paid (a fill booked twice or missed would show in
both), with startup reconciliation finding nothing to adopt.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
import redis

from hftops.config.paths import DataPaths
from hftops.engine.checkpoint import checkpoint_path, load_checkpoint
from hftops.model.orders import MANUAL_STRATEGY
from hftops.model.streams import STATS_HASH
from tests.support.cli import component_pid, kill9, trading, wait_restarted
from tests.support.platform import TestPlatform
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(300)

ENGINE_ON = {
    "engine": {"checkpoint_interval_s": 0.5, "recon_interval_s": 1.0},
    "supervisor": {"components": {"engine": {"enabled": True}}, "backoff_initial_s": 0.2, "backoff_max_s": 2.0},
}


class View:
    """The engine's published state (ops:stats, exec:* streams) and the venue's ground truth."""

    def __init__(self, platform: TestPlatform) -> None:
        self.config = platform.config
        self.redis = redis.Redis.from_url(platform.config.redis_url)
        self.venue = httpx.Client(base_url=platform.config.rest_base_url, timeout=5)

    def stats(self) -> dict[str, Any] | None:
        raw = self.redis.hget(STATS_HASH, "engine")
        return None if raw is None else json.loads(raw)

    def ready(self, pid: int) -> dict[str, Any] | None:
        stats = self.stats()
        return stats if stats and stats.get("pid") == pid and stats.get("ready_to_trade") else None

    def net(self) -> dict[str, Decimal]:
        stats = self.stats() or {}
        return {s: Decimal(q) for s, q in stats.get("net", {}).items() if Decimal(q) != 0}

    def venue_book(self) -> dict[str, Any]:
        return self.venue.get("/admin/positions").json()

    def venue_net(self) -> dict[str, Decimal]:
        rows = self.venue_book()["positions"]
        return {s: Decimal(r["qty"]) for s, r in rows.items() if Decimal(r["qty"]) != 0}

    def startup_recon_of_last_start(self) -> list[dict[str, Any]]:
        """The startup reconciliation decisions the newest engine process logged (the exec:recon stream is
        trimmed once the recorder has stored it, so the log is the stable place to read them)."""
        lines = (DataPaths(self.config.data_dir).log / "engine.log").read_text().splitlines()
        events = [json.loads(line) for line in lines if line.startswith("{")]
        starts = [i for i, e in enumerate(events) if e.get("event") == "checkpoint_loaded"]
        assert starts, "the restarted engine logged no checkpoint_loaded"
        return [e for e in events[starts[-1] :] if e.get("event") == "startup_recon"]

    def close(self) -> None:
        self.redis.close()
        self.venue.close()


@pytest.mark.parametrize("running_platform", [ENGINE_ON], indirect=True)
def test_kill9_engine_mid_position_restores_and_agrees_with_the_venue(running_platform: TestPlatform) -> None:
    platform = running_platform
    view = View(platform)
    checkpoint = checkpoint_path(DataPaths(platform.config.data_dir).state)
    try:
        pid = wait_for(lambda: component_pid(platform, "engine"), 60, what="engine running")
        wait_for(lambda: view.ready(pid), 60, what="engine ready to trade")

        def held_in_checkpoint() -> bool:
            body = load_checkpoint(checkpoint)
            return body is not None and any(p.qty != 0 for p in body.positions) and bool(view.net())

        wait_for(held_in_checkpoint, 90, interval_s=0.2, what="a position held and checkpointed")
        kill9(pid)
        new_pid = wait_restarted(platform, "engine", pid)
        restored = wait_for(lambda: view.ready(new_pid), 60, what="restarted engine ready to trade")
        assert not any(p["strategy"] == MANUAL_STRATEGY for p in restored["positions"]), restored["positions"]

        trading(platform, "venue", "pause", check=True)  # no new market data: the strategies go quiet

        def agree() -> bool:
            return view.net() == view.venue_net()

        wait_for(agree, 30, interval_s=0.2, what="engine net == venue positions after the restart")
        stats, book = view.stats(), view.venue_book()
        assert stats is not None
        assert abs(Decimal(stats["fees"]) - Decimal(book["fees_paid"])) < Decimal("0.000001"), (
            "a fill booked twice or missed shows in the fees",
            stats["fees"],
            book["fees_paid"],
        )
        startup = view.startup_recon_of_last_start()
        assert startup and all(e["action"] == "match" for e in startup), startup  # nothing adopted or refused
    finally:
        view.close()
