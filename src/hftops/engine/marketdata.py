"""Market-data rows from the bus (`TradeRow`, `BboRow`, decimal text) -> the `Tick`/`Bbo` views strategies see."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from hftops.model.market import BboRow, TradeRow
from hftops.model.orders import Bbo, Side, Tick


class BadMarketData(ValueError):
    """A row that cannot be turned into a view; the message names the symbol, the id and the field."""


def _decimal(text: str, symbol: str, ref: int, field: str) -> Decimal:
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError) as exc:
        raise BadMarketData(f"{symbol} id {ref}: {field} {text!r} is not a decimal number") from exc
    if not value.is_finite() or value < 0:
        raise BadMarketData(f"{symbol} id {ref}: {field} {text!r} must be finite and >= 0")
    return value


def tick_from_row(symbol: str, row: TradeRow) -> Tick:
    price = _decimal(row.price, symbol, row.trade_id, "price")
    if price == 0:
        raise BadMarketData(f"{symbol} id {row.trade_id}: price 0")
    return Tick(
        symbol=symbol,
        trade_id=row.trade_id,
        price=price,
        qty=_decimal(row.qty, symbol, row.trade_id, "qty"),
        taker_side=Side.SELL if row.buyer_is_maker else Side.BUY,  # Binance "m": the buyer was the maker
        time_ms=row.trade_time_ms,
    )


def bbo_from_row(symbol: str, row: BboRow) -> Bbo:
    ref = row.update_id
    bbo = Bbo(
        symbol=symbol,
        update_id=ref,
        bid_price=_decimal(row.bid_price, symbol, ref, "bid_price"),
        bid_qty=_decimal(row.bid_qty, symbol, ref, "bid_qty"),
        ask_price=_decimal(row.ask_price, symbol, ref, "ask_price"),
        ask_qty=_decimal(row.ask_qty, symbol, ref, "ask_qty"),
        time_ms=row.transaction_time_ms or row.event_time_ms,
    )
    if bbo.bid_price > 0 and bbo.ask_price > 0 and bbo.ask_price < bbo.bid_price:
        raise BadMarketData(f"{symbol} id {ref}: crossed book, bid {bbo.bid_price} > ask {bbo.ask_price}")
    return bbo
