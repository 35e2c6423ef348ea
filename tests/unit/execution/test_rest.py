"""The signed REST client against a scripted Binance over httpx's transport: signing on the wire, error
classification, retries with the same client order id, time sync, malformed answers, secrets kept out."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from urllib.parse import parse_qsl

import httpx
import pytest

from hftops.execution.errors import BinanceCode, BrokerError
from hftops.execution.rest import BinanceFuturesRest, decimal_text
from hftops.execution.signing import Credentials, sign

KEY, SECRET = "test-key-123456", "test-secret-abcdef"
SERVER_MS = 1_700_000_000_000
ORDER = {
    "orderId": 7,
    "symbol": "BTCUSDT",
    "status": "NEW",
    "clientOrderId": "mm1-s-1",
    "price": "100.5",
    "origQty": "0.010",
    "executedQty": "0",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "avgPrice": "0.00",
    "cumQuote": "0",
    "reduceOnly": False,
    "updateTime": SERVER_MS,
}

Handler = Callable[[httpx.Request], httpx.Response]


class Venue:
    """Checks key and signature like Binance, then answers from `script` (path -> list of responses)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.script: dict[str, list[httpx.Response | Exception]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/fapi/v1/time":
            return httpx.Response(200, json={"serverTime": SERVER_MS})
        raw = request.url.query.decode()
        if "signature=" in raw:
            payload, _, signature = raw.rpartition("&signature=")
            if request.headers.get("X-MBX-APIKEY") != KEY:
                return httpx.Response(401, json={"code": -2015, "msg": "Invalid API-key, IP, or permissions."})
            if sign(payload, SECRET) != signature:
                return httpx.Response(400, json={"code": -1022, "msg": "Signature for this request is not valid."})
        queue = self.script.get(f"{request.method} {path}")
        if queue:
            item = queue.pop(0)
            if isinstance(item, Exception):
                raise item
            return item
        return httpx.Response(200, json=ORDER)

    def params(self, i: int) -> dict[str, str]:
        return dict(parse_qsl(self.requests[i].url.query.decode()))


def client(venue: Venue, secret: str = SECRET, now_s: float = SERVER_MS / 1000 - 3.0) -> BinanceFuturesRest:
    async def no_sleep(_: float) -> None:
        return None

    return BinanceFuturesRest(
        "http://venue",
        Credentials(KEY, secret),
        clock=lambda: now_s,
        sleep=no_sleep,
        max_attempts=3,
        transport=httpx.MockTransport(venue),
    )


def err(status: int, code: int, msg: str = "x") -> httpx.Response:
    return httpx.Response(status, json={"code": code, "msg": msg})


async def test_signed_order_carries_key_timestamp_and_valid_signature() -> None:
    venue = Venue()
    rest = client(venue)
    order = await rest.place_order(
        symbol="BTCUSDT",
        side="BUY",
        order_type="LIMIT",
        quantity=Decimal("0.010"),
        price=Decimal("100.50"),
        time_in_force="GTC",
        client_order_id="mm1-s-1",
    )
    assert order.orderId == 7 and order.price == Decimal("100.5")
    sent = venue.params(1)
    assert sent["quantity"] == "0.01" and sent["price"] == "100.5" and sent["newClientOrderId"] == "mm1-s-1"
    assert sent["recvWindow"] == "5000"
    assert int(sent["timestamp"]) == SERVER_MS  # local clock 3 s behind, corrected by the time sync
    assert rest.offset_ms == 3000
    await rest.aclose()


async def test_wrong_secret_is_a_final_minus_1022_without_the_secret_in_the_message() -> None:
    venue = Venue()
    rest = client(venue, secret="wrong-secret-zzz")
    with pytest.raises(BrokerError) as info:
        await rest.account()
    exc = info.value
    assert (exc.code, exc.http_status, exc.final) == (BinanceCode.INVALID_SIGNATURE, 400, True)
    assert "wrong-secret-zzz" not in str(exc) and "signature=" not in str(exc)
    assert "GET /fapi/v2/account" in str(exc) and "api_secret_env" in str(exc)
    assert len(venue.requests) == 2  # time + one try: never retried
    await rest.aclose()


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        (-2019, False),
        (-2022, False),
        (-1022, False),
        (-1121, False),
        (-2011, False),
        (-2013, False),
        (-1102, False),
        (-4003, False),
        (-5021, False),
        (-1013, False),
        (-4116, False),
        (-1003, True),
        (-1001, True),
        (-1007, True),
        (-1008, True),
        (-1021, True),
        (-1000, True),
    ],
)
def test_classification(code: int, retryable: bool) -> None:
    assert BrokerError(code, "m", 400).retryable is retryable


