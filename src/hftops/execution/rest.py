"""Signed REST client of Binance USD-M futures (the simulated venue by default): orders, account, listen keys.

Every answer is decoded into a typed struct; every failure becomes a `BrokerError` with Binance's code (or a
pseudo code for transport failures and malformed answers), is counted, and is retried with backoff when the
error says so. A new order is resent only after errors that say it did not take effect (429, -1021, ...):
after a timeout, a 5xx or a malformed answer the order may be live, and Binance refuses a repeated client
order id only while that order is still open — so the router queries it by client order id before any resend.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import msgspec
import structlog

from hftops.execution.errors import BinanceCode, BrokerError
from hftops.execution.signing import Credentials, encode_params
from hftops.execution.wire import (
    Account,
    CancelAllAnswer,
    Empty,
    ErrorBody,
    LeverageAnswer,
    ListenKey,
    PositionRisk,
    RestOrder,
    ServerTime,
    UserTrade,
)

T = TypeVar("T")
log = structlog.get_logger("execution.rest")

USER_TRADES_MAX_LIMIT = 1000
_ERROR_DECODER = msgspec.json.Decoder(ErrorBody)
_SIGNATURE = re.compile(r"signature=[0-9A-Za-z]+")


def redact(text: str) -> str:
    """Transport errors may quote the URL; its signature stays out of messages and logs."""
    return _SIGNATURE.sub("signature=***", text)


def decimal_text(value: Decimal) -> str:
    """Plain decimal text for the wire: never scientific notation (str(Decimal('1E-7')) would be)."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


@dataclass
class RestCounters:
    requests: int = 0
    retries: int = 0
    malformed: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    rate_limited: int = 0
    time_syncs: int = 0
    errors_by_code: Counter[int] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in self.__dict__.items() if k != "errors_by_code"}
        out["errors_by_code"] = {str(k): v for k, v in self.errors_by_code.items()}
        return out


