"""Request parameters of the trading endpoints, validated the way Binance does (codes in `errors`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from hftops.venue.symbols import SymbolSpec
from hftops.venue.trading import errors as E
from hftops.venue.trading.errors import TradingError
from hftops.venue.trading.matching import NewOrder
from hftops.venue.trading.model import OrderType, Side, TimeInForce

CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
PRICE_NOT_POSITIVE = -4001


def symbol(params: Mapping[str, str], specs: Mapping[str, SymbolSpec], required: bool = True) -> str | None:
    value = params.get("symbol") or ""
    if not value:
        if required:
            raise E.missing("symbol")
        return None
    if value not in specs:
        raise TradingError(E.BAD_SYMBOL, "Invalid symbol.")
    return value


def integer(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 20:
        raise TradingError(
            E.ILLEGAL_CHARS, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
        )
    return int(raw)


def _units(raw: str, name: str, decimals: int) -> int:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise TradingError(
            E.ILLEGAL_CHARS, f"Illegal characters found in parameter '{name}'; send a decimal number."
        ) from None
    # a bounded exponent: "1e999999999" must not become a billion-digit integer
    if not value.is_finite() or len(raw) > 40 or abs(value.adjusted()) > 30:
        raise TradingError(E.ILLEGAL_CHARS, f"Illegal characters found in parameter '{name}'; send a decimal number.")
    scaled = value.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise TradingError(
            E.BAD_PRECISION, f"Precision is over the maximum defined for this asset ({name}: {decimals} decimals)."
        )
    return int(scaled)


def _enum(params: Mapping[str, str], name: str, kind: type[StrEnum], code: int, what: str) -> object:
    raw = params.get(name) or ""
    if not raw:
        raise E.missing(name)
    try:
        return kind(raw)
    except ValueError:
        raise TradingError(code, f"Invalid {what} {raw!r}; allowed: {[k.value for k in kind]}.") from None


def new_order(params: Mapping[str, str], specs: Mapping[str, SymbolSpec]) -> tuple[NewOrder, str]:
    """(the order, newOrderRespType ACK|RESULT)."""
    name = symbol(params, specs)
    assert name is not None
    spec = specs[name]
    side = _enum(params, "side", Side, E.INVALID_SIDE, "side")
    kind = _enum(params, "type", OrderType, E.INVALID_ORDER_TYPE, "orderType")
    raw_qty = params.get("quantity") or ""
    if not raw_qty:
        raise E.missing("quantity")
    qty = _units(raw_qty, "quantity", spec.qty_decimals)
    if qty <= 0:
        raise TradingError(E.QTY_LESS_THAN_ZERO, "Quantity less than or equal to zero.")
    # the LOT_SIZE / MARKET_LOT_SIZE maxima that exchangeInfo advertises
    max_qty = spec.typical_qty_units * (10_000 if kind is OrderType.MARKET else 100_000)
    if qty > max_qty:
        lot = "MARKET_LOT_SIZE" if kind is OrderType.MARKET else "LOT_SIZE"
        raise TradingError(E.FILTER_FAILURE, f"Filter failure: {lot} (max quantity {spec.qty_text(max_qty).decode()}).")
    price, tif = 0, TimeInForce.GTC
    if kind is OrderType.LIMIT:
        tif = _enum(params, "timeInForce", TimeInForce, E.INVALID_TIF, "timeInForce")  # type: ignore[assignment]
        raw_price = params.get("price") or ""
        if not raw_price:
            raise E.missing("price")
        price = _units(raw_price, "price", spec.price_decimals)
        if price <= 0:
            raise TradingError(PRICE_NOT_POSITIVE, "Price less than or equal to zero.")
        if price % spec.tick_units:
            raise TradingError(E.FILTER_FAILURE, f"Filter failure: PRICE_FILTER (tick size {spec.tick_size}).")
    elif params.get("price"):
        raise TradingError(E.NOT_REQUIRED, "Parameter 'price' sent when not required.")
    if (params.get("positionSide") or "BOTH") != "BOTH":  # one-way mode only, as the account is set up
        raise TradingError(E.POSITION_SIDE_MISMATCH, "Order's position side does not match user's setting.")
    reduce_raw = (params.get("reduceOnly") or "false").lower()
    if reduce_raw not in ("true", "false"):
        raise TradingError(
            E.INVALID_PARAMETER, f"Data sent for parameter 'reduceOnly' is not valid: {reduce_raw!r}; true|false."
        )
    client_id = params.get("newClientOrderId") or None
    if client_id is not None and not CLIENT_ID.match(client_id):
        raise TradingError(E.INVALID_CLIENT_ORDER_ID, "Client order id is not valid.")
    resp_type = params.get("newOrderRespType") or "ACK"
    if resp_type not in ("ACK", "RESULT"):
        raise TradingError(E.INVALID_PARAMETER, f"Invalid newOrderRespType {resp_type!r}; ACK or RESULT.")
    order = NewOrder(name, side, kind, qty, price, tif, reduce_raw == "true", client_id)  # type: ignore[arg-type]
    return order, resp_type


def amendment(params: Mapping[str, str], specs: Mapping[str, SymbolSpec]) -> tuple[str, Side, int, int]:
    """(symbol, side, quantity, price) of PUT /fapi/v1/order; every one is mandatory, as on Binance."""
    name = symbol(params, specs)
    assert name is not None
    spec = specs[name]
    side = _enum(params, "side", Side, E.INVALID_SIDE, "side")
    for field in ("quantity", "price"):
        if not params.get(field):
            raise E.missing(field)
    qty = _units(params["quantity"], "quantity", spec.qty_decimals)
    if qty <= 0:
        raise TradingError(E.QTY_LESS_THAN_ZERO, "Quantity less than or equal to zero.")
    price = _units(params["price"], "price", spec.price_decimals)
    if price <= 0:
        raise TradingError(PRICE_NOT_POSITIVE, "Price less than or equal to zero.")
    if price % spec.tick_units:
        raise TradingError(E.FILTER_FAILURE, f"Filter failure: PRICE_FILTER (tick size {spec.tick_size}).")
    return name, side, qty, price  # type: ignore[return-value]


def order_ref(params: Mapping[str, str]) -> tuple[int | None, str | None]:
    order_id = integer(params, "orderId")
    client_id = params.get("origClientOrderId") or None
    if order_id is None and client_id is None:
        raise TradingError(E.MANDATORY_PARAM, "Either orderId or origClientOrderId must be sent.")
    return order_id, client_id