def test_classification_by_status_and_transport() -> None:
    assert BrokerError(BrokerError.HTTP, "m", 503).retryable
    assert BrokerError(BrokerError.HTTP, "m", 502).outcome_unknown
    assert BrokerError(-1003, "m", 429).rate_limited
    assert not BrokerError(-1003, "m", 418).retryable  # banned: backing off is the only way
    assert BrokerError(BrokerError.TRANSPORT, "timeout").retryable
    assert BrokerError(BrokerError.MALFORMED, "bad json", 200).outcome_unknown
    assert not BrokerError(-2019, "Margin is insufficient.", 400).outcome_unknown


async def test_5xx_and_timeouts_are_retried_for_requests_that_are_safe_to_repeat() -> None:
    venue = Venue()
    venue.script["GET /fapi/v1/openOrders"] = [
        httpx.Response(503, text="Service Unavailable"),
        httpx.ReadTimeout("slow"),
        httpx.Response(200, json=[ORDER]),
    ]
    rest = client(venue)
    assert len(await rest.open_orders()) == 1
    assert rest.counters.retries == 2 and rest.counters.server_errors == 1 and rest.counters.transport_errors == 1
    await rest.aclose()


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503, text="Service Unavailable"),
        httpx.ReadTimeout("slow"),
        httpx.Response(200, content=b'{"orderId": 7, "sym'),
    ],
)
async def test_a_new_order_is_never_resent_after_an_answer_that_may_hide_a_live_order(failure: object) -> None:
    """Binance refuses a repeated client order id only while that order is open: a blind resend after the
    first copy filled would trade twice. The router asks the venue first (OrderRouter._place)."""
    venue = Venue()
    venue.script["POST /fapi/v1/order"] = [failure]  # type: ignore[list-item]
    rest = client(venue)
    with pytest.raises(BrokerError) as info:
        await rest.place_order(
            symbol="BTCUSDT", side="BUY", order_type="MARKET", quantity=Decimal("1"), client_order_id="mm1-s-9"
        )
    assert info.value.outcome_unknown
    assert [r.method for r in venue.requests if r.url.path == "/fapi/v1/order"] == ["POST"]
    await rest.aclose()


async def test_a_new_order_is_resent_with_the_same_client_order_id_after_a_refusal_that_did_not_execute() -> None:
    venue = Venue()
    venue.script["POST /fapi/v1/order"] = [
        httpx.Response(429, json={"code": -1003, "msg": "Too many requests"}, headers={"Retry-After": "0"}),
        err(400, -1021, "Timestamp for this request is outside of the recvWindow."),
    ]
    rest = client(venue)
    order = await rest.place_order(
        symbol="BTCUSDT", side="BUY", order_type="MARKET", quantity=Decimal("1"), client_order_id="mm1-s-9"
    )
    assert order.orderId == 7
    posts = [venue.params(i) for i, r in enumerate(venue.requests) if r.method == "POST"]
    assert [p["newClientOrderId"] for p in posts] == ["mm1-s-9"] * 3
    assert "timeInForce" not in posts[0]  # MARKET orders carry none
    assert rest.counters.retries == 2
    await rest.aclose()


async def test_rate_limit_backs_off_using_retry_after() -> None:
    delays: list[float] = []

    async def sleep(s: float) -> None:
        delays.append(s)

    venue = Venue()
    venue.script["GET /fapi/v1/openOrders"] = [
        httpx.Response(429, json={"code": -1003, "msg": "Too many requests"}, headers={"Retry-After": "2"}),
        httpx.Response(200, json=[ORDER]),
    ]
    rest = BinanceFuturesRest(
        "http://venue", Credentials(KEY, SECRET), sleep=sleep, transport=httpx.MockTransport(venue)
    )
    assert len(await rest.open_orders()) == 1
    assert delays == [2.0] and rest.counters.rate_limited == 1
    await rest.aclose()


