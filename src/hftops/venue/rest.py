"""HTTP side of the simulated venue: Binance REST (exchangeInfo, aggTrades, historicalTrades, ping, time)
and the admin API (ground truth, publishing, rate, faults, stats). The signed order/account endpoints and
the trading ground truth (/admin/orders, /admin/fills, /admin/positions) live in `venue.trading.routes`.

Binance endpoints answer bad parameters with HTTP 400 and Binance's {"code", "msg"}; admin endpoints answer
bad bodies with HTTP 400 and {"error": "..."} naming the field.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from fastapi import FastAPI, Request
from fastapi.responses import Response

from hftops.venue.faults import FaultError, FaultRequest
from hftops.venue.symbols import SymbolSpec
from hftops.venue.trading.routes import trading_routes
from hftops.venue.wire import rest_agg_trades, rest_historical_trades

if TYPE_CHECKING:
    from hftops.venue.app import Venue

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
FAR_FUTURE_MS = 4133404800000  # Binance's deliveryDate of perpetual contracts

_REST_FAILURES = {
    429: (
        -1003,
        "Too many requests; current limit is 2400 request weight per minute (simulated venue fault).",
    ),
    500: (-1000, "An unknown error occurred while processing the request (simulated venue fault)."),
    503: (-1001, "Internal error; unable to process your request. Please try again (simulated venue fault)."),
}


class BinanceParamError(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


def binance_error(status: int, code: int, msg: str) -> Response:
    return Response(msgspec.json.encode({"code": code, "msg": msg}), status_code=status, media_type="application/json")


def json_ok(body: Any) -> Response:
    return Response(body if isinstance(body, bytes) else msgspec.json.encode(body), media_type="application/json")


def admin_error(msg: str, status: int = 400) -> Response:
    return Response(msgspec.json.encode({"error": msg}), status_code=status, media_type="application/json")


def _digits(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or not raw.isascii() or len(raw) > 20:
        raise BinanceParamError(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
        )
    return int(raw)


def parse_history_params(params: Mapping[str, str], symbols: Mapping[str, SymbolSpec]) -> tuple[str, int | None, int]:
    """(symbol, fromId or None, limit) of a trade-history request, validated the way Binance does."""
    unknown = sorted(set(params) - {"symbol", "fromId", "limit"})
    if unknown:
        raise BinanceParamError(
            -1104,
            f"Not all sent parameters were read; the simulated venue does not support "
            f"{unknown}. Page with fromId and limit.",
        )
    symbol = params.get("symbol") or ""
    if not symbol:
        raise BinanceParamError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
    if symbol not in symbols:
        raise BinanceParamError(-1121, "Invalid symbol.")
    limit = _digits(params, "limit")
    if limit is None:
        limit = DEFAULT_LIMIT
    elif not 1 <= limit <= MAX_LIMIT:
        raise BinanceParamError(-1130, f"Data sent for parameter 'limit' is not valid; 1 to {MAX_LIMIT}.")
    return symbol, _digits(params, "fromId"), limit


def build_rest_app(venue: Venue) -> FastAPI:
    app = FastAPI(title="hftops simulated venue", version="1", docs_url="/docs", redoc_url=None)

    async def gate() -> Response | None:
        """Faults that hit every Binance endpoint: down, slow, fail (in that order)."""
        faults = venue.faults
        if faults.is_down(venue.clock()):
            faults.counters.rest_refused_down += 1
            return binance_error(503, *_REST_FAILURES[503])
        if faults.rest_slow_ms:
            faults.counters.rest_delayed += 1
            await asyncio.sleep(faults.rest_slow_ms / 1000)
        status = faults.rest_failure()
        if status is not None:
            return binance_error(status, *_REST_FAILURES[status])
        return None

    def history(request: Request, encode: Any) -> Response:
        try:
            symbol, from_id, limit = parse_history_params(request.query_params, venue.specs)
        except BinanceParamError as exc:
            return binance_error(400, exc.code, exc.msg)
        ledger = venue.ground_truth[symbol]
        last = ledger.last_id
        first = max(1, last - limit + 1) if from_id is None else max(1, from_id)
        rows = list(ledger.rows(first, min(last, first + limit - 1)))
        return json_ok(encode(venue.specs[symbol], rows))

    @app.get("/fapi/v1/aggTrades")
    async def agg_trades(request: Request) -> Response:
        return await gate() or history(request, rest_agg_trades)

    @app.get("/api/v3/historicalTrades")
    async def historical_trades(request: Request) -> Response:
        return await gate() or history(request, rest_historical_trades)

    @app.get("/fapi/v1/exchangeInfo")
    async def futures_exchange_info() -> Response:
        return await gate() or json_ok(exchange_info(venue, futures=True))

    @app.get("/api/v3/exchangeInfo")
    async def spot_exchange_info() -> Response:
        return await gate() or json_ok(exchange_info(venue, futures=False))

    @app.get("/fapi/v1/ping")
    @app.get("/api/v3/ping")
    async def ping() -> Response:
        return await gate() or json_ok({})

    @app.get("/fapi/v1/time")
    @app.get("/api/v3/time")
    async def server_time() -> Response:
        return await gate() or json_ok({"serverTime": venue.wall_ms()})

    _admin_routes(app, venue)
    if venue.trading is not None:
        trading_routes(app, venue, venue.trading, gate)
    return app


class _Publishing(msgspec.Struct, forbid_unknown_fields=True):
    paused: bool


class _Rate(msgspec.Struct, forbid_unknown_fields=True):
    rate: float


def _admin_routes(app: FastAPI, venue: Venue) -> None:
    async def body(request: Request, kind: type[Any]) -> Any:
        raw = await request.body()
        try:
            return msgspec.json.decode(raw or b"{}", type=kind)
        except msgspec.DecodeError as exc:
            raise FaultError(f"bad request body {raw[:200]!r}: {exc}") from None

    @app.get("/admin/ground-truth")
    async def ground_truth() -> Response:
        return json_ok(venue.ground_truth_summary())

    @app.get("/admin/publishing")
    async def publishing_state() -> Response:
        return json_ok({"paused": venue.market.paused})

    @app.post("/admin/publishing")
    async def publishing(request: Request) -> Response:
        try:
            venue.set_paused((await body(request, _Publishing)).paused)
        except FaultError as exc:
            return admin_error(f'{exc}; send {{"paused": true|false}}')
        return json_ok({"paused": venue.market.paused})

    @app.get("/admin/rate")
    async def rate_state() -> Response:
        return json_ok({"rate": venue.market.schedule.rate})

    @app.post("/admin/rate")
    async def rate(request: Request) -> Response:
        try:
            venue.set_rate((await body(request, _Rate)).rate)
        except (FaultError, ValueError) as exc:
            return admin_error(f'{exc}; send {{"rate": <messages per second>}}')
        return json_ok({"rate": venue.market.schedule.rate})

    @app.post("/admin/fault")
    async def fault(request: Request) -> Response:
        try:
            venue.apply_fault(await body(request, FaultRequest))
        except FaultError as exc:
            return admin_error(str(exc))
        return json_ok({"ok": True, "faults": venue.faults.describe()})

    @app.delete("/admin/fault")
    async def clear_faults() -> Response:
        venue.clear_faults()
        return json_ok({"ok": True, "faults": venue.faults.describe()})

    @app.get("/admin/faults")
    async def faults() -> Response:
        return json_ok(venue.faults.describe())

    @app.get("/admin/stats")
    async def stats() -> Response:
        return json_ok(venue.stats())


def exchange_info(venue: Venue, futures: bool) -> dict[str, Any]:
    symbols = []
    for spec in venue.specs.values():
        filters = [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": spec.tick_size,
                "maxPrice": spec.price_text(spec.start_price_units * 100).decode(),
                "tickSize": spec.tick_size,
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": spec.step_size,
                "maxQty": spec.qty_text(spec.typical_qty_units * 100_000).decode(),
                "stepSize": spec.step_size,
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": spec.step_size,
                "maxQty": spec.qty_text(spec.typical_qty_units * 10_000).decode(),
                "stepSize": spec.step_size,
            },
        ]
        entry: dict[str, Any] = {
            "symbol": spec.symbol,
            "status": "TRADING",
            "baseAsset": spec.base_asset,
            "quoteAsset": spec.quote_asset,
            "filters": filters,
        }
        if futures:
            entry.update(
                {
                    "pair": spec.symbol,
                    "contractType": "PERPETUAL",
                    "deliveryDate": FAR_FUTURE_MS,
                    "onboardDate": 1569398400000,
                    "marginAsset": spec.quote_asset,
                    "pricePrecision": spec.price_decimals,
                    "quantityPrecision": spec.qty_decimals,
                    "baseAssetPrecision": 8,
                    "quotePrecision": 8,
                    "underlyingType": "COIN",
                    "orderTypes": ["LIMIT", "MARKET"],
                    "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
                }
            )
        else:
            entry.update(
                {
                    "baseAssetPrecision": 8,
                    "quoteAssetPrecision": 8,
                    "orderTypes": ["LIMIT", "MARKET"],
                    "isSpotTradingAllowed": True,
                }
            )
        symbols.append(entry)
    info: dict[str, Any] = {
        "timezone": "UTC",
        "serverTime": venue.wall_ms(),
        "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400}],
        "exchangeFilters": [],
        "symbols": symbols,
    }
    if futures:
        info["futuresType"] = "U_MARGINED"
    return info