class BinanceFuturesRest:
    """One keep-alive HTTP client per process; `sync_time()` once before signed calls (done lazily)."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        recv_window_ms: int = 5000,
        timeout_s: float = 5.0,
        max_attempts: int = 3,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 5.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self.recv_window_ms = recv_window_ms
        self.max_attempts = max(1, max_attempts)
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._clock = clock
        self._sleep = sleep
        self.offset_ms = 0
        self._time_synced = False
        self.counters = RestCounters()
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"BinanceFuturesRest({self.base_url!r}, {self._credentials!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- time -------------------------------------------------------------------------------------------

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def timestamp_ms(self) -> int:
        return self.now_ms() + self.offset_ms

    async def sync_time(self) -> int:
        """Measure the venue clock's offset from ours (midpoint of the round trip); returns it in ms."""
        before = self.now_ms()
        answer = await self._request("GET", "/fapi/v1/time", {}, ServerTime, signed=False, retry=True)
        after = self.now_ms()
        self.offset_ms = answer.serverTime - (before + after) // 2
        self._time_synced = True
        self.counters.time_syncs += 1
        return self.offset_ms

    # --- orders -----------------------------------------------------------------------------------------

    async def place_order(
        self,
        *,
        symbol: str,
        side: str,
        order_type: str,
        quantity: Decimal,
        client_order_id: str,
        price: Decimal | None = None,
        time_in_force: str | None = None,
        reduce_only: bool = False,
    ) -> RestOrder:
        if not client_order_id:
            raise ValueError("place_order needs a client order id: it is what makes a resend safe")
        params: dict[str, object] = {
            "symbol": symbol,
            "side": side,
            "type": order_type,
            "quantity": decimal_text(quantity),
        }
        if price is not None:
            params["price"] = decimal_text(price)
        if time_in_force is not None and order_type != "MARKET":
            params["timeInForce"] = time_in_force
        if reduce_only:
            params["reduceOnly"] = True
        params["newClientOrderId"] = client_order_id
        # Never resent after an answer that may hide a live order (timeout, 5xx, bad JSON): Binance refuses a
        # client order id only while that order is open, so a copy resent after the first one filled or was
        # canceled would trade again. The caller asks the venue by client order id first (OrderRouter).
        return await self._signed("POST", "/fapi/v1/order", params, RestOrder, resend_after_unknown=False)

    async def cancel_order(
        self, symbol: str, *, order_id: int | None = None, client_order_id: str | None = None
    ) -> RestOrder:
        return await self._signed("DELETE", "/fapi/v1/order", _order_ref(symbol, order_id, client_order_id), RestOrder)

    async def query_order(
        self, symbol: str, *, order_id: int | None = None, client_order_id: str | None = None
    ) -> RestOrder:
        return await self._signed("GET", "/fapi/v1/order", _order_ref(symbol, order_id, client_order_id), RestOrder)

    async def cancel_all(self, symbol: str) -> CancelAllAnswer:
        return await self._signed("DELETE", "/fapi/v1/allOpenOrders", {"symbol": symbol}, CancelAllAnswer)

    async def open_orders(self, symbol: str | None = None) -> list[RestOrder]:
        return await self._signed("GET", "/fapi/v1/openOrders", {"symbol": symbol}, list[RestOrder])

    async def user_trades(
        self,
        symbol: str,
        *,
        from_id: int | None = None,
        start_time_ms: int | None = None,
        limit: int = USER_TRADES_MAX_LIMIT,
    ) -> list[UserTrade]:
        if from_id is not None and start_time_ms is not None:
            raise ValueError("Binance refuses fromId together with startTime; page by fromId after the first call")
        params: dict[str, object] = {
            "symbol": symbol,
            "fromId": from_id,
            "startTime": start_time_ms,
            "limit": min(limit, USER_TRADES_MAX_LIMIT),
        }
        return await self._signed("GET", "/fapi/v1/userTrades", params, list[UserTrade])

    async def user_trades_since(
        self, symbol: str, *, from_id: int | None = None, start_time_ms: int | None = None, max_pages: int = 100
    ) -> list[UserTrade]:
        """Every trade from `from_id` (or from `start_time_ms`), paging by trade id, in id order."""
        out: list[UserTrade] = []
        page = await self.user_trades(symbol, from_id=from_id, start_time_ms=start_time_ms if from_id is None else None)
        for _ in range(max_pages):
            out.extend(page)
            if len(page) < USER_TRADES_MAX_LIMIT:
                break
            page = await self.user_trades(symbol, from_id=max(t.id for t in page) + 1)
        out.sort(key=lambda t: t.id)
        return out

    # --- account ----------------------------------------------------------------------------------------

    async def account(self) -> Account:
        return await self._signed("GET", "/fapi/v2/account", {}, Account)

    async def position_risk(self, symbol: str | None = None) -> list[PositionRisk]:
        return await self._signed("GET", "/fapi/v2/positionRisk", {"symbol": symbol}, list[PositionRisk])

    async def set_leverage(self, symbol: str, leverage: int) -> LeverageAnswer:
        return await self._signed("POST", "/fapi/v1/leverage", {"symbol": symbol, "leverage": leverage}, LeverageAnswer)

    # --- user-data stream keys (API key only, no signature) ---------------------------------------------

    async def new_listen_key(self) -> str:
        answer = await self._request("POST", "/fapi/v1/listenKey", {}, ListenKey, signed=False, api_key=True)
        return answer.listenKey

    async def keepalive_listen_key(self) -> None:
        await self._request("PUT", "/fapi/v1/listenKey", {}, Empty, signed=False, api_key=True)

    async def close_listen_key(self) -> None:
        await self._request("DELETE", "/fapi/v1/listenKey", {}, Empty, signed=False, api_key=True)

    # --- plumbing ---------------------------------------------------------------------------------------

    async def _signed(
        self, method: str, path: str, params: dict[str, object], kind: Any, *, resend_after_unknown: bool = True
    ) -> Any:
        if not self._time_synced:
            await self.sync_time()
        return await self._request(
            method, path, params, kind, signed=True, api_key=True, resend_after_unknown=resend_after_unknown
        )

    async def _request(
        self,
        method: str,
        path: str,
        params: dict[str, object],
        kind: Any,
        *,
        signed: bool,
        api_key: bool = False,
        retry: bool = True,
        resend_after_unknown: bool = True,
    ) -> Any:
        endpoint = f"{method} {path}"
        attempts = self.max_attempts if retry else 1
        unknown_seen = False
        for attempt in range(1, attempts + 1):
            try:
                return await self._once(method, path, params, kind, signed=signed, api_key=api_key)
            except BrokerError as exc:
                exc.endpoint = endpoint
                exc.args = (exc._describe(),)
                exc.after_unknown_outcome = unknown_seen
                unknown_seen = unknown_seen or exc.outcome_unknown
                self._count(exc)
                if not exc.retryable or attempt == attempts or (exc.outcome_unknown and not resend_after_unknown):
                    log.warning(
                        "broker.request_failed",
                        endpoint=endpoint,
                        code=exc.code,
                        msg=exc.msg,
                        http_status=exc.http_status,
                        attempt=attempt,
                        final=True,
                    )
                    raise
                self.counters.retries += 1
                delay = self._delay(exc, attempt)
                log.info(
                    "broker.request_retry",
                    endpoint=endpoint,
                    code=exc.code,
                    http_status=exc.http_status,
                    attempt=attempt,
                    delay_s=round(delay, 3),
                )
                if exc.code == BinanceCode.INVALID_TIMESTAMP and path != "/fapi/v1/time":
                    await self.sync_time()
                await self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, exc: BrokerError, attempt: int) -> float:
        base = min(self._backoff_initial_s * 2 ** (attempt - 1), self._backoff_max_s)
        if exc.rate_limited:  # Binance bans IPs that keep going after 429s: back off harder
            return exc.retry_after_s if exc.retry_after_s is not None else min(base * 4, self._backoff_max_s)
        if exc.code == BinanceCode.INVALID_TIMESTAMP:
            return 0.0
        return base

    def _count(self, exc: BrokerError) -> None:
        self.counters.errors_by_code[exc.code] += 1
        if exc.code == BrokerError.MALFORMED:
            self.counters.malformed += 1
        elif exc.code == BrokerError.TRANSPORT:
            self.counters.transport_errors += 1
        if exc.http_status is not None and exc.http_status >= 500:
            self.counters.server_errors += 1
        if exc.rate_limited:
            self.counters.rate_limited += 1

    async def _once(
        self, method: str, path: str, params: dict[str, object], kind: Any, *, signed: bool, api_key: bool
    ) -> Any:
        sendable = dict(params)
        if signed:
            sendable["recvWindow"] = self.recv_window_ms
            sendable["timestamp"] = self.timestamp_ms()
        query = encode_params(sendable)
        if signed:
            query = (
                f"{query}&signature={self._credentials.sign(query)}"
                if query
                else f"signature={self._credentials.sign(query)}"
            )
        url = f"{path}?{query}" if query else path
        headers = {"X-MBX-APIKEY": self._credentials.api_key} if (signed or api_key) else {}
        self.counters.requests += 1
        try:
            response = await self._http.request(method, url, headers=headers)
        except httpx.TimeoutException as exc:
            raise BrokerError(BrokerError.TRANSPORT, f"no answer within the timeout ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise BrokerError(BrokerError.TRANSPORT, redact(f"{type(exc).__name__}: {exc}")) from None
        return _decode(response, kind)


def _order_ref(symbol: str, order_id: int | None, client_order_id: str | None) -> dict[str, object]:
    if order_id is None and not client_order_id:
        raise ValueError("name the order: order_id or client_order_id")
    return {"symbol": symbol, "orderId": order_id, "origClientOrderId": client_order_id or None}


def _decode(response: httpx.Response, kind: Any) -> Any:
    body = response.content
    if response.status_code == 200:
        try:
            return msgspec.json.decode(body, type=kind)
        except msgspec.DecodeError as exc:  # also a wrong shape: msgspec.ValidationError subclasses it
            raise BrokerError(
                BrokerError.MALFORMED, f"answer is not the documented shape: {exc}; first bytes {body[:120]!r}", 200
            ) from None
    retry_after = _retry_after(response)
    try:
        error = _ERROR_DECODER.decode(body)
    except msgspec.DecodeError:
        raise BrokerError(
            BrokerError.HTTP,
            f"HTTP {response.status_code} without Binance's error JSON: {body[:120]!r}",
            response.status_code,
            retry_after_s=retry_after,
        ) from None
    raise BrokerError(error.code, error.msg, response.status_code, retry_after_s=retry_after)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
