"""Trading REST of the venue in-process (ASGI): signed endpoints, Binance shapes and codes, faults, admin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import msgspec
import pytest

from hftops.config import Config
from hftops.venue.app import Venue, build_venue
from hftops.venue.rest import build_rest_app
from hftops.venue.trading.auth import DEV_API_KEY, DEV_API_SECRET, sign

NOW = 1_700_000_000_000
HEADERS = {"X-MBX-APIKEY": DEV_API_KEY}


@pytest.fixture
def venue(tmp_path: Path) -> Venue:
    config = Config.model_validate({"data_dir": str(tmp_path), "venue": {"symbols": ["BTCUSDT", "ETHUSDT"]}})
    return build_venue(config, clock=lambda: 1000.0, wall_ms=lambda: NOW)


@pytest.fixture
async def client(venue: Venue) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_rest_app(venue))
    async with httpx.AsyncClient(transport=transport, base_url="http://venue", headers=HEADERS) as http:
        yield http


async def call(
    client: httpx.AsyncClient, method: str, path: str, secret: str = DEV_API_SECRET, **params: Any
) -> httpx.Response:
    query = urlencode({**params, "timestamp": NOW})
    return await client.request(method, f"{path}?{query}&signature={sign(secret, query)}")


def error_code(response: httpx.Response) -> int:
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert set(body) == {"code", "msg"}
    return int(body["code"])


async def test_market_order_ack_result_user_trades_and_ground_truth(client: httpx.AsyncClient) -> None:
    ack = await call(client, "POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010")
    assert ack.status_code == 200, ack.text
    assert ack.json()["status"] == "NEW" and ack.json()["orderId"] == 1  # ACK is the default response type
    result = await call(
        client,
        "POST",
        "/fapi/v1/order",
        symbol="BTCUSDT",
        side="BUY",
        type="MARKET",
        quantity="0.010",
        newOrderRespType="RESULT",
        newClientOrderId="mine-1",
    )
    body = result.json()
    assert (body["status"], body["executedQty"], body["clientOrderId"], body["positionSide"]) == (
        "FILLED",
        "0.010",
        "mine-1",
        "BOTH",
    )
    trades = (await call(client, "GET", "/fapi/v1/userTrades", symbol="BTCUSDT")).json()
    assert [t["orderId"] for t in trades] == [1, 2] and trades[0]["commissionAsset"] == "USDT"
    risk = (await call(client, "GET", "/fapi/v2/positionRisk", symbol="BTCUSDT")).json()
    assert risk[0]["positionAmt"] == "0.020" and risk[0]["leverage"] == "10"
    account = (await call(client, "GET", "/fapi/v2/account")).json()
    assert {"totalWalletBalance", "availableBalance", "totalInitialMargin", "totalMaintMargin", "positions"} <= set(
        account
    )
    admin_orders = (await client.get("/admin/orders")).json()
    assert [o["status"] for o in admin_orders["orders"]] == ["FILLED", "FILLED"] and admin_orders["open"] == 0
    admin_fills = (await client.get("/admin/fills", params={"symbol": "BTCUSDT"})).json()
    assert admin_fills["fills"] == trades
    positions = (await client.get("/admin/positions")).json()
    assert positions["positions"]["BTCUSDT"]["qty"] == "0.020"


async def test_limit_rest_query_cancel_and_cancel_all(client: httpx.AsyncClient) -> None:
    placed = await call(
        client,
        "POST",
        "/fapi/v1/order",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        quantity="0.001",
        price="1000.00",
        timeInForce="GTC",
    )
    order_id = placed.json()["orderId"]
    await call(
        client,
        "POST",
        "/fapi/v1/order",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        quantity="0.001",
        price="1000.00",
        timeInForce="GTC",
        newClientOrderId="second",
    )
    assert len((await call(client, "GET", "/fapi/v1/openOrders")).json()) == 2
    queried = await call(client, "GET", "/fapi/v1/order", symbol="BTCUSDT", orderId=order_id)
    assert queried.json()["status"] == "NEW"
    canceled = await call(client, "DELETE", "/fapi/v1/order", symbol="BTCUSDT", orderId=order_id)
    assert canceled.json()["status"] == "CANCELED"
    assert error_code(await call(client, "DELETE", "/fapi/v1/order", symbol="BTCUSDT", orderId=order_id)) == -2011
    assert error_code(await call(client, "GET", "/fapi/v1/order", symbol="BTCUSDT", orderId=99)) == -2013
    done = await call(client, "DELETE", "/fapi/v1/allOpenOrders", symbol="BTCUSDT")
    assert done.json() == {"code": 200, "msg": "The operation of cancel all open order is done."}
    assert (await call(client, "GET", "/fapi/v1/openOrders", symbol="BTCUSDT")).json() == []


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"side": "BUY", "type": "MARKET", "quantity": "0.001"}, -1102),  # no symbol
        ({"symbol": "NOPEUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}, -1121),
        ({"symbol": "BTCUSDT", "side": "HOLD", "type": "MARKET", "quantity": "0.001"}, -1117),
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "STOP", "quantity": "0.001"}, -1116),
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.0001"}, -1111),
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0"}, -4003),
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "timeInForce": "GTC"}, -1102),
        (
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "quantity": "0.001",
                "price": "100.05",
                "timeInForce": "GTC",
            },
            -1013,
        ),
        (
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "quantity": "0.001",
                "price": "100",
                "timeInForce": "DAY",
            },
            -1115,
        ),
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001", "newClientOrderId": "a b"}, -4015),
        ({"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.001", "reduceOnly": "true"}, -2022),
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "100.000"}, -2019),
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001", "positionSide": "LONG"}, -4061),
    ],
)
async def test_bad_orders_get_binance_codes_and_are_recorded(
    client: httpx.AsyncClient, params: dict[str, str], code: int
) -> None:
    assert error_code(await call(client, "POST", "/fapi/v1/order", **params)) == code
    rejected = (await client.get("/admin/orders")).json()["rejected"]
    assert [r["code"] for r in rejected] == [code]


async def test_wrong_secret_wrong_key_and_listen_key(client: httpx.AsyncClient) -> None:
    assert error_code(await call(client, "GET", "/fapi/v2/account", secret="wrong")) == -1022
    response = await client.get("/fapi/v2/account", params={"timestamp": NOW}, headers={"X-MBX-APIKEY": "x"})
    assert error_code(response) == -2015
    assert error_code(await client.put("/fapi/v1/listenKey")) == -1125  # none created yet
    key = (await client.post("/fapi/v1/listenKey")).json()["listenKey"]
    assert len(key) == 64
    assert (await client.post("/fapi/v1/listenKey")).json()["listenKey"] == key  # one live key per account
    assert (await client.put("/fapi/v1/listenKey")).json() == {"listenKey": key}
    assert (await client.delete("/fapi/v1/listenKey")).json() == {}
    assert error_code(await client.post("/fapi/v1/listenKey", headers={"X-MBX-APIKEY": ""})) == -2014


async def test_leverage_endpoint(client: httpx.AsyncClient) -> None:
    body = (await call(client, "POST", "/fapi/v1/leverage", symbol="ETHUSDT", leverage=25)).json()
    assert body == {"leverage": 25, "maxNotionalValue": "1000000000", "symbol": "ETHUSDT"}
    assert error_code(await call(client, "POST", "/fapi/v1/leverage", symbol="ETHUSDT", leverage=0)) == -4028


async def test_trading_faults(client: httpx.AsyncClient) -> None:
    async def fault(body: dict[str, Any]) -> None:
        response = await client.post("/admin/fault", json=body)
        assert response.status_code == 200, response.text

    await fault({"fault": "rest_fail", "status": 503, "count": 1})
    failed = await call(client, "GET", "/fapi/v2/account")
    assert failed.status_code == 503 and failed.json()["code"] == -1001
    await fault({"fault": "malformed_json", "count": 1})
    broken = await call(client, "GET", "/fapi/v2/account")
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(broken.content)
    await fault({"fault": "position_drift", "symbol": "BTCUSDT", "qty": "0.005"})
    risk = (await call(client, "GET", "/fapi/v2/positionRisk", symbol="BTCUSDT")).json()
    assert risk[0]["positionAmt"] == "0.005"
    assert (await client.get("/admin/positions")).json()["positions"]["BTCUSDT"]["qty"] == "0.000"
    await fault({"fault": "reject_orders"})
    refused = await call(
        client, "POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001"
    )
    assert error_code(refused) == -2010
    faults = (await client.get("/admin/faults")).json()["trading"]
    assert faults["reject_orders"] == {"remaining": None} and faults["position_drift"] == {"BTCUSDT": "0.005"}
    bad = await client.post("/admin/fault", json={"fault": "position_drift", "symbol": "BTCUSDT"})
    assert bad.status_code == 400 and "qty" in bad.json()["error"]
    await client.delete("/admin/fault")
    placed = await call(client, "POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001")
    assert placed.status_code == 200


async def test_amend_all_orders_and_balance(client: httpx.AsyncClient) -> None:
    placed = await call(
        client,
        "POST",
        "/fapi/v1/order",
        symbol="ETHUSDT",
        side="SELL",
        type="LIMIT",
        quantity="0.100",
        price="9000.00",
        timeInForce="GTC",
    )
    order_id = placed.json()["orderId"]
    amended = await call(
        client,
        "PUT",
        "/fapi/v1/order",
        symbol="ETHUSDT",
        orderId=order_id,
        side="SELL",
        quantity="0.200",
        price="8000.00",
    )
    assert (amended.json()["origQty"], amended.json()["price"]) == ("0.200", "8000.00")
    missing = await call(client, "PUT", "/fapi/v1/order", symbol="ETHUSDT", orderId=order_id, side="SELL", quantity="1")
    assert error_code(missing) == -1102
    orders = (await call(client, "GET", "/fapi/v1/allOrders", symbol="ETHUSDT")).json()
    assert [o["orderId"] for o in orders] == [order_id]
    balance = (await call(client, "GET", "/fapi/v2/balance")).json()
    assert balance[0]["asset"] == "USDT" and balance[0]["balance"] == "100000.00000000"
