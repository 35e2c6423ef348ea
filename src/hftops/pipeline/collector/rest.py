"""The venue's REST trade history (Binance `aggTrades` / `historicalTrades` by `fromId`), for backfill."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from hftops.model.binance import BinanceError, RestAggTrade, RestHistoricalTrade
from hftops.pipeline.collector.decode import REST_AGG_TRADES, REST_HISTORICAL_TRADES
from hftops.pipeline.collector.reasons import RestFailure

RestRow = RestAggTrade | RestHistoricalTrade
_ERROR = msgspec.json.Decoder(BinanceError)


class RestError(Exception):
    """One failed history request: `failure` names the kind, `retry_after_s` the venue's wish when it said."""

    def __init__(self, failure: RestFailure, detail: str, retry_after_s: float | None = None) -> None:
        super().__init__(detail)
        self.failure = failure
        self.detail = detail
        self.retry_after_s = retry_after_s


def history_path(venue_kind: str, trade_stream: str) -> str:
    if trade_stream == "trade":
        return "/api/v3/historicalTrades"
    return "/api/v3/aggTrades" if venue_kind == "binance_spot" else "/fapi/v1/aggTrades"


class TradeHistory:
    """`trades(symbol, from_id, limit)` -> the venue's rows from `from_id` upwards, or RestError."""

    def __init__(
        self,
        base_url: str,
        path: str,
        timeout_s: float,
        api_key: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"X-MBX-APIKEY": api_key} if api_key else {}
        self.base_url = base_url
        self.path = path
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, headers=headers, transport=transport)
        self._decoder: msgspec.json.Decoder[Any] = (
            REST_HISTORICAL_TRADES if path.endswith("historicalTrades") else REST_AGG_TRADES
        )

    async def trades(self, symbol: str, from_id: int, limit: int) -> list[RestRow]:
        where = f"GET {self.base_url}{self.path}?symbol={symbol}&fromId={from_id}&limit={limit}"
        try:
            response = await self._client.get(self.path, params={"symbol": symbol, "fromId": from_id, "limit": limit})
        except httpx.TimeoutException as exc:
            raise RestError(RestFailure.TIMEOUT, f"{where} timed out ({exc.__class__.__name__})") from exc
        except httpx.HTTPError as exc:
            raise RestError(RestFailure.CONNECT, f"{where} failed: {exc!r}") from exc
        status = response.status_code
        if status != 200:
            raise _status_error(where, response)
        try:
            rows: list[RestRow] = self._decoder.decode(response.content)
        except msgspec.DecodeError as exc:
            raise RestError(
                RestFailure.MALFORMED,
                f"{where} returned a body that is not a list of trades: {exc} (first bytes {response.content[:80]!r})",
            ) from exc
        return rows

    async def aclose(self) -> None:
        await self._client.aclose()


def _status_error(where: str, response: httpx.Response) -> RestError:
    status = response.status_code
    try:
        message = _ERROR.decode(response.content).msg
    except msgspec.DecodeError:
        message = response.text[:200]
    detail = f"{where} answered HTTP {status}: {message}"
    if status in (418, 429):  # Binance: 429 rate limit, 418 IP banned for ignoring 429s
        retry_after: float | None = None
        try:
            retry_after = float(response.headers.get("Retry-After", ""))
        except ValueError:
            retry_after = None
        return RestError(RestFailure.HTTP_429, detail, retry_after)
    if status >= 500:
        return RestError(RestFailure.HTTP_5XX, detail)
    return RestError(RestFailure.HTTP_4XX, detail)
