"""The default symbol set (crypto perpetuals beside Taiwan stocks 2330/2317 and TAIFEX contracts TXFL6/MXFL6)
through the real simulated venue and collector processes: the venue serves them in Binance formats and
every published trade of every symbol reaches its stream."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from hftops.config.schema import VenueConfig
from tests.conftest import ValkeyHandle
from tests.integration.collector.helpers import trade_ids
from tests.integration.collector.test_process import NotifySocket, stats
from tests.integration.collector.test_with_venue import spawn, stop
from tests.support.platform import TestPlatform as Platform
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(90)
DEFAULT_SYMBOLS = VenueConfig().symbols


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    n = NotifySocket()
    yield n
    n.close()


def test_default_symbols_are_served_and_captured(
    platform: Platform, valkey: ValkeyHandle, notify: NotifySocket
) -> None:
    assert {"2330", "2317", "TXFL6", "MXFL6", "BTCUSDT"} <= set(DEFAULT_SYMBOLS)
    platform.update(
        {"venue": {"symbols": list(DEFAULT_SYMBOLS)}, "simulator": {"rate": 2000}, "redis": {"url": valkey.url}}
    )
    rest = httpx.Client(base_url=platform.config.rest_base_url, timeout=5)
    venue = spawn("hftops.venue", platform)
    collector = None
    try:

        def venue_up() -> bool:
            try:
                return rest.get("/fapi/v1/ping").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(venue_up, 15, what="venue REST")
        info = {s["symbol"]: s for s in rest.get("/fapi/v1/exchangeInfo").json()["symbols"]}
        assert set(DEFAULT_SYMBOLS) <= set(info)
        assert (info["2330"]["quoteAsset"], info["TXFL6"]["quoteAsset"]) == ("TWD", "TWD")
        collector = spawn("hftops.pipeline.collector", platform, NOTIFY_SOCKET=notify.path)
        wait_for(lambda: notify.saw("READY=1"), 15, what="collector READY=1")
        wait_for(
            lambda: all((stats(valkey).get("symbols", {}).get(s) or {}).get("last_id") for s in DEFAULT_SYMBOLS),
            20,
            what="a trade of every default symbol through the collector",
        )
        assert rest.post("/admin/publishing", json={"paused": True}).status_code == 200
        truth = rest.get("/admin/ground-truth").json()["symbols"]
        client = valkey.client()

        def complete() -> bool:
            return all(
                set(trade_ids(client, s)) >= set(range(t["first_id"], t["last_id"] + 1)) for s, t in truth.items()
            )

        wait_for(complete, 15, what="every published trade id of every default symbol in the streams")
        assert stats(valkey)["totals"].get("dlq_total", 0) == 0
        assert stop(collector) == 0
    finally:
        if collector is not None:
            stop(collector)
        assert stop(venue) == 0
        rest.close()
