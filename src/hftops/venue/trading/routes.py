"""REST of the venue's trading side: Binance USD-M futures order/account endpoints and the admin ground truth.

Signed endpoints check the API key, signature and recvWindow (`auth`) after the venue-wide faults (down,
rest_slow, rest_fail) and before anything else; refusals are HTTP 4xx with Binance's {"code", "msg"}.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec
from fastapi import FastAPI, Request
from fastapi.responses import Response

from hftops.venue.trading import errors as E
from hftops.venue.trading import params as P
from hftops.venue.trading import wire
from hftops.venue.trading.account import ZERO
from hftops.venue.trading.auth import check_api_key, verify_signed
from hftops.venue.trading.errors import TradingError
from hftops.venue.trading.service import Trading

if TYPE_CHECKING:
    from hftops.venue.app import Venue

DEFAULT_TRADES_LIMIT = 500
MAX_TRADES_LIMIT = 1000
Gate = Callable[[], Awaitable[Response | None]]


def _error(exc: TradingError) -> Response:
    return Response(
        msgspec.json.encode({"code": exc.code, "msg": exc.msg}), status_code=exc.status, media_type="application/json"
    )


def trading_routes(app: FastAPI, venue: Venue, trading: Trading, gate: Gate) -> None:
    desk, faults, specs = trading.desk, trading.faults, trading.specs

    def ok(body: Any) -> Response:
        raw = msgspec.json.encode(body)
        if faults.take_malformed():
            raw = raw[: len(raw) // 2]
        return Response(raw, media_type="application/json")

    async def signed(request: Request, handler: Callable[[dict[str, str]], Any], delayed: bool = False) -> Response:
        refused = await gate()
        if refused is not None:
            return refused
        body = (await request.body()).decode("utf-8", "replace")
        try:
            params = verify_signed(
                trading.credentials, request.headers.get("X-MBX-APIKEY"), request.url.query, body, venue.wall_ms()
            )
            result = handler(params)
        except TradingError as exc:
            return _error(exc)
        if delayed and faults.delay_ms:
            faults.counters.acks_delayed += 1
            await asyncio.sleep(faults.delay_ms / 1000)
        return ok(result)

    def new_order(params: dict[str, str]) -> dict[str, Any]:
        try:
            request, resp_type = P.new_order(params, specs)
        except TradingError as exc:
            desk.record_rejection(params.get("symbol", ""), params.get("side", ""), params.get("newClientOrderId"), exc)
            raise
        ack, live = desk.place(request)
        return wire.order_json(live if resp_type == "RESULT" else ack, specs[request.symbol])

    def query_order(params: dict[str, str]) -> dict[str, Any]:
        symbol = P.symbol(params, specs)
        assert symbol is not None
        order = desk.find(symbol, *P.order_ref(params))
        if order is None:
            raise TradingError(E.NO_SUCH_ORDER, "Order does not exist.")
        return wire.order_json(order, specs[symbol])

    def cancel_order(params: dict[str, str]) -> dict[str, Any]:
        symbol = P.symbol(params, specs)
        assert symbol is not None
        return wire.order_json(desk.cancel(symbol, *P.order_ref(params)), specs[symbol])

    def amend_order(params: dict[str, str]) -> dict[str, Any]:
        symbol, side, qty, price = P.amendment(params, specs)
        order_id, client_id = P.order_ref(params)
        return wire.order_json(desk.amend(symbol, order_id, client_id, side, qty, price), specs[symbol])

    def all_orders(params: dict[str, str]) -> list[dict[str, Any]]:
        symbol = P.symbol(params, specs)
        limit = P.integer(params, "limit") or DEFAULT_TRADES_LIMIT
        from_id = P.integer(params, "orderId")
        rows = [o for o in desk.orders.values() if o.symbol == symbol and (from_id is None or o.order_id >= from_id)]
        rows = rows[:limit] if from_id is not None else rows[-limit:]
        return [wire.order_json(o, specs[o.symbol]) for o in rows]

    def balance(_: dict[str, str]) -> list[dict[str, Any]]:
        asset = wire.account_json(trading.account, desk.open_orders(), {}, venue.wall_ms())["assets"][0]
        return [
            {
                "accountAlias": "SimVenue",
                "asset": asset["asset"],
                "balance": asset["walletBalance"],
                "crossWalletBalance": asset["crossWalletBalance"],
                "crossUnPnl": asset["crossUnPnl"],
                "availableBalance": asset["availableBalance"],
                "maxWithdrawAmount": asset["maxWithdrawAmount"],
                "marginAvailable": True,
                "updateTime": asset["updateTime"],
            }
        ]

    def cancel_all(params: dict[str, str]) -> dict[str, Any]:
        symbol = P.symbol(params, specs)
        assert symbol is not None
        desk.cancel_all(symbol)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def open_orders(params: dict[str, str]) -> list[dict[str, Any]]:
        symbol = P.symbol(params, specs, required=False)
        return [wire.order_json(o, specs[o.symbol]) for o in desk.open_orders(symbol)]

    def user_trades(params: dict[str, str]) -> list[dict[str, Any]]:
        symbol = P.symbol(params, specs)
        limit = P.integer(params, "limit") or DEFAULT_TRADES_LIMIT
        if not 1 <= limit <= MAX_TRADES_LIMIT:
            raise TradingError(
                E.INVALID_PARAMETER, f"Data sent for parameter 'limit' is not valid; 1 to {MAX_TRADES_LIMIT}."
            )
        from_id, start, end = P.integer(params, "fromId"), P.integer(params, "startTime"), P.integer(params, "endTime")
        rows = [
            f
            for f in trading.journal.fills
            if f["symbol"] == symbol
            and (from_id is None or f["id"] >= from_id)
            and (start is None or f["time"] >= start)
            and (end is None or f["time"] <= end)
        ]
        if from_id is None and start is None:
            return rows[-limit:]
        return rows[:limit]

    def drift(symbol: str) -> Decimal:
        return faults.drift.get(symbol, ZERO)

    def position_risk(params: dict[str, str]) -> list[dict[str, Any]]:
        symbol = P.symbol(params, specs, required=False)
        symbols = [symbol] if symbol else list(specs)
        return [wire.position_risk(trading.account, s, drift(s), venue.wall_ms()) for s in symbols]

    def account(_: dict[str, str]) -> dict[str, Any]:
        return wire.account_json(trading.account, desk.open_orders(), dict(faults.drift), venue.wall_ms())

    def leverage(params: dict[str, str]) -> dict[str, Any]:
        symbol = P.symbol(params, specs)
        assert symbol is not None
        value = P.integer(params, "leverage")
        if value is None:
            raise E.missing("leverage")
        desk.set_leverage(symbol, value)
        return {"leverage": value, "maxNotionalValue": wire.MAX_NOTIONAL, "symbol": symbol}

    def route(path: str, method: str, handler: Callable[[dict[str, str]], Any], delayed: bool = False) -> None:
        async def endpoint(request: Request) -> Response:
            return await signed(request, handler, delayed)

        app.add_api_route(path, endpoint, methods=[method], name=f"{method} {path}")

    route("/fapi/v1/order", "POST", new_order, delayed=True)
    route("/fapi/v1/order", "GET", query_order)
    route("/fapi/v1/order", "DELETE", cancel_order, delayed=True)
    route("/fapi/v1/order", "PUT", amend_order, delayed=True)
    route("/fapi/v1/allOrders", "GET", all_orders)
    route("/fapi/v2/balance", "GET", balance)
    route("/fapi/v1/allOpenOrders", "DELETE", cancel_all, delayed=True)
    route("/fapi/v1/openOrders", "GET", open_orders)
    route("/fapi/v1/userTrades", "GET", user_trades)
    route("/fapi/v2/positionRisk", "GET", position_risk)
    route("/fapi/v2/account", "GET", account)
    route("/fapi/v1/leverage", "POST", leverage)
    _listen_key_routes(app, trading, gate, ok)
    _admin_routes(app, venue, trading)


def _listen_key_routes(app: FastAPI, trading: Trading, gate: Gate, ok: Callable[[Any], Response]) -> None:
    streams = trading.streams

    async def keyed(request: Request, action: Callable[[], Any]) -> Response:
        refused = await gate()
        if refused is not None:
            return refused
        try:
            check_api_key(trading.credentials, request.headers.get("X-MBX-APIKEY"))
            return ok(action())
        except TradingError as exc:
            return _error(exc)

    def delete() -> dict[str, Any]:
        streams.delete()
        return {}

    def route(method: str, action: Callable[[], Any]) -> None:
        async def endpoint(request: Request) -> Response:
            return await keyed(request, action)

        app.add_api_route("/fapi/v1/listenKey", endpoint, methods=[method], name=f"{method} listenKey")

    route("POST", lambda: {"listenKey": streams.create()})
    route("PUT", lambda: {"listenKey": streams.keepalive()})
    route("DELETE", delete)


def _admin_routes(app: FastAPI, venue: Venue, trading: Trading) -> None:
    """Ground truth for tests and drills: never faulted, never signed (the admin API is the simulator's own)."""
    desk, journal, account = trading.desk, trading.journal, trading.account

    def json(body: Any) -> Response:
        return Response(msgspec.json.encode(body), media_type="application/json")

    def symbol_filter(request: Request) -> Callable[[Mapping[str, Any]], bool]:
        symbol = request.query_params.get("symbol")
        return lambda row: symbol is None or row.get("symbol") == symbol

    @app.get("/admin/orders")
    async def admin_orders(request: Request) -> Response:
        keep = symbol_filter(request)
        orders = [o for _, o in sorted(journal.orders.items()) if keep(o)]
        return json(
            {
                "orders": orders,
                "open": sum(1 for o in orders if o["status"] in ("NEW", "PARTIALLY_FILLED")),
                "rejected": [r for r in journal.rejections if keep(r)],
            }
        )

    @app.get("/admin/fills")
    async def admin_fills(request: Request) -> Response:
        keep = symbol_filter(request)
        return json({"fills": [f for f in journal.fills if keep(f)]})

    @app.get("/admin/positions")
    async def admin_positions() -> Response:
        totals = account.totals(desk.open_orders())
        positions = {}
        for symbol, spec in trading.specs.items():
            pos = account.positions[symbol]
            touch = desk.books[symbol].touch
            positions[symbol] = {
                "qty": spec.qty_text(pos.qty).decode(),
                "entry_price": wire.money(pos.entry),
                "realized_pnl": wire.money(pos.realized),
                "unrealized_pnl": wire.money(account.unrealized(symbol)),
                "mark_price": wire.money(account.mark(symbol)),
                "leverage": account.leverage_of(symbol),
                "bid": spec.price_text(touch.bid).decode(),
                "ask": spec.price_text(touch.ask).decode(),
            }
        return json(
            {
                "wallet_balance": wire.money(account.wallet),
                "fees_paid": wire.money(account.fees_paid),
                "available_balance": wire.money(totals["available"]),
                "margin_balance": wire.money(totals["margin_balance"]),
                "initial_margin": wire.money(totals["initial_margin"]),
                "maint_margin": wire.money(totals["maint_margin"]),
                "positions": positions,
                "user_stream": {"connections": len(trading.streams.conns), "events_sent": trading.streams.events_sent},
            }
        )