async def test_malformed_json_is_counted_and_raised_clearly_after_retries() -> None:
    venue = Venue()
    venue.script["GET /fapi/v2/positionRisk"] = [httpx.Response(200, content=b"{not json")] * 3
    rest = client(venue)
    with pytest.raises(BrokerError) as info:
        await rest.position_risk()
    assert info.value.code == BrokerError.MALFORMED
    assert "not the documented shape" in str(info.value)
    assert rest.counters.malformed == 3
    await rest.aclose()


async def test_wrong_shape_is_malformed_not_a_crash() -> None:
    venue = Venue()
    venue.script["GET /fapi/v2/positionRisk"] = [httpx.Response(200, json=[{"symbol": "BTCUSDT"}])]
    rest = client(venue)
    rest.max_attempts = 1
    with pytest.raises(BrokerError, match="positionAmt"):
        await rest.position_risk()
    await rest.aclose()


async def test_timestamp_outside_recv_window_resyncs_the_clock_and_retries() -> None:
    venue = Venue()
    venue.script["GET /fapi/v2/account"] = [
        err(400, -1021, "Timestamp for this request is outside of the recvWindow."),
        httpx.Response(200, json={"totalWalletBalance": "100", "totalMarginBalance": "100", "availableBalance": "90"}),
    ]
    rest = client(venue)
    account = await rest.account()
    assert account.availableBalance == Decimal("90")
    assert rest.counters.time_syncs == 2
    await rest.aclose()


async def test_final_error_after_an_unknown_outcome_is_flagged() -> None:
    venue = Venue()
    venue.script["DELETE /fapi/v1/order"] = [httpx.ReadTimeout("lost"), err(400, -2011, "Unknown order sent.")]
    rest = client(venue)
    with pytest.raises(BrokerError) as info:
        await rest.cancel_order("BTCUSDT", client_order_id="c-1")
    assert info.value.code == -2011 and info.value.after_unknown_outcome  # the first cancel may have done it
    await rest.aclose()


async def test_listen_key_uses_api_key_header_without_signature() -> None:
    venue = Venue()
    venue.script["POST /fapi/v1/listenKey"] = [httpx.Response(200, json={"listenKey": "abc"})]
    venue.script["PUT /fapi/v1/listenKey"] = [httpx.Response(200, json={})]
    rest = client(venue)
    assert await rest.new_listen_key() == "abc"
    await rest.keepalive_listen_key()
    for request in venue.requests:
        assert request.headers["X-MBX-APIKEY"] == KEY and b"signature" not in request.url.query
    await rest.aclose()


async def test_user_trades_pages_by_trade_id() -> None:
    def trade(i: int) -> dict[str, object]:
        return {
            "id": i,
            "orderId": 1,
            "symbol": "BTCUSDT",
            "side": "BUY",
            "price": "1",
            "qty": "1",
            "commission": "0.1",
            "commissionAsset": "USDT",
            "time": 1,
        }

    venue = Venue()
    venue.script["GET /fapi/v1/userTrades"] = [
        httpx.Response(200, json=[trade(i) for i in range(1, 1001)]),
        httpx.Response(200, json=[trade(1001), trade(1002)]),
    ]
    rest = client(venue)
    trades = await rest.user_trades_since("BTCUSDT", start_time_ms=5)
    assert [t.id for t in trades] == list(range(1, 1003))
    first, second = venue.params(1), venue.params(2)
    assert first["startTime"] == "5" and "fromId" not in first
    assert second["fromId"] == "1001" and "startTime" not in second
    await rest.aclose()


def test_decimal_text_never_uses_exponents() -> None:
    assert decimal_text(Decimal("1E-7")) == "0.0000001"
    assert decimal_text(Decimal("100.00")) == "100"
    assert decimal_text(Decimal("0.0100")) == "0.01"


def test_repr_hides_credentials() -> None:
    rest = client(Venue())
    assert SECRET not in repr(rest) and KEY not in repr(rest)
    json.dumps(rest.counters.snapshot())


def test_redact_hides_signatures() -> None:
    from hftops.execution.rest import redact

    assert (
        redact("GET http://v/fapi/v2/account?timestamp=1&signature=abc123DEF")
        == "GET http://v/fapi/v2/account?timestamp=1&signature=***"
    )
