"""`python -m hftops.venue` as a real process: signed orders over httpx, the user-data stream, faults, restart."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import msgspec
import pytest
import websockets

from hftops.venue.trading.auth import DEV_API_KEY, DEV_API_SECRET, sign
from tests.integration.venue.helpers import VenueProcess, connect
from tests.support.platform import TestPlatform as Platform
from tests.support.waiting import async_wait_for


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VenueProcess]:
    platform = Platform(tmp_path_factory.mktemp("trading"), {"simulator": {"rate": 2000, "burst_factor": 1}})
    process = VenueProcess(platform).start()
    yield process
    process.close()


@pytest.fixture
async def client(venue: VenueProcess) -> AsyncIterator[httpx.AsyncClient]:
    base = venue.platform.config.rest_base_url
    async with httpx.AsyncClient(base_url=base, headers={"X-MBX-APIKEY": DEV_API_KEY}, timeout=5) as http:
        yield http
    venue.admin("DELETE", "/admin/fault")


async def signed(
    client: httpx.AsyncClient, method: str, path: str, secret: str = DEV_API_SECRET, age_ms: int = 0, **params: Any
) -> httpx.Response:
    query = urlencode({**params, "timestamp": int(time.time() * 1000) - age_ms})
    return await client.request(method, f"{path}?{query}&signature={sign(secret, query)}")


class UserStream:
    """Every event read from the user-data stream, in order, by a background reader."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.closed = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                self.events.append(msgspec.json.decode(message))
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()

    def orders(self, order_id: int) -> list[dict[str, Any]]:
        return [e["o"] for e in self.events if e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["i"] == order_id]

    async def close(self) -> None:
        await self.ws.close()
        await self._task


async def open_stream(venue: VenueProcess, client: httpx.AsyncClient) -> UserStream:
    key = (await client.post("/fapi/v1/listenKey")).json()["listenKey"]
    return UserStream(await connect(f"{venue.ws_base}/ws/{key}"))


async def test_market_order_fills_and_the_user_stream_reports_it(
    venue: VenueProcess, client: httpx.AsyncClient
) -> None:
    stream = await open_stream(venue, client)
    placed = await signed(
        client,
        "POST",
        "/fapi/v1/order",
        symbol="BTCUSDT",
        side="BUY",
        type="MARKET",
        quantity="0.010",
        newOrderRespType="RESULT",
        newClientOrderId="it-market-1",
    )
    assert placed.status_code == 200, placed.text
    order = placed.json()
    assert order["status"] == "FILLED" and order["executedQty"] == "0.010"

    async def filled_seen() -> bool:
        return any(o["X"] == "FILLED" for o in stream.orders(order["orderId"])) and any(
            e["e"] == "ACCOUNT_UPDATE" for e in stream.events
        )

    await async_wait_for(filled_seen, 5, what="ORDER_TRADE_UPDATE FILLED and ACCOUNT_UPDATE")
    updates = stream.orders(order["orderId"])
    assert updates[0]["x"] == "NEW" and updates[0]["c"] == "it-market-1"
    assert sum(float(u["l"]) for u in updates if u["x"] == "TRADE") == pytest.approx(0.010)
    account_update = next(e for e in stream.events if e["e"] == "ACCOUNT_UPDATE")["a"]
    assert account_update["B"][0]["a"] == "USDT" and account_update["P"][0]["ps"] == "BOTH"

    truth = venue.admin("GET", "/admin/positions")["positions"]["BTCUSDT"]
    risk = (await signed(client, "GET", "/fapi/v2/positionRisk", symbol="BTCUSDT")).json()[0]
    assert risk["positionAmt"] == truth["qty"]
    trades = (await signed(client, "GET", "/fapi/v1/userTrades", symbol="BTCUSDT")).json()
    assert trades == venue.admin("GET", "/admin/fills", None)["fills"][-len(trades) :]
    await stream.close()


async def test_resting_limit_fills_when_the_market_crosses_it(venue: VenueProcess, client: httpx.AsyncClient) -> None:
    stream = await open_stream(venue, client)
    bid = venue.admin("GET", "/admin/positions")["positions"]["ETHUSDT"]["bid"]
    placed = await signed(
        client,
        "POST",
        "/fapi/v1/order",
        symbol="ETHUSDT",
        side="BUY",
        type="LIMIT",
        quantity="0.500",
        price=bid,
        timeInForce="GTC",
    )
    assert placed.status_code == 200, placed.text
    order_id = placed.json()["orderId"]

    async def filled() -> bool:
        return any(o["X"] == "FILLED" for o in stream.orders(order_id))

    await async_wait_for(filled, 20, what="the resting ETHUSDT limit to fill as the price moves")
    truth = next(o for o in venue.admin("GET", "/admin/orders")["orders"] if o["orderId"] == order_id)
    assert truth["status"] == "FILLED" and truth["executedQty"] == "0.500"
    await stream.close()


async def test_signing_failures_over_http(client: httpx.AsyncClient) -> None:
    wrong = await signed(client, "GET", "/fapi/v2/account", secret="not-the-secret")
    assert (wrong.status_code, wrong.json()["code"]) == (400, -1022)
    stale = await signed(client, "GET", "/fapi/v2/account", age_ms=60_000)
    assert (stale.status_code, stale.json()["code"]) == (400, -1021)
    unkeyed = await client.get("/fapi/v2/account", headers={"X-MBX-APIKEY": "nobody"})
    assert (unkeyed.status_code, unkeyed.json()["code"]) == (401, -2015)


async def test_drop_user_stream_then_reconnect_and_delayed_acks(venue: VenueProcess, client: httpx.AsyncClient) -> None:
    stream = await open_stream(venue, client)
    venue.admin("POST", "/admin/fault", {"fault": "drop_user_stream"})
    await asyncio.wait_for(stream.closed.wait(), 5)
    again = await open_stream(venue, client)
    venue.admin("POST", "/admin/fault", {"fault": "delay_acks", "ms": 300})
    started = time.monotonic()
    placed = await signed(
        client, "POST", "/fapi/v1/order", symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.001"
    )
    assert placed.status_code == 200 and time.monotonic() - started >= 0.3
    # the fill went out on the user stream while the ack was held back
    assert any(o["X"] == "FILLED" for o in again.orders(placed.json()["orderId"]))
    await again.close()


async def test_down_refuses_trading_and_user_streams(venue: VenueProcess, client: httpx.AsyncClient) -> None:
    stream = await open_stream(venue, client)
    venue.admin("POST", "/admin/fault", {"fault": "down", "seconds": 30})
    await asyncio.wait_for(stream.closed.wait(), 5)
    refused = await signed(client, "GET", "/fapi/v2/account")
    assert refused.status_code == 503


async def test_restart_keeps_orders_positions_and_wallet(venue: VenueProcess, client: httpx.AsyncClient) -> None:
    before = venue.admin("GET", "/admin/positions")
    orders = venue.admin("GET", "/admin/orders")["orders"]
    assert venue.stop(signal.SIGTERM) == 0
    venue.start()
    after = venue.admin("GET", "/admin/positions")
    assert after["wallet_balance"] == before["wallet_balance"]
    assert {s: p["qty"] for s, p in after["positions"].items()} == {s: p["qty"] for s, p in before["positions"].items()}
    assert venue.admin("GET", "/admin/orders")["orders"] == orders
    placed = await signed(
        client, "POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001"
    )
    assert placed.json()["orderId"] == max(o["orderId"] for o in orders) + 1
