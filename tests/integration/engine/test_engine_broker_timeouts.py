"""The engine trading through broker answers slower than its REST timeout (the venue's `delay_acks` fault):
no order is put on the book twice, every order takes only legal steps, and positions stay equal to the
venue's. A cancel may reach the venue before its own order's answer: the router holds it until the order is
there, so no quote is left resting unseen."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ValkeyHandle
from tests.integration.engine.helpers import ENGINE_OVERRIDES, World
from tests.support.platform import TestPlatform
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(180)
REST_TIMEOUT_S = 0.5


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root: Path = tmp_path_factory.mktemp("engine_timeouts")
    valkey = ValkeyHandle(root / "valkey")
    overrides = {**ENGINE_OVERRIDES, "redis": {"url": valkey.url}, "broker": {"timeout_s": REST_TIMEOUT_S}}
    built = World(TestPlatform(root, overrides))
    try:
        yield built
    finally:
        built.close()
        valkey.stop(kill=True)


def test_answers_later_than_the_rest_timeout_never_duplicate_orders_or_corrupt_positions(world: World) -> None:
    world.start_engine()
    world.wait_ready()
    orders_before = len(world.venue_orders()["orders"])
    world.venue.admin("POST", "/admin/fault", {"fault": "delay_acks", "ms": int(REST_TIMEOUT_S * 1000 * 1.6)})
    try:
        wait_for(
            lambda: len(world.venue_orders()["orders"]) >= orders_before + 12,
            60,
            interval_s=0.2,
            what="the engine trading through late answers",
        )
    finally:
        world.venue.admin("DELETE", "/admin/fault")
    world.venue.admin("POST", "/admin/publishing", {"paused": True})
    try:
        wait_for(world.net_matches_venue, 20, what="engine net == venue positions after late answers")
        stats = world.stats()
        assert stats is not None and stats["ready_to_trade"]
        router = stats["execution"]["router"]
        assert router["illegal_transitions"] == 0 and router["copies"] == 0, router
        assert stats["counters"]["invalid_updates"] == 0, stats["counters"]
        reused = [
            cid for cid, n in Counter(o["clientOrderId"] for o in world.venue_orders()["orders"]).items() if n > 1
        ]
        assert reused == []  # a blind resend would have put a second copy of some order on the book
    finally:
        world.venue.admin("POST", "/admin/publishing", {"paused": False})
    assert world.stop_engine() == 0
    assert world.venue_orders()["open"] == 0  # nothing of ours left resting, seen or unseen
