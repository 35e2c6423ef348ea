"""REST and admin API of the venue, in-process (ASGI) over a market stepped by a controlled clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import pytest

from hftops.config import Config
from hftops.model.binance import BinanceError, RestAggTrade, RestHistoricalTrade
from hftops.venue.app import Venue, build_venue
from hftops.venue.hub import parse_path
from hftops.venue.rest import build_rest_app
from hftops.venue.wire import StreamError, StreamKind, StreamName


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def venue(tmp_path: Path) -> Venue:
    config = Config.model_validate(
        {
            "data_dir": str(tmp_path),
            "venue": {"symbols": ["BTCUSDT", "ETHUSDT"]},
            "simulator": {"rate": 20_000, "burst_factor": 1},
        }
    )
    clock = Clock()
    built = build_venue(config, clock=clock, wall_ms=lambda: 1_700_000_000_000)
    built.market.step(clock.now, 0)
    while built.market.published("BTCUSDT") < 2500:
        clock.now += 0.01
        built.market.step(clock.now, int(clock.now * 1000))
    return built


@pytest.fixture
async def client(venue: Venue) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_rest_app(venue))
    async with httpx.AsyncClient(transport=transport, base_url="http://venue") as http:
        yield http


def _ids(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [t.a for t in msgspec.json.decode(response.content, type=list[RestAggTrade])]


async def test_agg_trades_pages_by_from_id_inclusive(client: httpx.AsyncClient, venue: Venue) -> None:
    assert _ids(await client.get("/fapi/v1/aggTrades", params={"symbol": "BTCUSDT", "fromId": 7, "limit": 3})) == [
        7,
        8,
        9,
    ]
    page = _ids(await client.get("/fapi/v1/aggTrades", params={"symbol": "BTCUSDT", "fromId": 1}))
    assert page == list(range(1, 501))  # default limit 500
    big = _ids(await client.get("/fapi/v1/aggTrades", params={"symbol": "BTCUSDT", "fromId": 1, "limit": 1000}))
    assert big == list(range(1, 1001))
    last = venue.market.published("BTCUSDT")
    recent = _ids(await client.get("/fapi/v1/aggTrades", params={"symbol": "BTCUSDT", "limit": 5}))
    assert recent == list(range(last - 4, last + 1))
    assert _ids(await client.get("/fapi/v1/aggTrades", params={"symbol": "BTCUSDT", "fromId": last + 1})) == []


async def test_rest_rows_match_the_ground_truth(client: httpx.AsyncClient, venue: Venue) -> None:
    response = await client.get("/api/v3/historicalTrades", params={"symbol": "ETHUSDT", "fromId": 10, "limit": 2})
    trades = msgspec.json.decode(response.content, type=list[RestHistoricalTrade])
    rows = list(venue.ground_truth["ETHUSDT"].rows(10, 11))
    assert [(t.id, t.price, t.qty, t.time, t.isBuyerMaker) for t in trades] == [
        (i, f"{p / 100:.2f}", f"{q / 1000:.3f}", ms, m) for i, p, ms, q, m in rows
    ]


@pytest.mark.parametrize(
    "params, code",
    [
        ({}, -1102),
        ({"symbol": "DOGEUSDT"}, -1121),
        ({"symbol": "btcusdt"}, -1121),
        ({"symbol": "BTCUSDT", "limit": "1001"}, -1130),
        ({"symbol": "BTCUSDT", "limit": "0"}, -1130),
        ({"symbol": "BTCUSDT", "limit": "ten"}, -1100),
        ({"symbol": "BTCUSDT", "fromId": "-5"}, -1100),
        ({"symbol": "BTCUSDT", "startTime": "1"}, -1104),
    ],
)
async def test_bad_params_get_binance_errors(client: httpx.AsyncClient, params: dict[str, str], code: int) -> None:
    for path in ("/fapi/v1/aggTrades", "/api/v3/historicalTrades"):
        response = await client.get(path, params=params)
        assert response.status_code == 400
        error = msgspec.json.decode(response.content, type=BinanceError)
        assert error.code == code and error.msg


async def test_exchange_info_ping_time(client: httpx.AsyncClient) -> None:
    info = (await client.get("/fapi/v1/exchangeInfo")).json()
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.10" and filters["LOT_SIZE"]["stepSize"] == "0.001"
    assert btc["status"] == "TRADING" and btc["contractType"] == "PERPETUAL" and btc["pricePrecision"] == 2
    assert (await client.get("/api/v3/exchangeInfo")).json()["symbols"][1]["symbol"] == "ETHUSDT"
    assert (await client.get("/fapi/v1/ping")).json() == {}
    assert (await client.get("/fapi/v1/time")).json() == {"serverTime": 1_700_000_000_000}


async def test_ground_truth_publishing_rate_stats(client: httpx.AsyncClient, venue: Venue) -> None:
    truth = (await client.get("/admin/ground-truth")).json()
    assert truth["venue"] == "sim" and truth["trade_stream"] == "aggTrade"
    btc = truth["symbols"]["BTCUSDT"]
    assert btc["first_id"] == 1 and btc["last_id"] == btc["published"] == venue.market.published("BTCUSDT")
    assert btc["bbo_published"] == venue.market.book_published("BTCUSDT") > 0

    assert (await client.post("/admin/publishing", json={"paused": True})).json() == {"paused": True}
    assert venue.market.paused and (await client.get("/admin/publishing")).json() == {"paused": True}
    assert (await client.post("/admin/publishing", json={"paused": "yes"})).status_code == 400
    assert (await client.post("/admin/rate", json={"rate": 70000})).json() == {"rate": 70000.0}
    refused = await client.post("/admin/rate", json={"rate": -1})
    assert refused.status_code == 400 and "rate must be" in refused.json()["error"]
    stats = (await client.get("/admin/stats")).json()
    assert stats["rate"] == 70000 and stats["paused"] and stats["connections"] == 0
    assert stats["published"]["BTCUSDT"] == btc["published"]
    # paused: nothing owed, and the market clock is where the last step left it
    assert stats["behind_s"] == 0.0 and stats["shortfall_messages"] == venue.market.shortfall == 0
    assert stats["generated_until_s"] == round(venue.market.generated_until, 6) > 0


async def test_rest_faults_fail_then_recover(client: httpx.AsyncClient) -> None:
    params = {"symbol": "BTCUSDT", "fromId": 1, "limit": 1}
    armed = await client.post("/admin/fault", json={"fault": "rest_fail", "status": 429, "count": 2})
    assert armed.status_code == 200 and armed.json()["faults"]["rest_fail"] == {"status": 429, "remaining": 2}
    codes = [(await client.get("/fapi/v1/aggTrades", params=params)).status_code for _ in range(3)]
    assert codes == [429, 429, 200]

    assert (await client.post("/admin/fault", json={"fault": "down", "seconds": 60})).status_code == 200
    down = await client.get("/fapi/v1/aggTrades", params=params)
    assert down.status_code == 503 and down.json()["code"] == -1001
    assert (await client.get("/admin/ground-truth")).status_code == 200  # admin stays up
    assert (await client.delete("/admin/fault")).status_code == 200
    assert (await client.get("/fapi/v1/aggTrades", params=params)).status_code == 200

    refused = await client.post("/admin/fault", json={"fault": "skip_ids", "symbol": "BTCUSDT", "bogus": 1})
    assert refused.status_code == 400 and "bogus" in refused.json()["error"]
    counters = (await client.get("/admin/faults")).json()["counters"]
    assert counters["rest_failed"] == 2 and counters["rest_refused_down"] == 1


@pytest.mark.parametrize(
    "path, combined, streams",
    [
        (
            "/stream?streams=btcusdt@aggTrade/ethusdt@bookTicker",
            True,
            [StreamName("BTCUSDT", StreamKind.AGG_TRADE), StreamName("ETHUSDT", StreamKind.BOOK_TICKER)],
        ),
        ("/ws/btcusdt@trade", False, [StreamName("BTCUSDT", StreamKind.TRADE)]),
        ("/ws/btcusdt@trade/btcusdt@trade", False, [StreamName("BTCUSDT", StreamKind.TRADE)]),
        ("/ws", False, []),
        ("/stream", True, []),
    ],
)
def test_handshake_paths(path: str, combined: bool, streams: list[StreamName]) -> None:
    assert parse_path(path, frozenset({"BTCUSDT", "ETHUSDT"})) == (combined, streams)


@pytest.mark.parametrize("path", ["/", "/stream?streams=btcusdt@nope", "/ws/xrpusdt@aggTrade", "/api/stream"])
def test_bad_handshake_paths(path: str) -> None:
    with pytest.raises(StreamError):
        parse_path(path, frozenset({"BTCUSDT", "ETHUSDT"}))
