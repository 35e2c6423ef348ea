"""The margin monitor against the simulated venue's real account (GET /fapi/v2/account): a position whose
margin need is moved by the leverage walks through OK -> warning -> critical -> recovery; the real autonomy
controller goes REDUCE_ONLY on margin_critical and back after its cooldown; alerts reach a stand-in
Telegram; a venue answering 500 changes nothing and is counted."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import pytest

from hftops.config.flatten_margin import MarginConfig
from hftops.execution import BinanceFuturesRest, build_execution
from hftops.model.ops_events import MarginEvent
from hftops.notify import build_notifier
from hftops.ops.autonomy_state import AutonomyController
from hftops.ops.margin_monitor import MarginLevel, MarginMonitor
from hftops.ops.modes import Mode
from hftops.ops.reasons import Reason
from tests.integration.venue.helpers import VenueProcess
from tests.support.platform import TestPlatform
from tests.support.telegram_stub import TelegramStub
from tests.support.waiting import async_wait_for

pytestmark = pytest.mark.timeout(120)

# 0.1 BTC (~6,000 USDT) on a 10,000 USDT wallet: leverage 10 uses ~0.06 of what is available, 3 ~0.25, 1 ~1.5
THRESHOLDS = MarginConfig.model_validate({"recovery_ratio": "0.1", "warning_ratio": "0.2", "critical_ratio": "0.9"})


@pytest.fixture(scope="module")
def telegram() -> Iterator[TelegramStub]:
    stub = TelegramStub().start()
    try:
        yield stub
    finally:
        stub.stop()


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory, telegram: TelegramStub) -> Iterator[VenueProcess]:
    platform = TestPlatform(
        tmp_path_factory.mktemp("margin"),
        {
            "venue": {"symbols": ["BTCUSDT"]},
            "simulator": {"rate": 200, "wallet_usdt": 10_000},
            "notify": {"telegram": {"enabled": True, "base_url": telegram.base_url, "min_interval_s": 0}},
        },
    )
    process = VenueProcess(platform).start()
    yield process
    process.close()


@pytest.fixture
async def rest(venue: VenueProcess) -> AsyncIterator[BinanceFuturesRest]:
    client = build_execution(venue.platform.config, environ={}, session="margin").rest
    await client.sync_time()
    yield client
    venue.admin("DELETE", "/admin/fault")
    await client.aclose()


async def test_margin_levels_drive_reduce_only_and_alerts(
    venue: VenueProcess, rest: BinanceFuturesRest, telegram: TelegramStub
) -> None:
    autonomy = AutonomyController(clock=time.time_ns, cooldown_s=0.3, boot_grace_s=0)
    notifier = build_notifier(venue.platform.config, telegram.env(), time.time_ns, host="test")
    stopping = asyncio.Event()
    sending = asyncio.create_task(notifier.run(stopping))
    events: list[MarginEvent] = []
    monitor = MarginMonitor(rest, autonomy, notifier, time.time_ns, config=THRESHOLDS, publish=events.append)
    try:
        await rest.place_order(
            symbol="BTCUSDT",
            side="BUY",
            order_type="MARKET",
            quantity=Decimal("0.100"),
            client_order_id="margin-open-1",
        )

        async def at(leverage: int) -> MarginLevel:
            await rest.set_leverage("BTCUSDT", leverage)
            return await monitor.poll()

        assert await at(10) is MarginLevel.OK
        assert await at(3) is MarginLevel.WARNING
        assert await at(3) is MarginLevel.WARNING
        assert await at(1) is MarginLevel.CRITICAL
        assert autonomy.mode is Mode.PLATFORM_REDUCE_ONLY and autonomy.active(Reason.MARGIN_CRITICAL) is not None
        assert await at(3) is MarginLevel.WARNING  # critical cleared; the episode (and its one warning) goes on
        assert await at(10) is MarginLevel.OK
        assert monitor.counters == {**monitor.counters, "warnings": 1, "criticals": 1, "recoveries": 1, "errors": 0}
        await asyncio.sleep(0.35)
        autonomy.poll()
        assert autonomy.mode is Mode.NORMAL  # margin_critical is auto-recoverable: clear for its cooldown

        async def three_alerts() -> bool:
            return len(telegram.texts()) >= 3

        await async_wait_for(three_alerts, 10, what="three alerts at Telegram")
        texts = telegram.texts()
        assert sum("margin warning" in t for t in texts) == 1
        assert any(t.startswith("🚨 CRITICAL") and "MARGIN CRITICAL" in t and "REDUCE_ONLY" in t for t in texts)
        assert any("margin recovered" in t for t in texts)
        assert [e.level for e in events] == ["ok", "warning", "critical", "warning", "ok"]

        venue.admin("POST", "/admin/fault", {"fault": "rest_fail", "status": 500})  # every REST call fails
        assert await monitor.poll() is MarginLevel.OK  # unchanged
        assert monitor.counters["errors"] == 1 and "500" in monitor.last_error
        assert events[-1].level == "error" and autonomy.mode is Mode.NORMAL
    finally:
        venue.admin("DELETE", "/admin/fault")
        with contextlib.suppress(Exception):
            await rest.place_order(
                symbol="BTCUSDT",
                side="SELL",
                order_type="MARKET",
                quantity=Decimal("0.100"),
                client_order_id="margin-close-1",
                reduce_only=True,
            )
        stopping.set()
        await sending
